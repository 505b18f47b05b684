//! The parts of the prometheus-operator resources' specs that the generator reads
//! (`pkg/apis/monitoring/v1/{servicemonitor,podmonitor,probe}_types.go`, `v1alpha1`'s
//! `scrapeconfig_types.go`, `types.go` for the shared pieces). Unknown fields are ignored, as
//! the operator's own decoding does; a field we read but cannot honour is refused by the
//! generator with its name.

use std::collections::BTreeMap;

use promshard_model::config::LabelSelector;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ServiceMonitorSpec {
    pub job_label: String,
    pub target_labels: Vec<String>,
    pub pod_target_labels: Vec<String>,
    pub endpoints: Vec<Endpoint>,
    pub selector: LabelSelector,
    pub selector_mechanism: Option<String>,
    pub namespace_selector: NamespaceSelector,
    pub attach_metadata: Option<AttachMetadata>,
    pub service_discovery_role: Option<String>,
    #[serde(flatten)]
    pub limits: Limits,
    pub scrape_class: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct PodMonitorSpec {
    pub job_label: String,
    pub pod_target_labels: Vec<String>,
    pub pod_metrics_endpoints: Vec<Endpoint>,
    pub selector: LabelSelector,
    pub selector_mechanism: Option<String>,
    pub namespace_selector: NamespaceSelector,
    pub attach_metadata: Option<AttachMetadata>,
    #[serde(flatten)]
    pub limits: Limits,
    pub scrape_class: Option<String>,
}

/// The per-monitor limits and protocols (`sampleLimit`, ... ; `scrapeProtocols`, ...).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Limits {
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub body_size_limit: Option<String>,
    pub scrape_protocols: Vec<String>,
    pub fallback_scrape_protocol: Option<String>,
    pub native_histogram_bucket_limit: Option<u64>,
    pub scrape_classic_histograms: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct NamespaceSelector {
    pub any: bool,
    pub match_names: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct AttachMetadata {
    pub node: Option<bool>,
}

/// `intstr.IntOrString`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    pub(super) fn as_string(&self) -> String {
        match self {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::Str(s) => s.clone(),
        }
    }
}

/// A ServiceMonitor `endpoints[]` or PodMonitor `podMetricsEndpoints[]` entry (the two share
/// almost everything; `portNumber` is the PodMonitor's only).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Endpoint {
    pub port: Option<String>,
    pub port_number: Option<i64>,
    pub target_port: Option<IntOrString>,
    pub path: Option<String>,
    pub scheme: Option<String>,
    pub params: Option<BTreeMap<String, Vec<String>>>,
    pub interval: Option<String>,
    pub scrape_timeout: Option<String>,
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    pub track_timestamps_staleness: Option<bool>,
    pub relabelings: Vec<RelabelConfig>,
    pub metric_relabelings: Vec<RelabelConfig>,
    pub tls_config: Option<TlsConfig>,
    pub bearer_token_file: Option<String>,
    pub bearer_token_secret: Option<SecretKeySelector>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub follow_redirects: Option<bool>,
    #[serde(rename = "enableHttp2")]
    pub enable_http2: Option<bool>,
    pub filter_running: Option<bool>,
    pub proxy_url: Option<String>,
}

/// `monitoringv1.RelabelConfig`: the operator's spelling of a relabel rule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub target_label: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct SecretKeySelector {
    pub name: String,
    pub key: String,
    pub optional: Option<bool>,
}

/// `SecretOrConfigMap`: exactly one of the two.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct SecretOrConfigMap {
    pub secret: Option<SecretKeySelector>,
    pub config_map: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct TlsConfig {
    pub ca: Option<SecretOrConfigMap>,
    pub cert: Option<SecretOrConfigMap>,
    pub key_secret: Option<SecretKeySelector>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct BasicAuth {
    pub username: SecretKeySelector,
    pub password: SecretKeySelector,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct OAuth2 {
    pub client_id: SecretOrConfigMap,
    pub client_secret: SecretKeySelector,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub endpoint_params: BTreeMap<String, String>,
}

/// `monitoringv1.ProbeSpec` (static targets and ingresses; the prober is a blackbox exporter).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ProbeSpec {
    pub job_name: String,
    pub module: String,
    pub prober: Prober,
    pub params: Vec<ProbeParam>,
    #[serde(rename = "enableHttp2")]
    pub enable_http2: Option<bool>,
    pub follow_redirects: Option<bool>,
    pub targets: ProbeTargets,
    pub interval: Option<String>,
    pub scrape_timeout: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub bearer_token_secret: Option<SecretKeySelector>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub metric_relabelings: Vec<RelabelConfig>,
    #[serde(flatten)]
    pub limits: Limits,
    pub scrape_class: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Prober {
    pub url: String,
    pub scheme: Option<String>,
    pub path: Option<String>,
    pub proxy_url: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ProbeTargets {
    pub static_config: Option<ProbeStatic>,
    pub ingress: Option<ProbeIngress>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ProbeStatic {
    #[serde(rename = "static")]
    pub static_targets: Vec<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub relabeling_configs: Vec<RelabelConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ProbeIngress {
    pub selector: LabelSelector,
    pub namespace_selector: NamespaceSelector,
    pub relabeling_configs: Vec<RelabelConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ProbeParam {
    pub name: String,
    pub values: Vec<String>,
}

/// `monitoringv1alpha1.ScrapeConfigSpec`: the service discoveries promshard has (static, file,
/// http, kubernetes, dns, consul are the operator's; only static and http are read here yet).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ScrapeConfigSpec {
    pub job_name: Option<String>,
    pub static_configs: Vec<ScrapeStaticConfig>,
    #[serde(rename = "httpSDConfigs")]
    pub http_sd_configs: Vec<HttpSdConfig>,
    pub relabelings: Vec<RelabelConfig>,
    pub metric_relabelings: Vec<RelabelConfig>,
    pub metrics_path: Option<String>,
    pub scrape_interval: Option<String>,
    pub scrape_timeout: Option<String>,
    pub honor_labels: Option<bool>,
    pub honor_timestamps: Option<bool>,
    pub track_timestamps_staleness: Option<bool>,
    pub params: Option<BTreeMap<String, Vec<String>>>,
    pub scheme: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub follow_redirects: Option<bool>,
    #[serde(rename = "enableHTTP2")]
    pub enable_http2: Option<bool>,
    #[serde(flatten)]
    pub limits: Limits,
    pub scrape_class: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ScrapeStaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Option<String>,
}
