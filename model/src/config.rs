//! The `prometheus.yml` subset promshard understands, validated once at load time.
//!
//! Loading goes through a generic YAML value first so every error can name the scrape job and
//! field it came from (`scrape_configs[1] (job "node"): ...`). Fields Prometheus knows but we do
//! not support yet fail with their name rather than being silently ignored, because a collector
//! that quietly drops a user's `tls_config` scrapes the wrong thing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::duration::PromDuration;
use crate::http_config::{Authorization, BasicAuth, HttpClientConfig, TlsConfig};
use crate::labels::is_valid_label_name;
use crate::relabel::RelabelConfig;

/// A configuration error naming where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {message}")]
pub struct ConfigError {
    /// Where: `global`, `scrape_configs[2] (job "node")`, `remote_write[0]`, ...
    pub context: String,
    pub message: String,
}

impl ConfigError {
    fn new(context: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

/// Top-level keys Prometheus accepts that promshard does not implement (yet); rejected when set.
const UNSUPPORTED_TOP_LEVEL: &[&str] = &[
    "alerting",
    "remote_read",
    "storage",
    "tracing",
    "scrape_config_files",
    "otlp",
    "runtime",
];
/// Accepted for compatibility and ignored: they only matter to a Prometheus server with rules.
const IGNORED_TOP_LEVEL: &[&str] = &["rule_files"];

/// Scrape-config fields Prometheus supports and promshard does not yet.
const UNSUPPORTED_SCRAPE_FIELDS: &[&str] = &[
    "consul_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "gce_sd_configs",
    "azure_sd_configs",
    "http_sd_configs",
    "openstack_sd_configs",
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "enable_http2",
    "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor",
    "scrape_classic_histograms",
    "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb",
    "scrape_protocols",
    "target_limit",
    "keep_dropped_targets",
    "metric_name_validation_scheme",
    "metric_name_escaping_scheme",
];

const UNSUPPORTED_REMOTE_WRITE_FIELDS: &[&str] = &[
    "oauth2",
    "sigv4",
    "azuread",
    "google_iam",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "send_exemplars",
    "send_native_histograms",
    "round_robin_dns",
    "follow_redirects",
    "enable_http2",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: PromDuration,
    /// Unset means 10s capped at `scrape_interval`, as in Prometheus; always set after load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    /// Accepted because every real prometheus.yml has it; promshard evaluates no rules.
    pub evaluation_interval: PromDuration,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration::from_secs(60),
            scrape_timeout: None,
            evaluation_interval: PromDuration::from_secs(60),
            external_labels: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One `static_configs` entry (also the shape of a file_sd target group).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub labels: BTreeMap<String, String>,
}

/// Kubernetes roles, as `kubernetes_sd_configs[].role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesRole {
    Node,
    Pod,
    Service,
    Endpoints,
    #[serde(rename = "endpointslice")]
    EndpointSlice,
    Ingress,
}

impl KubernetesRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            KubernetesRole::Node => "node",
            KubernetesRole::Pod => "pod",
            KubernetesRole::Service => "service",
            KubernetesRole::Endpoints => "endpoints",
            KubernetesRole::EndpointSlice => "endpointslice",
            KubernetesRole::Ingress => "ingress",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesNamespaces {
    pub own_namespace: bool,
    pub names: Vec<String>,
}

/// `selectors[]`: label and field selectors for one role, in Kubernetes syntax.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    pub role: KubernetesRole,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachMetadata {
    pub node: bool,
    pub namespace: bool,
}

/// `kubernetes_sd_configs[]`. Discovery itself runs on shared watches in the master (one per
/// resource kind); namespaces and selectors are applied over those shared stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    pub role: KubernetesRole,
    /// Empty: in-cluster config, `--kubeconfig` or `KUBECONFIG`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubeconfig_file: String,
    #[serde(default)]
    pub namespaces: KubernetesNamespaces,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<KubernetesSelector>,
    #[serde(default)]
    pub attach_metadata: AttachMetadata,
    /// Accepted for compatibility; HTTP client settings of the master apply.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub follow_redirects: bool,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enable_http2: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Paths or globs (in the last path element) of `.json`, `.yml` or `.yaml` files.
    pub files: Vec<String>,
    /// Fallback re-read period; changes are also picked up by polling file metadata.
    pub refresh_interval: PromDuration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: PromDuration::from_secs(300),
        }
    }
}

