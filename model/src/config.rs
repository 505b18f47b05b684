//! The `prometheus.yml` promshard understands, validated once at load time.
//!
//! Loading parses the YAML into a generic value, then decodes it into these types tracking the
//! path of every value (`decode.rs`), so each error names where it is:
//! `scrape_configs[3] (job "svc").kubernetes_sd_configs[0].tls_config.max_version: ...`. A field
//! Prometheus knows but promshard does not implement says so (`known.rs`) rather than being
//! called unknown, and is never silently ignored: a collector that quietly drops a user's
//! `tls_config` scrapes the wrong thing.
//!
//! Sections that only matter to a Prometheus *server* (`alerting`, `rule_files`, `storage`, ...)
//! are checked with Prometheus's rules and then ignored, and listed in [`Config::ignored`] so the
//! master can say so (`server.rs`): a collector is not a server, and refusing them only makes
//! users edit files.

mod decode;
mod env;
mod known;
pub mod prometheus_cr;
pub mod sd;
mod server;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::duration::PromDuration;
use crate::http_config::inline_http_client_config;
use crate::labels::is_valid_label_name;
use crate::relabel::RelabelConfig;

pub use prometheus_cr::{CrKind, LabelSelector, PrometheusCrConfig, ServiceDiscoveryRole};
pub use sd::{ConsulSdConfig, DnsRecordType, DnsSdConfig, HttpSdConfig};

/// A configuration error naming where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where: `global.scrape_interval`, `scrape_configs[2] (job "node").relabel_configs[0]`,
    /// `remote_write[0].queue_config`, ...; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// A position in the document, rendered as errors show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct At(String);

impl At {
    pub(crate) fn root() -> At {
        At(String::new())
    }

    pub(crate) fn key(&self, key: &str) -> At {
        if self.0.is_empty() {
            At(key.to_string())
        } else if key.is_empty() {
            self.clone()
        } else {
            At(format!("{}.{key}", self.0))
        }
    }

    pub(crate) fn index(&self, i: usize) -> At {
        At(format!("{}[{i}]", self.0))
    }

    /// `scrape_configs[i] (job "name")`.
    pub(crate) fn job(i: usize, name: &str) -> At {
        At(format!("scrape_configs[{i}] (job {name:?})"))
    }

    pub(crate) fn err(&self, message: impl fmt::Display) -> ConfigError {
        ConfigError::new(self.0.clone(), message)
    }

    /// "`<field>`: not implemented by promshard yet" for a setting whose non-default value
    /// promshard cannot honour.
    pub(crate) fn not_implemented(&self, what: impl fmt::Display) -> ConfigError {
        self.err(format!("{what} is not implemented by promshard yet"))
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prometheus's `metric_name_validation_scheme`: which label and metric names are valid, in
/// the config (external labels, static labels, relabel rules) and in scraped series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationScheme {
    /// `[a-zA-Z_][a-zA-Z0-9_]*` for label names (metric names may have `:` too), Prometheus
    /// 2's rule. The default of a relabel rule outside a config (its config sets it).
    #[default]
    Legacy,
    /// Any non-empty UTF-8 name, Prometheus 3's default.
    Utf8,
}

impl ValidationScheme {
    pub fn is_valid_label_name(&self, name: &str) -> bool {
        match self {
            ValidationScheme::Legacy => is_valid_label_name(name),
            ValidationScheme::Utf8 => !name.is_empty(),
        }
    }

    pub fn is_valid_metric_name(&self, name: &str) -> bool {
        match self {
            ValidationScheme::Legacy => crate::labels::is_valid_metric_name(name),
            ValidationScheme::Utf8 => !name.is_empty(),
        }
    }
}

/// Prometheus's `metric_name_escaping_scheme`: how a target is asked to escape names the
/// validation scheme does not allow (the `escaping=` parameter of the `Accept` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscapingScheme {
    #[serde(rename = "allow-utf-8")]
    AllowUtf8,
    #[serde(rename = "underscores")]
    Underscores,
    #[serde(rename = "dots")]
    Dots,
    #[serde(rename = "values")]
    Values,
}

impl EscapingScheme {
    pub fn as_str(&self) -> &'static str {
        match self {
            EscapingScheme::AllowUtf8 => "allow-utf-8",
            EscapingScheme::Underscores => "underscores",
            EscapingScheme::Dots => "dots",
            EscapingScheme::Values => "values",
        }
    }
}