/// A byte size as Prometheus writes it (`10MB`, `512KiB`, `0` = unlimited). Units are powers
/// of 1024 in both spellings, as in Prometheus's `units.Base2Bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
        let mult: u64 = match unit {
            "" | "B" => 1,
            "KB" | "KiB" => 1 << 10,
            "MB" | "MiB" => 1 << 20,
            "GB" | "GiB" => 1 << 30,
            "TB" | "TiB" => 1 << 40,
            _ => return Err(format!("invalid size unit in {s:?}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size out of range: {s:?}"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format!("{}B", self.0))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// `fallback_scrape_protocol`: how to parse a body whose `Content-Type` is missing or unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
}

fn default_true() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// Resolved from `global` at load time; always set after [`Config::parse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<PromDuration>,
    /// Resolved from `global` at load time (capped at the interval); always set after load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default)]
    pub scheme: Scheme,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub honor_labels: bool,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub honor_timestamps: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub track_timestamps_staleness: bool,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enable_compression: bool,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub follow_redirects: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample_limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_name_length_limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_value_length_limit: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token: String,
    /// Read by the worker at each scrape (a path on the worker, as for Prometheus).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// promshard extension: each target of the job is scraped by this many distinct workers,
    /// each copy labelled [`REPLICA_LABEL`]`="0".."R-1"` so Thanos or Mimir can deduplicate.
    #[serde(default = "default_replication", skip_serializing_if = "is_one")]
    pub replication_factor: u32,
}

/// The label that tells replicas of a target apart (`replication_factor` > 1): the label to
/// give Thanos's `--query.replica-label` or Mimir's `ha_replica_label`.
pub const REPLICA_LABEL: &str = "promshard_replica";

fn default_replication() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

impl ScrapeConfig {
    pub fn interval(&self) -> PromDuration {
        self.scrape_interval.unwrap_or(PromDuration::from_secs(60))
    }
    pub fn timeout(&self) -> PromDuration {
        self.scrape_timeout.unwrap_or(PromDuration::from_secs(10))
    }
    /// The auth and TLS settings, for validation and for the worker's HTTP client.
    pub fn http_client_config(&self) -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: self.basic_auth.clone(),
            authorization: self.authorization.clone(),
            bearer_token: self.bearer_token.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            tls_config: self.tls_config.clone(),
        }
    }
    /// The same job without its discovery sections: what a worker needs to scrape.
    pub fn without_discovery(&self) -> ScrapeConfig {
        ScrapeConfig {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            kubernetes_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            ..self.clone()
        }
    }
}

/// Prometheus's `queue_config` with its defaults (`config/config.go`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    pub batch_send_deadline: PromDuration,
    pub min_backoff: PromDuration,
    pub max_backoff: PromDuration,
    /// Prometheus defaults to false; promshard defaults to true because a 429 means "later",
    /// and dropping a worker's samples on back-pressure loses data the user asked to keep.
    pub retry_on_http_429: bool,
    pub sample_age_limit: PromDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: PromDuration::from_secs(5),
            min_backoff: PromDuration::from_millis(30),
            max_backoff: PromDuration::from_secs(5),
            retry_on_http_429: true,
            sample_age_limit: PromDuration::from_secs(0),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub queue_config: QueueConfig,
    /// Accepted; remote write 1.0 sends no metadata here (2.0 carries it in every series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_config: Option<serde_norway::Value>,
    /// Which wire format to send; 2.0 falls back to 1.0 when the receiver answers 415.
    #[serde(default)]
    pub protobuf_message: ProtobufMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<crate::http_config::BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<crate::http_config::Authorization>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<crate::http_config::TlsConfig>,
}

/// `protobuf_message`: the remote-write protocol version, named by its message as Prometheus
/// does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtobufMessage {
    /// Remote write 1.0.
    #[default]
    #[serde(rename = "prometheus.WriteRequest")]
    V1,
    /// Remote write 2.0: symbols table, metadata and created timestamps per series.
    #[serde(rename = "io.prometheus.write.v2.Request")]
    V2,
}

fn default_remote_timeout() -> PromDuration {
    PromDuration::from_secs(30)
}