/// A setting promshard ignores: its value is checked for its type (a bad duration is still an
/// error) and dropped, so it cannot make two configs differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d)?;
        Ok(Checked(std::marker::PhantomData))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: PromDuration,
    /// Unset means 10s capped at `scrape_interval`, as in Prometheus; always set after load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    /// Server settings, checked and ignored (see [`Config::ignored`]).
    #[serde(skip_serializing)]
    pub evaluation_interval: Checked<PromDuration>,
    #[serde(skip_serializing)]
    pub rule_query_offset: Checked<PromDuration>,
    #[serde(skip_serializing)]
    pub query_log_file: Checked<String>,
    #[serde(skip_serializing)]
    pub scrape_failure_log_file: Checked<String>,
    /// Values may refer to environment variables (`${VAR}`, `$VAR`, `$$` for `$`), expanded
    /// by [`Config::parse_with_env`] in the master, so every worker sends the same labels.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub external_labels: BTreeMap<String, String>,
    /// The default of every job's `scrape_protocols`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Defaults of the per-job limits below (0: none), as in Prometheus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "is_zero")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_value_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub keep_dropped_targets: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<ValidationScheme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_escaping_scheme: Option<EscapingScheme>,
    /// The default of every job's `scrape_native_histograms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    /// `true` is refused (needs native histograms); `false` is accepted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub convert_classic_histograms_to_nhcb: bool,
    /// The default of every job's `always_scrape_classic_histograms`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub always_scrape_classic_histograms: bool,
    /// `true` is refused (the extra report series are not implemented yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_scrape_metrics: Option<bool>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration::from_secs(60),
            scrape_timeout: None,
            evaluation_interval: Checked::default(),
            rule_query_offset: Checked::default(),
            query_log_file: Checked::default(),
            scrape_failure_log_file: Checked::default(),
            external_labels: BTreeMap::new(),
            scrape_protocols: None,
            body_size_limit: None,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
            scrape_native_histograms: None,
            convert_classic_histograms_to_nhcb: false,
            always_scrape_classic_histograms: false,
            extra_scrape_metrics: None,
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
    #[serde(deserialize_with = "crate::yaml::string_vec")]
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
    /// The fields the API server accepts in a field selector for the role's kind
    /// (`metadata.name` and, for namespaced kinds, `metadata.namespace`, plus the kind's own:
    /// Kubernetes' `*ToSelectableFields`). Another field makes the API server refuse the watch,
    /// so a Prometheus job using it finds nothing; promshard selects nothing too, and warns.
    pub fn selectable_fields(&self) -> &'static [&'static str] {
        match self {
            KubernetesRole::Pod => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            KubernetesRole::Node => &["metadata.name", "spec.unschedulable"],
            KubernetesRole::Service => &[
                "metadata.name",
                "metadata.namespace",
                "spec.clusterIP",
                "spec.type",
            ],
            KubernetesRole::Endpoints | KubernetesRole::EndpointSlice | KubernetesRole::Ingress => {
                &["metadata.name", "metadata.namespace"]
            }
        }
    }

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

    /// The roles whose selectors a role accepts (`discovery/kubernetes/kubernetes.go`): the
    /// endpoints roles also filter the pods and services they join; the pod role filters the
    /// nodes its `attach_metadata.node` reads.
    pub fn allowed_selector_roles(&self) -> &'static [KubernetesRole] {
        use KubernetesRole::*;
        match self {
            Pod => &[Pod, Node],
            Service => &[Service],
            EndpointSlice => &[Pod, Service, EndpointSlice],
            Endpoints => &[Pod, Service, Endpoints],
            Node => &[Node],
            Ingress => &[Ingress],
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesNamespaces {
    pub own_namespace: bool,
    #[serde(deserialize_with = "crate::yaml::string_vec")]
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

inline_http_client_config! {
    /// `kubernetes_sd_configs[]`. Discovery itself runs on shared watches in the master (one per
    /// resource kind); namespaces and selectors are applied over those shared stores. The HTTP
    /// client settings apply to an `api_server` given here (Prometheus refuses them otherwise).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KubernetesSdConfig {
        pub role: KubernetesRole,
        /// Empty: in-cluster config, `--kubeconfig` or `KUBECONFIG`. Without a scheme,
        /// `https://` if `tls_config` is set and `http://` otherwise, as client-go does.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub api_server: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub kubeconfig_file: String,
        #[serde(default)]
        pub namespaces: KubernetesNamespaces,
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "crate::yaml::non_null_seq"
        )]
        pub selectors: Vec<KubernetesSelector>,
        #[serde(default)]
        pub attach_metadata: AttachMetadata,
    }
}

impl KubernetesSdConfig {
    /// `api_server` as a URL: client-go's rule for a host without a scheme.
    pub fn api_server_url(&self) -> Option<String> {
        if self.api_server.is_empty() {
            None
        } else if self.api_server.contains("://") {
            Some(self.api_server.clone())
        } else if self.tls_config.is_some() {
            Some(format!("https://{}", self.api_server))
        } else {
            Some(format!("http://{}", self.api_server))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Paths or globs (in the last path element) of `.json`, `.yml` or `.yaml` files.
    #[serde(deserialize_with = "crate::yaml::string_vec")]
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
    /// A size with or without a unit (a plain number is bytes), for command-line flags.
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
            "PB" | "PiB" => 1 << 50,
            _ => return Err(format!("invalid size unit in {s:?}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size out of range: {s:?}"))
    }

    /// A size as Prometheus's config accepts it: a unit is required, except for `0`.
    pub fn parse_with_unit(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t != "0" && t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("missing unit in size {s:?} (e.g. {s}MB)"));
        }
        ByteSize::parse(t)
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
            Raw::N(0) => Ok(ByteSize(0)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "missing unit in size {n} (e.g. {n}MB)"
            ))),
            Raw::S(s) => ByteSize::parse_with_unit(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// An exposition format, as `scrape_protocols` and `fallback_scrape_protocol` name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    /// Delimited protobuf `io.prometheus.client.MetricFamily` messages.
    #[serde(rename = "PrometheusProto")]
    PrometheusProto,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    /// Prometheus's `DefaultScrapeProtocols`, in order of preference.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// Prometheus's `DefaultProtoFirstScrapeProtocols`: a job's default when it scrapes
    /// native histograms (only the protobuf format carries them).
    pub const PROTO_FIRST: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    /// The media type with its version (Prometheus's `ScrapeProtocolsHeaders`).
    pub fn media_type(&self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

inline_http_client_config! {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScrapeConfig {
        #[serde(default, deserialize_with = "crate::yaml::string")]
        pub job_name: String,
        /// Resolved from `global` at load time; always set after [`Config::parse`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_interval: Option<PromDuration>,
        /// Resolved from `global` at load time (capped at the interval); always set after load.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_timeout: Option<PromDuration>,
        /// The formats offered in `Accept`, most preferred first. Resolved from `global` (then
        /// Prometheus's default list) at load time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fallback_scrape_protocol: Option<ScrapeProtocol>,
        #[serde(default = "default_metrics_path", deserialize_with = "crate::yaml::string")]
        pub metrics_path: String,
        #[serde(default)]
        pub scheme: Scheme,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub params: BTreeMap<String, Vec<String>>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub honor_labels: bool,
        #[serde(default = "crate::yaml::default_true", skip_serializing_if = "crate::yaml::is_true")]
        pub honor_timestamps: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        pub track_timestamps_staleness: bool,
        #[serde(default = "crate::yaml::default_true", skip_serializing_if = "crate::yaml::is_true")]
        pub enable_compression: bool,
        /// Limits; 0 takes `global`'s, and 0 there means none.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub sample_limit: u64,
        /// More targets than this after relabeling fail every target of the job (Prometheus's
        /// `target_limit`), reported as the scrape error of each.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub target_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub label_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub label_name_length_limit: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub label_value_length_limit: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub body_size_limit: Option<ByteSize>,
        /// How many targets dropped by relabeling `/api/v1/targets` keeps per job (0: all).
        #[serde(default, skip_serializing_if = "is_zero")]
        pub keep_dropped_targets: u64,
        /// Resolved from `global` at load time (Prometheus's rules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metric_name_validation_scheme: Option<ValidationScheme>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metric_name_escaping_scheme: Option<EscapingScheme>,
        /// Read native histograms from protobuf bodies (otherwise their classic buckets);
        /// resolved from `global` at load time. `true` makes `PrometheusProto` lead the
        /// default `scrape_protocols`, as in Prometheus 3.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_native_histograms: Option<bool>,
        /// With native histograms on, also keep the classic series of a histogram that has
        /// classic buckets; resolved from `global` (or the 2.x name
        /// `scrape_classic_histograms`) at load time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub always_scrape_classic_histograms: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_classic_histograms: Option<bool>,
        /// `true` is refused (needs native histograms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        /// More buckets than this in a native histogram lower its resolution until it fits, or
        /// fail the scrape when the lowest resolution does not (0: no limit).
        #[serde(default, skip_serializing_if = "is_zero")]
        pub native_histogram_bucket_limit: u64,
        /// Native histograms whose bucket growth factor is below this are merged to the schema
        /// whose factor is not (Prometheus's `pickSchema`; unset: no cap).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub native_histogram_min_bucket_factor: Option<f64>,
        /// `true` is refused (the extra report series are not implemented yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub extra_scrape_metrics: Option<bool>,
        /// Ignored: failures are in `/api/v1/targets` and the worker's log.
        #[serde(default, skip_serializing)]
        pub scrape_failure_log_file: Checked<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub dns_sd_configs: Vec<DnsSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub consul_sd_configs: Vec<ConsulSdConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub metric_relabel_configs: Vec<RelabelConfig>,
        /// promshard extension: each target of the job is scraped by this many distinct workers,
        /// each copy labelled [`REPLICA_LABEL`]`="0".."R-1"` so Thanos or Mimir can deduplicate.
        #[serde(default = "default_replication", skip_serializing_if = "is_one")]
        pub replication_factor: u32,
    }
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
    /// The formats to offer, most preferred first (Prometheus's default list if unresolved).
    pub fn protocols(&self) -> &[ScrapeProtocol] {
        self.scrape_protocols
            .as_deref()
            .unwrap_or(&ScrapeProtocol::DEFAULT)
    }
    /// Whether native histograms are scraped (`scrape_native_histograms`, resolved at load).
    pub fn native_histograms(&self) -> bool {
        self.scrape_native_histograms.unwrap_or(false)
    }
    /// Whether a native histogram's classic series are kept too
    /// (`always_scrape_classic_histograms`, resolved at load).
    pub fn keep_classic_histograms(&self) -> bool {
        self.always_scrape_classic_histograms
            .or(self.scrape_classic_histograms)
            .unwrap_or(false)
    }
    /// The escaping parameter to ask targets for (allow-utf-8 unless configured otherwise).
    pub fn escaping(&self) -> EscapingScheme {
        self.metric_name_escaping_scheme
            .unwrap_or(EscapingScheme::AllowUtf8)
    }
    /// Whether the job has any service discovery (what stays in the master).
    pub fn has_discovery(&self) -> bool {
        !(self.static_configs.is_empty()
            && self.file_sd_configs.is_empty()
            && self.kubernetes_sd_configs.is_empty()
            && self.http_sd_configs.is_empty()
            && self.dns_sd_configs.is_empty()
            && self.consul_sd_configs.is_empty())
    }
    /// Whether credentials are inline in the job (not `*_file` paths, which name files on the
    /// worker).
    pub fn has_inline_secrets(&self) -> bool {
        self.basic_auth
            .as_ref()
            .is_some_and(|b| !b.password.is_empty())
            || self
                .authorization
                .as_ref()
                .is_some_and(|a| !a.credentials.is_empty())
            || self
                .oauth2
                .as_ref()
                .is_some_and(|o| !o.client_secret.is_empty())
            || !self.bearer_token.is_empty()
            || self.tls_config.as_ref().is_some_and(|t| !t.key.is_empty())
            || self.http_headers.values().any(|h| !h.secrets.is_empty())
    }

    /// The same job without its discovery sections: what a worker needs to scrape.
    pub fn without_discovery(&self) -> ScrapeConfig {
        ScrapeConfig {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            kubernetes_sd_configs: Vec::new(),
            http_sd_configs: Vec::new(),
            dns_sd_configs: Vec::new(),
            consul_sd_configs: Vec::new(),
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

inline_http_client_config! {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteWriteConfig {
        #[serde(deserialize_with = "crate::yaml::string")]
        pub url: String,
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub name: String,
        #[serde(default = "default_remote_timeout")]
        pub remote_timeout: PromDuration,
        #[serde(
            default,
            skip_serializing_if = "BTreeMap::is_empty",
            deserialize_with = "crate::yaml::string_map"
        )]
        pub headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::non_null_seq")]
        pub write_relabel_configs: Vec<RelabelConfig>,
        #[serde(default)]
        pub queue_config: QueueConfig,
        /// Accepted; remote write 1.0 sends no metadata here (2.0 carries it in every series).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata_config: Option<serde_norway::Value>,
        /// Which wire format to send; 2.0 falls back to 1.0 when the receiver answers 415.
        #[serde(default)]
        pub protobuf_message: ProtobufMessage,
        /// `false` only: exemplars are not implemented yet.
        #[serde(default, skip_serializing_if = "is_false")]
        pub send_exemplars: bool,
        /// Send native histograms (otherwise they are left out for this endpoint).
        #[serde(default, skip_serializing_if = "is_false")]
        pub send_native_histograms: bool,
        /// `false` only.
        #[serde(default, skip_serializing_if = "is_false")]
        pub round_robin_dns: bool,
    }
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
}

/// A server-only setting present in the file, checked and then ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// Where it is: `alerting`, `global.evaluation_interval`, `scrape_configs[0] (job "a").scrape_failure_log_file`.
    pub path: String,
    /// Why promshard ignores it.
    pub why: &'static str,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// promshard extension: scrape jobs from prometheus-operator custom resources (master only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_cr: Option<PrometheusCrConfig>,
    /// The server-only settings of the text this config was loaded from, which have no effect
    /// here. Not part of the YAML sent to workers.
    #[serde(skip)]
    pub ignored: Vec<Ignored>,
}

/// Reads an environment variable (`None`: unset).
type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Equal when they do the same: the settings promshard ignores do not count.
impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.global == other.global
            && self.scrape_configs == other.scrape_configs
            && self.remote_write == other.remote_write
            && self.prometheus_cr == other.prometheus_cr
    }
}