impl RemoteWriteConfig {
    /// The name used in metrics and logs: `name`, or a hash of the URL as Prometheus does.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!(
                "{:06x}",
                xxhash_rust::xxh3::xxh3_64(self.url.as_bytes()) & 0xff_ffff
            )
        } else {
            self.name.clone()
        }
    }

    /// The auth and TLS settings, for validation and for building the write client.
    pub fn http_client_config(&self) -> crate::http_config::HttpClientConfig {
        crate::http_config::HttpClientConfig {
            basic_auth: self.basic_auth.clone(),
            authorization: self.authorization.clone(),
            bearer_token: self.bearer_token.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            tls_config: self.tls_config.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
}

impl Config {
    /// Parses and validates a `prometheus.yml`. On error nothing is returned: a config is valid
    /// as a whole or not at all.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let root: Value = serde_norway::from_str(text)
            .map_err(|e| ConfigError::new("config", format!("invalid YAML: {e}")))?;
        let map = match root {
            Value::Null => serde_norway::Mapping::new(),
            Value::Mapping(m) => m,
            _ => return Err(ConfigError::new("config", "top level must be a mapping")),
        };
        let mut cfg = Config::default();
        for (k, v) in map {
            let key = match k {
                Value::String(s) => s,
                other => {
                    return Err(ConfigError::new("config", format!("invalid key {other:?}")));
                }
            };
            match key.as_str() {
                "global" if !v.is_null() => {
                    cfg.global =
                        serde_norway::from_value(v).map_err(|e| ConfigError::new("global", e))?;
                }
                "global" => {}
                "scrape_configs" => cfg.scrape_configs = parse_scrape_configs(v)?,
                "remote_write" => cfg.remote_write = parse_remote_writes(v)?,
                k if IGNORED_TOP_LEVEL.contains(&k) => {}
                k if UNSUPPORTED_TOP_LEVEL.contains(&k) => {
                    if !v.is_null() {
                        return Err(ConfigError::new(k, "not supported by promshard"));
                    }
                }
                k => return Err(ConfigError::new("config", format!("unknown field `{k}`"))),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Fills defaults from `global` and checks cross-field rules.
    fn validate(&mut self) -> Result<(), ConfigError> {
        let g = &mut self.global;
        if g.scrape_interval.0.is_zero() {
            return Err(ConfigError::new(
                "global",
                "scrape_interval must be greater than 0",
            ));
        }
        match g.scrape_timeout {
            Some(t) if t > g.scrape_interval => {
                return Err(ConfigError::new(
                    "global",
                    "scrape_timeout greater than scrape_interval",
                ));
            }
            Some(_) => {}
            None => g.scrape_timeout = Some(PromDuration::from_secs(10).min(g.scrape_interval)),
        }
        let g = &self.global;
        let global_timeout = g.scrape_timeout.unwrap_or(PromDuration::from_secs(10));
        for name in g.external_labels.keys() {
            if !is_valid_label_name(name) {
                return Err(ConfigError::new(
                    "global.external_labels",
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let ctx = format!("scrape_configs[{i}] (job {:?})", sc.job_name);
            let err = |m: String| ConfigError::new(ctx.clone(), m);
            if sc.job_name.is_empty() {
                return Err(err("job_name is empty".into()));
            }
            if !seen.insert(sc.job_name.clone()) {
                return Err(err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                )));
            }
            let interval = sc.scrape_interval.unwrap_or(g.scrape_interval);
            if interval.0.is_zero() {
                return Err(err("scrape_interval must be greater than 0".into()));
            }
            let timeout = match sc.scrape_timeout {
                Some(t) if t > interval => {
                    return Err(err(format!(
                        "scrape_timeout {t} greater than scrape_interval {interval}"
                    )));
                }
                Some(t) => t,
                None => global_timeout.min(interval),
            };
            sc.scrape_interval = Some(interval);
            sc.scrape_timeout = Some(timeout);
            if sc.replication_factor == 0 {
                return Err(err("replication_factor must be at least 1".into()));
            }
            for (j, st) in sc.static_configs.iter().enumerate() {
                for t in &st.targets {
                    check_target_address(t)
                        .map_err(|m| err(format!("static_configs[{j}]: {m}")))?;
                }
                for name in st.labels.keys() {
                    if !is_valid_label_name(name) {
                        return Err(err(format!(
                            "static_configs[{j}].labels: {name:?} is not a valid label name"
                        )));
                    }
                }
            }
            for (j, fsd) in sc.file_sd_configs.iter().enumerate() {
                for f in &fsd.files {
                    if !(f.ends_with(".json") || f.ends_with(".yml") || f.ends_with(".yaml")) {
                        return Err(err(format!(
                            "file_sd_configs[{j}].files: path name {f:?} is not valid for file discovery (want .json, .yml or .yaml)"
                        )));
                    }
                }
            }
            for (j, k) in sc.kubernetes_sd_configs.iter().enumerate() {
                let at = |m: String| err(format!("kubernetes_sd_configs[{j}]: {m}"));
                if !k.api_server.is_empty() && !k.kubeconfig_file.is_empty() {
                    return Err(at(
                        "cannot use 'kubeconfig_file' and 'api_server' simultaneously".into(),
                    ));
                }
                let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
                if !k.api_server.is_empty() && !is_url(&k.api_server) {
                    return Err(at(format!(
                        "api_server {:?} must be an http(s) URL",
                        k.api_server
                    )));
                }
                for sel in &k.selectors {
                    // Prometheus: endpoints(lices) may select on pod and service too.
                    let allowed: &[KubernetesRole] = match k.role {
                        KubernetesRole::Endpoints => &[
                            KubernetesRole::Endpoints,
                            KubernetesRole::Pod,
                            KubernetesRole::Service,
                        ],
                        KubernetesRole::EndpointSlice => &[
                            KubernetesRole::EndpointSlice,
                            KubernetesRole::Pod,
                            KubernetesRole::Service,
                        ],
                        r => std::slice::from_ref(match r {
                            KubernetesRole::Node => &KubernetesRole::Node,
                            KubernetesRole::Pod => &KubernetesRole::Pod,
                            KubernetesRole::Service => &KubernetesRole::Service,
                            _ => &KubernetesRole::Ingress,
                        }),
                    };
                    if !allowed.contains(&sel.role) {
                        return Err(at(format!(
                            "{} role supports only {} selectors",
                            k.role.as_str(),
                            allowed
                                .iter()
                                .map(|r| r.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
            for (field, rules) in [
                ("relabel_configs", &sc.relabel_configs),
                ("metric_relabel_configs", &sc.metric_relabel_configs),
            ] {
                for (j, r) in rules.iter().enumerate() {
                    r.validate()
                        .map_err(|m| err(format!("{field}[{j}]: {m}")))?;
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, rw) in self.remote_write.iter().enumerate() {
            let ctx = format!("remote_write[{i}]");
            let err = |m: String| ConfigError::new(ctx.clone(), m);
            let ok_scheme = rw.url.starts_with("http://") || rw.url.starts_with("https://");
            if !ok_scheme || rw.url.len() <= "https://".len() {
                return Err(err(format!("url {:?} must be an http(s) URL", rw.url)));
            }
            if !names.insert(rw.display_name()) {
                return Err(err(format!(
                    "found multiple remote write configs named {:?}",
                    rw.display_name()
                )));
            }
            let q = &rw.queue_config;
            if q.max_samples_per_send == 0 {
                return Err(err(
                    "queue_config.max_samples_per_send must be greater than 0".into(),
                ));
            }
            if q.min_shards == 0 || q.min_shards > q.max_shards {
                return Err(err("queue_config: need 0 < min_shards <= max_shards".into()));
            }
            for (j, r) in rw.write_relabel_configs.iter().enumerate() {
                r.validate()
                    .map_err(|m| err(format!("write_relabel_configs[{j}]: {m}")))?;
            }
            rw.http_client_config().validate().map_err(err)?;
        }
        Ok(())
    }

    /// The YAML sent to workers: everything but discovery and target relabeling, which stay in
    /// the master (workers receive final targets only).
    pub fn for_workers(&self) -> Config {
        Config {
            global: self.global.clone(),
            scrape_configs: self
                .scrape_configs
                .iter()
                .map(ScrapeConfig::without_discovery)
                .collect(),
            remote_write: self.remote_write.clone(),
        }
    }

    pub fn to_yaml(&self) -> String {
        // Serializing our own plain structs cannot fail.
        serde_norway::to_string(self).unwrap_or_default()
    }

    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }
}

/// Prometheus's `CheckTargetAddress`: a target is `host:port`, never a URL.
pub fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() || addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

fn job_name_of(v: &Value) -> String {
    v.get("job_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn unsupported_field(v: &Value, list: &[&str]) -> Option<String> {
    let m = v.as_mapping()?;
    list.iter()
        .find(|f| m.contains_key(Value::String(f.to_string())))
        .map(|f| f.to_string())
}

fn parse_scrape_configs(v: Value) -> Result<Vec<ScrapeConfig>, ConfigError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s,
        _ => return Err(ConfigError::new("scrape_configs", "must be a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let ctx = format!("scrape_configs[{i}] (job {:?})", job_name_of(&item));
        if let Some(f) = unsupported_field(&item, UNSUPPORTED_SCRAPE_FIELDS) {
            return Err(ConfigError::new(
                ctx,
                format!("field `{f}` is not supported by promshard yet"),
            ));
        }
        let sc: ScrapeConfig =
            serde_norway::from_value(item).map_err(|e| ConfigError::new(ctx.clone(), e))?;
        sc.http_client_config()
            .validate()
            .map_err(|e| ConfigError::new(ctx, e))?;
        out.push(sc);
    }
    Ok(out)
}

fn parse_remote_writes(v: Value) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s,
        _ => return Err(ConfigError::new("remote_write", "must be a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let ctx = format!("remote_write[{i}]");
        if let Some(f) = unsupported_field(&item, UNSUPPORTED_REMOTE_WRITE_FIELDS) {
            return Err(ConfigError::new(
                ctx,
                format!("field `{f}` is not supported by promshard yet"),
            ));
        }
        out.push(serde_norway::from_value(item).map_err(|e| ConfigError::new(ctx, e))?);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