/// The top level of a `prometheus.yml`, server-only sections included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    global: Option<GlobalConfig>,
    #[serde(default, deserialize_with = "crate::yaml::non_null_seq")]
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(default, deserialize_with = "crate::yaml::non_null_seq")]
    remote_write: Vec<RemoteWriteConfig>,
    #[serde(default)]
    prometheus_cr: Option<PrometheusCrConfig>,
    // Server-only sections: checked, then ignored.
    #[serde(default, deserialize_with = "crate::yaml::string_vec")]
    rule_files: Vec<String>,
    #[serde(default)]
    alerting: Option<server::AlertingConfig>,
    #[serde(default, deserialize_with = "crate::yaml::non_null_seq")]
    remote_read: Vec<server::RemoteReadConfig>,
    #[serde(default)]
    storage: Option<server::StorageConfig>,
    #[serde(default)]
    tracing: Option<server::TracingConfig>,
    #[serde(default)]
    otlp: Option<server::OtlpConfig>,
    #[serde(default)]
    runtime: Option<server::RuntimeConfig>,
}

impl Config {
    /// Settings that load but select nothing, one line each, for a warning at load (check
    /// config, the master's start and reloads): field selectors on a field the API server does
    /// not support for the role (Prometheus loads them too; the API server then refuses the
    /// watch and the job finds no target). Prometheus's own test configs use
    /// `metadata.status=Running`, so refusing them would refuse files Prometheus accepts.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (j, sc) in self.scrape_configs.iter().enumerate() {
            for (k, sd) in sc.kubernetes_sd_configs.iter().enumerate() {
                for (i, sel) in sd.selectors.iter().enumerate() {
                    let Ok(parsed) = crate::selector::Selector::parse_field(&sel.field) else {
                        continue;
                    };
                    let supported = sel.role.selectable_fields();
                    for key in parsed.keys().filter(|k| !supported.contains(k)) {
                        out.push(format!(
                            "scrape_configs[{j}] (job {:?}).kubernetes_sd_configs[{k}].selectors[{i}].field: \
                             {key:?} is not a selectable field of role {} (the API server would refuse \
                             the watch; this selector matches nothing); selectable: {}",
                            sc.job_name,
                            sel.role.as_str(),
                            supported.join(", ")
                        ));
                    }
                }
            }
        }
        out
    }

    /// Parses and validates a `prometheus.yml` as it was written (no environment expansion):
    /// what the worker does with the text the master sends it. On error nothing is returned:
    /// a config is valid as a whole or not at all.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::load(text, None)
    }

    /// [`Config::parse`], expanding `${VAR}` and `$VAR` in `external_labels` values with
    /// `env` (an unset variable is empty, `$$` is `$`), as Prometheus 3 does when it loads a
    /// file. The master loads user files this way.
    pub fn parse_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load(text, Some(&env))
    }

    fn load(text: &str, env: Option<&EnvLookup<'_>>) -> Result<Config, ConfigError> {
        if let Some(line) = decode::binary_tag_line(text) {
            return Err(ConfigError::new(
                "",
                format!(
                    "line {line}: YAML !!binary values are not accepted: names and values must be UTF-8 text"
                ),
            ));
        }
        let root: Value = serde_norway::from_str(text)
            .map_err(|e| ConfigError::new("", format!("invalid YAML: {e}")))?;
        let root = match root {
            Value::Null => Value::Mapping(serde_norway::Mapping::new()),
            v @ Value::Mapping(_) => v,
            _ => return Err(ConfigError::new("", "the top level must be a mapping")),
        };
        let ignored = server::ignored(&root);
        let doc: Document = decode::decode(root)?;
        let scheme = doc
            .global
            .as_ref()
            .and_then(|g| g.metric_name_validation_scheme)
            .unwrap_or(ValidationScheme::Utf8);
        server::validate(
            scheme,
            &server::Sections {
                rule_files: &doc.rule_files,
                alerting: doc.alerting.as_ref(),
                remote_read: &doc.remote_read,
                storage: doc.storage.as_ref(),
                tracing: doc.tracing.as_ref(),
                otlp: doc.otlp.as_ref(),
                runtime: doc.runtime.as_ref(),
            },
        )?;
        let mut cfg = Config {
            global: doc.global.unwrap_or_default(),
            scrape_configs: doc.scrape_configs,
            remote_write: doc.remote_write,
            prometheus_cr: doc.prometheus_cr,
            ignored,
        };
        if let Some(env) = env {
            for v in cfg.global.external_labels.values_mut() {
                *v = env::expand(v, &env);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Fills defaults from `global` and checks cross-field rules.
    fn validate(&mut self) -> Result<(), ConfigError> {
        let at = At::root().key("global");
        validate_global(&mut self.global, &at)?;
        let mut seen = HashSet::new();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let at = At::job(i, &sc.job_name);
            validate_scrape_config(sc, &self.global, &at)?;
            if !seen.insert(sc.job_name.clone()) {
                return Err(at.key("job_name").err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                )));
            }
        }
        if let Some(cr) = &self.prometheus_cr {
            cr.validate(&At::root().key("prometheus_cr"))?;
        }
        let mut names = HashSet::new();
        let global_scheme = self
            .global
            .metric_name_validation_scheme
            .unwrap_or(ValidationScheme::Utf8);
        for (i, rw) in self.remote_write.iter_mut().enumerate() {
            let at = At::root().key("remote_write").index(i);
            for r in &mut rw.write_relabel_configs {
                r.name_validation = global_scheme;
            }
            validate_remote_write(rw, &at)?;
            if !names.insert(rw.display_name()) {
                return Err(at.key("name").err(format!(
                    "found multiple remote write configs named {:?}",
                    rw.display_name()
                )));
            }
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
            prometheus_cr: None,
            ignored: Vec::new(),
        }
    }

    /// The jobs carrying credentials inline (a password, token, client secret, TLS key or
    /// secret header): the master sends each of them only to the workers that scrape one of
    /// its targets ([`Config::for_worker`]).
    pub fn jobs_with_inline_secrets(&self) -> BTreeSet<String> {
        self.scrape_configs
            .iter()
            .filter(|s| s.has_inline_secrets())
            .map(|s| s.job_name.clone())
            .collect()
    }

    /// [`Config::for_workers`] for one worker: the jobs with inline credentials that it has
    /// no target of are left out, so a worker never holds another job's secrets.
    pub fn for_worker(&self, withheld: &BTreeSet<String>) -> Config {
        let mut c = self.for_workers();
        c.scrape_configs.retain(|s| !withheld.contains(&s.job_name));
        c
    }

    /// A scrape job generated outside the file (from a prometheus-operator resource), as
    /// YAML in Prometheus's format, validated with exactly the rules of a job in the file and
    /// with this config's `global` defaults.
    pub fn generated_job(&self, job: Value) -> Result<ScrapeConfig, ConfigError> {
        let mut doc = serde_norway::Mapping::new();
        let global = serde_norway::to_value(&self.global)
            .map_err(|e| ConfigError::new("global", e.to_string()))?;
        doc.insert("global".into(), global);
        doc.insert("scrape_configs".into(), Value::Sequence(vec![job]));
        let text = serde_norway::to_string(&Value::Mapping(doc))
            .map_err(|e| ConfigError::new("", e.to_string()))?;
        let mut cfg = Config::parse(&text)?;
        cfg.scrape_configs
            .pop()
            .ok_or_else(|| ConfigError::new("", "no job generated"))
    }

    /// This config with `jobs` appended (jobs generated from custom resources), unless a name
    /// is taken: the file's jobs win, and the clashing generated ones are returned.
    pub fn with_generated_jobs(&self, jobs: &[ScrapeConfig]) -> (Config, Vec<String>) {
        let mut out = self.clone();
        let mut names: HashSet<String> = self
            .scrape_configs
            .iter()
            .map(|s| s.job_name.clone())
            .collect();
        let mut clashes = Vec::new();
        for j in jobs {
            if names.insert(j.job_name.clone()) {
                out.scrape_configs.push(j.clone());
            } else {
                clashes.push(j.job_name.clone());
            }
        }
        (out, clashes)
    }

    pub fn to_yaml(&self) -> String {
        // Serializing our own plain structs cannot fail.
        serde_norway::to_string(self).unwrap_or_default()
    }

    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }
}

fn validate_global(g: &mut GlobalConfig, at: &At) -> Result<(), ConfigError> {
    if g.scrape_interval.0.is_zero() {
        return Err(at
            .key("scrape_interval")
            .err("scrape_interval must be greater than 0"));
    }
    match g.scrape_timeout {
        Some(t) if t > g.scrape_interval => {
            return Err(at
                .key("scrape_timeout")
                .err("global scrape timeout greater than scrape interval"));
        }
        Some(_) => {}
        None => g.scrape_timeout = Some(PromDuration::from_secs(10).min(g.scrape_interval)),
    }
    let scheme = g
        .metric_name_validation_scheme
        .unwrap_or(ValidationScheme::Utf8);
    for name in g.external_labels.keys() {
        if !scheme.is_valid_label_name(name) {
            return Err(at
                .key("external_labels")
                .err(format!("{name:?} is not a valid label name")));
        }
    }
    if let Some(p) = &g.scrape_protocols {
        validate_scrape_protocols(p, &at.key("scrape_protocols"))?;
    }
    // scrape_native_histograms, convert_classic_histograms_to_nhcb and extra_scrape_metrics
    // are checked per job, where they take effect: `true` here with every job saying `false`
    // changes nothing.
    Ok(())
}

/// Prometheus's `validateAcceptScrapeProtocols`.
fn validate_scrape_protocols(p: &[ScrapeProtocol], at: &At) -> Result<(), ConfigError> {
    if p.is_empty() {
        return Err(at.err("scrape_protocols cannot be empty"));
    }
    let mut seen = HashSet::new();
    for sp in p {
        if !seen.insert(sp) {
            let names: Vec<_> = p.iter().map(ScrapeProtocol::as_str).collect();
            return Err(at.err(format!(
                "duplicated protocol in scrape_protocols, got {names:?}"
            )));
        }
    }
    Ok(())
}

fn validate_scrape_config(
    sc: &mut ScrapeConfig,
    g: &GlobalConfig,
    at: &At,
) -> Result<(), ConfigError> {
    // Discovery sections first, then the job's own fields, in Prometheus's order.
    for (j, k) in sc.kubernetes_sd_configs.iter().enumerate() {
        validate_kubernetes(k, &at.key("kubernetes_sd_configs").index(j))?;
    }
    for (j, h) in sc.http_sd_configs.iter().enumerate() {
        h.validate(&at.key("http_sd_configs").index(j))?;
    }
    for (j, d) in sc.dns_sd_configs.iter().enumerate() {
        d.validate(&at.key("dns_sd_configs").index(j))?;
    }
    for (j, c) in sc.consul_sd_configs.iter().enumerate() {
        c.validate(&at.key("consul_sd_configs").index(j))?;
    }
    if sc.job_name.is_empty() {
        return Err(at.key("job_name").err("job_name is empty"));
    }
    sc.http_client_config()
        .validate()
        .map_err(|e| at.key(&e.field).err(e.message))?;
    let interval = sc.scrape_interval.unwrap_or(g.scrape_interval);
    if interval.0.is_zero() {
        return Err(at
            .key("scrape_interval")
            .err("scrape_interval must be greater than 0"));
    }
    let global_timeout = g.scrape_timeout.unwrap_or(PromDuration::from_secs(10));
    let timeout = match sc.scrape_timeout {
        Some(t) if t > interval => {
            return Err(at.key("scrape_timeout").err(format!(
                "scrape_timeout {t} greater than scrape_interval {interval}"
            )));
        }
        Some(t) => t,
        None => global_timeout.min(interval),
    };
    sc.scrape_interval = Some(interval);
    sc.scrape_timeout = Some(timeout);

    // Limits and protocols default to global's, as in Prometheus's `ScrapeConfig.Validate`.
    for (mine, global) in [
        (&mut sc.sample_limit, g.sample_limit),
        (&mut sc.target_limit, g.target_limit),
        (&mut sc.label_limit, g.label_limit),
        (&mut sc.label_name_length_limit, g.label_name_length_limit),
        (&mut sc.label_value_length_limit, g.label_value_length_limit),
        (&mut sc.keep_dropped_targets, g.keep_dropped_targets),
    ] {
        if *mine == 0 {
            *mine = global;
        }
    }
    if sc.body_size_limit.is_none_or(|b| b.0 == 0) && g.body_size_limit.is_some() {
        sc.body_size_limit = g.body_size_limit;
    }
    // Settings that would change what is scraped, on for this job (its own value, or global's
    // when it has none), are refused; their off values are accepted.
    let from = |mine: Option<bool>| if mine.is_some() { "" } else { ", from global" };
    sc.scrape_native_histograms = Some(
        sc.scrape_native_histograms
            .unwrap_or(g.scrape_native_histograms.unwrap_or(false)),
    );
    sc.always_scrape_classic_histograms = Some(
        sc.always_scrape_classic_histograms
            .or(sc.scrape_classic_histograms)
            .unwrap_or(g.always_scrape_classic_histograms),
    );
    let on = [
        (
            "convert_classic_histograms_to_nhcb",
            sc.convert_classic_histograms_to_nhcb,
            g.convert_classic_histograms_to_nhcb,
            "converting classic histograms to native ones",
        ),
        (
            "extra_scrape_metrics",
            sc.extra_scrape_metrics,
            g.extra_scrape_metrics.unwrap_or(false),
            "the extra scrape report series",
        ),
    ];
    for (field, mine, global, what) in on {
        if mine.unwrap_or(global) {
            return Err(at
                .key(field)
                .not_implemented(format!("{what} (true{})", from(mine))));
        }
    }
    match &sc.scrape_protocols {
        Some(p) => validate_scrape_protocols(p, &at.key("scrape_protocols"))?,
        None => {
            // Prometheus 3 (`ScrapeConfig.Validate`): global's list, else protobuf first when
            // the job scrapes native histograms, else the text formats.
            sc.scrape_protocols = Some(match &g.scrape_protocols {
                Some(p) => p.clone(),
                None if sc.native_histograms() => ScrapeProtocol::PROTO_FIRST.to_vec(),
                None => ScrapeProtocol::DEFAULT.to_vec(),
            });
        }
    }
    resolve_name_schemes(sc, g, at)?;
    let scheme = sc
        .metric_name_validation_scheme
        .unwrap_or(ValidationScheme::Utf8);

    for (j, st) in sc.static_configs.iter().enumerate() {
        let at = at.key("static_configs").index(j);
        for t in &st.targets {
            check_target_address(t).map_err(|m| at.key("targets").err(m))?;
        }
        for name in st.labels.keys() {
            if !scheme.is_valid_label_name(name) {
                return Err(at
                    .key("labels")
                    .err(format!("{name:?} is not a valid label name")));
            }
        }
    }
    for (j, fsd) in sc.file_sd_configs.iter().enumerate() {
        for f in &fsd.files {
            if !(f.ends_with(".json") || f.ends_with(".yml") || f.ends_with(".yaml")) {
                return Err(at.key("file_sd_configs").index(j).key("files").err(format!(
                    "path name {f:?} is not valid for file discovery (want .json, .yml or .yaml)"
                )));
            }
        }
    }
    for (field, rules) in [
        ("relabel_configs", &mut sc.relabel_configs),
        ("metric_relabel_configs", &mut sc.metric_relabel_configs),
    ] {
        for (j, r) in rules.iter_mut().enumerate() {
            r.name_validation = scheme;
            r.validate().map_err(|m| at.key(field).index(j).err(m))?;
        }
    }
    if sc.replication_factor == 0 {
        return Err(at
            .key("replication_factor")
            .err("replication_factor must be at least 1"));
    }
    Ok(())
}

/// Prometheus's rules for `metric_name_validation_scheme` and `metric_name_escaping_scheme`:
/// a job inherits global's; an unset escaping scheme follows the validation scheme; UTF-8
/// escaping needs UTF-8 validation.
fn resolve_name_schemes(
    sc: &mut ScrapeConfig,
    g: &GlobalConfig,
    at: &At,
) -> Result<(), ConfigError> {
    let global_validation = g
        .metric_name_validation_scheme
        .unwrap_or(ValidationScheme::Utf8);
    let global_escaping = g
        .metric_name_escaping_scheme
        .unwrap_or(match global_validation {
            ValidationScheme::Legacy => EscapingScheme::Underscores,
            ValidationScheme::Utf8 => EscapingScheme::AllowUtf8,
        });
    let local_unset = sc.metric_name_validation_scheme.is_none();
    let validation = sc
        .metric_name_validation_scheme
        .unwrap_or(global_validation);
    let escaping = match sc.metric_name_escaping_scheme {
        Some(e) => e,
        None if local_unset => global_escaping,
        None if validation == ValidationScheme::Legacy => EscapingScheme::Underscores,
        None => EscapingScheme::AllowUtf8,
    };
    if escaping == EscapingScheme::AllowUtf8 && validation != ValidationScheme::Utf8 {
        return Err(at
            .key("metric_name_escaping_scheme")
            .err("utf8 metric names requested but validation scheme is not set to UTF8"));
    }
    sc.metric_name_validation_scheme = Some(validation);
    sc.metric_name_escaping_scheme = Some(escaping);
    Ok(())
}

fn validate_kubernetes(k: &KubernetesSdConfig, at: &At) -> Result<(), ConfigError> {
    let http = k.http_client_config();
    http.validate()
        .map_err(|e| at.key(&e.field).err(e.message))?;
    let has_api_server = !k.api_server.is_empty();
    if has_api_server && !k.kubeconfig_file.is_empty() {
        return Err(at.err("cannot use 'kubeconfig_file' and 'api_server' simultaneously"));
    }
    if !k.kubeconfig_file.is_empty() && !http.is_default() {
        return Err(
            at.err("cannot use a custom HTTP client configuration together with 'kubeconfig_file'")
        );
    }
    if !has_api_server && !http.is_default() {
        return Err(at.err(
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
        ));
    }
    // What kube's client cannot do (see master/src/discovery/kubernetes/client.rs).
    let not_here = |field: &str, what: &str| {
        at.key(field).err(format!(
            "{what} is not implemented by promshard in kubernetes_sd_configs"
        ))
    };
    if http.oauth2.is_some() {
        return Err(not_here("oauth2", "oauth2"));
    }
    if http.proxy.is_set()
        || !http.proxy.no_proxy.is_empty()
        || !http.proxy.proxy_connect_header.is_empty()
    {
        return Err(not_here("proxy_url", "a proxy"));
    }
    if let Some(t) = &http.tls_config {
        for (field, v) in [
            ("min_version", &t.min_version),
            ("max_version", &t.max_version),
        ] {
            if !v.is_empty() {
                return Err(not_here(
                    &format!("tls_config.{field}"),
                    "a TLS version bound",
                ));
            }
        }
    }
    if has_api_server && k.namespaces.own_namespace {
        return Err(at
            .key("namespaces.own_namespace")
            .err("cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"));
    }
    if !k.kubeconfig_file.is_empty() && k.namespaces.own_namespace {
        return Err(at
            .key("namespaces.own_namespace")
            .err("cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously"));
    }
    if let Some(url) = k.api_server_url()
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(at
            .key("api_server")
            .err(format!("{:?} is not an http(s) URL", k.api_server)));
    }
    let mut roles = HashSet::new();
    for (i, sel) in k.selectors.iter().enumerate() {
        let at = at.key("selectors").index(i);
        if !roles.insert(sel.role) {
            return Err(at
                .key("role")
                .err(format!("duplicated selector role: {}", sel.role.as_str())));
        }
        let allowed = k.role.allowed_selector_roles();
        if !allowed.contains(&sel.role) {
            let names: Vec<_> = allowed.iter().map(KubernetesRole::as_str).collect();
            return Err(at.key("role").err(format!(
                "{} role supports only {} selectors",
                k.role.as_str(),
                names.join(", ")
            )));
        }
        crate::selector::Selector::parse_field(&sel.field).map_err(|e| at.key("field").err(e))?;
        crate::selector::Selector::parse_label(&sel.label).map_err(|e| at.key("label").err(e))?;
    }
    Ok(())
}

fn validate_remote_write(rw: &RemoteWriteConfig, at: &At) -> Result<(), ConfigError> {
    if rw.url.is_empty() {
        return Err(at.key("url").err("url for remote_write is empty"));
    }
    let host = match rw.url.split_once("://") {
        Some(("http" | "https", rest)) => rest.split(['/', '?', '#']).next().unwrap_or(""),
        _ => "",
    };
    if host.is_empty() {
        // Prometheus accepts any URL here and fails every send; refusing it now is kinder.
        return Err(at
            .key("url")
            .err(format!("{:?} is not an http(s) URL", rw.url)));
    }
    server::validate_headers(&rw.headers).map_err(|m| at.key("headers").err(m))?;
    rw.http_client_config()
        .validate()
        .map_err(|e| at.key(&e.field).err(e.message))?;
    let q = &rw.queue_config;
    let qat = at.key("queue_config");
    if q.max_shards == 0 {
        return Err(qat
            .key("max_shards")
            .err("remote write queue max_shards must be positive"));
    }
    if q.min_shards == 0 {
        return Err(qat
            .key("min_shards")
            .err("remote write queue min_shards must be positive"));
    }
    if q.min_shards > q.max_shards {
        return Err(qat
            .key("min_shards")
            .err("remote write queue min_shards must not be greater than max_shards"));
    }
    if q.max_samples_per_send == 0 {
        return Err(qat
            .key("max_samples_per_send")
            .err("remote write queue max_samples_per_send must be positive"));
    }
    if q.capacity == 0 {
        return Err(qat
            .key("capacity")
            .err("remote write queue capacity must be positive"));
    }
    if q.max_backoff < q.min_backoff {
        return Err(qat
            .key("max_backoff")
            .err("remote write queue max_backoff must not be less than min_backoff"));
    }
    if rw.send_exemplars {
        return Err(at
            .key("send_exemplars")
            .not_implemented("sending exemplars (true)"));
    }
    if rw.round_robin_dns {
        return Err(at
            .key("round_robin_dns")
            .not_implemented("round-robin DNS (true)"));
    }
    for (j, r) in rw.write_relabel_configs.iter().enumerate() {
        r.validate()
            .map_err(|m| at.key("write_relabel_configs").index(j).err(m))?;
    }
    Ok(())
}

/// Prometheus's `CheckTargetAddress`: a target is `host:port`, never a URL.
pub fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() || addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "config/prometheus_testdata_tests.rs"]
mod prometheus_testdata_tests;
