//! Sections that only matter to a Prometheus *server*: `alerting`, `rule_files`, `remote_read`,
//! `storage`, `tracing`, `otlp`, `runtime`, and the server settings of `global`. promshard
//! accepts them so an existing prometheus.yml works unchanged, checks them with Prometheus's
//! rules (`config/config.go`) so a file promshard accepts is one Prometheus accepts, and then
//! ignores them; [`ignored`] lists what a file sets so the master can say so.
//!
//! Unlike the sections promshard acts on, these do not refuse fields they do not know: a
//! setting a newer Prometheus adds to `storage` must not stop a collector that stores nothing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_norway::Value;

use super::{At, ByteSize, ConfigError, FileSdConfig, Ignored, StaticConfig};
use crate::duration::PromDuration;
use crate::http_config::inline_http_client_config;
use crate::relabel::RelabelConfig;

/// Top-level sections promshard ignores, with why.
const SECTIONS: &[(&str, &str)] = &[
    ("alerting", "promshard sends no alerts"),
    ("rule_files", "promshard evaluates no rules"),
    ("remote_read", "promshard answers no queries"),
    (
        "storage",
        "promshard keeps no TSDB (only the remote-write WAL)",
    ),
    ("tracing", "promshard exports no traces"),
    ("otlp", "promshard receives no OTLP"),
    ("runtime", "Go runtime settings"),
];

/// Server settings inside `global`.
const GLOBAL_SETTINGS: &[(&str, &str)] = &[
    ("evaluation_interval", "promshard evaluates no rules"),
    ("rule_query_offset", "promshard evaluates no rules"),
    ("query_log_file", "promshard answers no queries"),
    (
        "scrape_failure_log_file",
        "scrape failures are in /api/v1/targets and the worker's log",
    ),
];

/// What a document sets that promshard ignores, in document order.
pub(super) fn ignored(root: &Value) -> Vec<Ignored> {
    let mut out = Vec::new();
    let Some(map) = root.as_mapping() else {
        return out;
    };
    for (key, value) in map {
        let Some(key) = key.as_str() else { continue };
        if let Some((_, why)) = SECTIONS.iter().find(|(s, _)| *s == key)
            && !is_empty(value)
        {
            out.push(Ignored {
                path: key.to_string(),
                why,
            });
        }
        if key == "global"
            && let Some(global) = value.as_mapping()
        {
            for (k, v) in global {
                if let Some((name, why)) =
                    GLOBAL_SETTINGS.iter().find(|(s, _)| k.as_str() == Some(s))
                    && !is_empty(v)
                {
                    out.push(Ignored {
                        path: format!("global.{name}"),
                        why,
                    });
                }
            }
        }
        if key == "scrape_configs"
            && let Some(jobs) = value.as_sequence()
        {
            for (i, job) in jobs.iter().enumerate() {
                if job
                    .get("scrape_failure_log_file")
                    .is_some_and(|v| !is_empty(v))
                {
                    let name = job.get("job_name").and_then(Value::as_str).unwrap_or("");
                    out.push(Ignored {
                        path: At::job(i, name).key("scrape_failure_log_file").to_string(),
                        why: "scrape failures are in /api/v1/targets and the worker's log",
                    });
                }
            }
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AlertingConfig {
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AlertmanagerConfig {
    api_version: Option<String>,
    timeout: Option<PromDuration>,
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    relabel_configs: Vec<RelabelConfig>,
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    static_configs: Vec<StaticConfig>,
    #[serde(deserialize_with = "crate::yaml::non_null_seq")]
    file_sd_configs: Vec<FileSdConfig>,
}

inline_http_client_config! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RemoteReadConfig {
        #[serde(default)]
        url: Option<String>,
        #[serde(default, deserialize_with = "crate::yaml::string")]
        name: String,
        #[serde(default)]
        remote_timeout: Option<PromDuration>,
        #[serde(default, deserialize_with = "crate::yaml::string_map")]
        headers: BTreeMap<String, String>,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StorageConfig {
    tsdb: Option<TsdbConfig>,
    exemplars: Option<ExemplarsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TsdbConfig {
    out_of_order_time_window: Option<PromDuration>,
    stale_series_compaction_threshold: Option<f64>,
    chunk_encoding: ChunkEncoding,
    retention: Option<Retention>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChunkEncoding {
    #[serde(deserialize_with = "crate::yaml::string")]
    floats: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Retention {
    time: Option<PromDuration>,
    size: Option<ByteSize>,
    percentage: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExemplarsConfig {
    max_exemplars: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TracingConfig {
    client_type: Option<String>,
    #[serde(deserialize_with = "crate::yaml::string")]
    endpoint: String,
    sampling_fraction: Option<f64>,
    insecure: bool,
    tls_config: Option<crate::http_config::TlsConfig>,
    #[serde(deserialize_with = "crate::yaml::string_map")]
    headers: BTreeMap<String, String>,
    #[serde(deserialize_with = "crate::yaml::string")]
    compression: String,
    timeout: Option<PromDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct OtlpConfig {
    promote_all_resource_attributes: bool,
    #[serde(deserialize_with = "crate::yaml::string_vec")]
    promote_resource_attributes: Vec<String>,
    #[serde(deserialize_with = "crate::yaml::string_vec")]
    ignore_resource_attributes: Vec<String>,
    translation_strategy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RuntimeConfig {
    gogc: Option<i64>,
}

/// The server-only sections of a document, as decoded.
pub(super) struct Sections<'a> {
    pub(super) rule_files: &'a [String],
    pub(super) alerting: Option<&'a AlertingConfig>,
    pub(super) remote_read: &'a [RemoteReadConfig],
    pub(super) storage: Option<&'a StorageConfig>,
    pub(super) tracing: Option<&'a TracingConfig>,
    pub(super) otlp: Option<&'a OtlpConfig>,
    pub(super) runtime: Option<&'a RuntimeConfig>,
}

/// Prometheus's load-time rules for the server-only sections, with its messages; relabel
/// rules are checked under the global name validation `scheme`.
pub(super) fn validate(
    scheme: super::ValidationScheme,
    sections: &Sections<'_>,
) -> Result<(), ConfigError> {
    let Sections {
        rule_files,
        alerting,
        remote_read,
        storage,
        tracing,
        otlp,
        runtime,
    } = *sections;
    let root = At::root();
    for (i, rf) in rule_files.iter().enumerate() {
        if !is_rule_path(rf) {
            return Err(root
                .key("rule_files")
                .index(i)
                .err(format!("invalid rule file path {rf:?}")));
        }
    }
    if let Some(a) = alerting {
        validate_alerting(a, scheme, &root.key("alerting"))?;
    }
    let mut names = std::collections::HashSet::new();
    for (i, rr) in remote_read.iter().enumerate() {
        let at = root.key("remote_read").index(i);
        if rr.url.as_deref().is_none_or(str::is_empty) {
            return Err(at.key("url").err("url for remote_read is empty"));
        }
        validate_headers(&rr.headers).map_err(|m| at.key("headers").err(m))?;
        rr.http_client_config()
            .validate()
            .map_err(|e| at.key(&e.field).err(e.message))?;
        if !rr.name.is_empty() && !names.insert(rr.name.as_str()) {
            return Err(at.key("name").err(format!(
                "found multiple remote read configs with job name {:?}",
                rr.name
            )));
        }
        // Checked for their types only.
        let _ = rr.remote_timeout;
    }
    if let Some(tsdb) = storage.and_then(|s| s.tsdb.as_ref()) {
        let at = root.key("storage").key("tsdb");
        if !matches!(tsdb.chunk_encoding.floats.as_str(), "" | "xor" | "xor2") {
            return Err(at.key("chunk_encoding").key("floats").err(format!(
                "'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted entirely, got {:?}",
                tsdb.chunk_encoding.floats
            )));
        }
        if let Some(p) = tsdb.retention.as_ref().and_then(|r| r.percentage)
            && !(0.0..=100.0).contains(&p)
        {
            return Err(at.key("retention").key("percentage").err(format!(
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got {p}"
            )));
        }
        let _ = (
            tsdb.out_of_order_time_window,
            tsdb.stale_series_compaction_threshold,
            tsdb.retention.as_ref().map(|r| (r.time, r.size)),
        );
    }
    let _ = storage.and_then(|s| s.exemplars.as_ref().map(|e| e.max_exemplars));
    if let Some(t) = tracing {
        validate_tracing(t, &root.key("tracing"))?;
    }
    if let Some(o) = otlp {
        validate_otlp(o, &root.key("otlp"))?;
    }
    let _ = runtime.map(|r| r.gogc);
    Ok(())
}

/// Prometheus's `patRulePath`, `^[^*]*(\*[^/]*)?$`: at most one `*`, in the last path element.
fn is_rule_path(p: &str) -> bool {
    match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains(['*', '/']),
    }
}

fn validate_alerting(
    a: &AlertingConfig,
    scheme: super::ValidationScheme,
    at: &At,
) -> Result<(), ConfigError> {
    let check = |r: &RelabelConfig| {
        let mut r = r.clone();
        r.name_validation = scheme;
        r.validate()
    };
    for (i, r) in a.alert_relabel_configs.iter().enumerate() {
        check(r).map_err(|m| at.key("alert_relabel_configs").index(i).err(m))?;
    }
    for (i, am) in a.alertmanagers.iter().enumerate() {
        let at = at.key("alertmanagers").index(i);
        if let Some(v) = &am.api_version
            && v != "v2"
        {
            return Err(at.key("api_version").err(format!(
                "expected Alertmanager api version to be one of [v2] but got {v}"
            )));
        }
        for (field, rules) in [
            ("relabel_configs", &am.relabel_configs),
            ("alert_relabel_configs", &am.alert_relabel_configs),
        ] {
            for (j, r) in rules.iter().enumerate() {
                check(r).map_err(|m| at.key(field).index(j).err(m))?;
            }
        }
        if am.relabel_configs.is_empty() {
            for (j, st) in am.static_configs.iter().enumerate() {
                for t in &st.targets {
                    super::check_target_address(t)
                        .map_err(|m| at.key("static_configs").index(j).key("targets").err(m))?;
                }
            }
        }
        let _ = (am.timeout, am.file_sd_configs.len());
    }
    Ok(())
}

fn validate_tracing(t: &TracingConfig, at: &At) -> Result<(), ConfigError> {
    for name in t.headers.keys() {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            return Err(at
                .key("headers")
                .err("custom authorization header configuration is not yet supported"));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(at.key("headers").err(format!(
                "{name} is a reserved header. It must not be changed"
            )));
        }
    }
    if t.endpoint.is_empty() {
        return Err(at.key("endpoint").err("tracing endpoint must be set"));
    }
    if !t.compression.is_empty() && t.compression != "gzip" {
        return Err(at.key("compression").err(format!(
            "invalid compression type {} provided, valid options: gzip",
            t.compression
        )));
    }
    if let Some(c) = &t.client_type
        && c != "http"
        && c != "grpc"
    {
        return Err(at.key("client_type").err(format!(
            "expected tracing client type to be to be http or grpc, but got {c}"
        )));
    }
    let _ = (t.sampling_fraction, t.insecure, &t.tls_config, t.timeout);
    Ok(())
}

/// The translation strategies Prometheus knows (`otlptranslator.TranslationStrategyOption`).
const TRANSLATION_STRATEGIES: &[&str] = &[
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
];

fn validate_otlp(o: &OtlpConfig, at: &At) -> Result<(), ConfigError> {
    if let Some(s) = &o.translation_strategy
        && !TRANSLATION_STRATEGIES.contains(&s.as_str())
    {
        return Err(at
            .key("translation_strategy")
            .err(format!("unsupported OTLP translation strategy {s:?}")));
    }
    if o.promote_all_resource_attributes {
        if !o.promote_resource_attributes.is_empty() {
            return Err(at.err("'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously"));
        }
        check_attributes(&o.ignore_resource_attributes, "ignored")
            .map_err(|m| at.key("ignore_resource_attributes").err(m))?;
    } else {
        if !o.ignore_resource_attributes.is_empty() {
            return Err(at.key("ignore_resource_attributes").err(
                "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
            ));
        }
        check_attributes(&o.promote_resource_attributes, "promoted")
            .map_err(|m| at.key("promote_resource_attributes").err(m))?;
    }
    Ok(())
}

/// Prometheus's `sanitizeAttributes`: no empty or duplicated names (after trimming).
fn check_attributes(attrs: &[String], adjective: &str) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for a in attrs {
        let a = a.trim();
        if a.is_empty() {
            return Err(format!("empty {adjective} OTel resource attribute"));
        }
        if !seen.insert(a) {
            return Err(format!(
                "duplicated {adjective} OTel resource attribute {a:?}"
            ));
        }
    }
    Ok(())
}

/// Headers of `remote_write`/`remote_read` that may not be set (Prometheus's `reservedHeaders`).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Prometheus's `validateHeaders` for `remote_write` and `remote_read` headers.
pub(super) fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    for name in headers.keys() {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            return Err("authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter".into());
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "{name} is a reserved header. It must not be changed"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_rule_path;

    #[test]
    fn rule_paths_as_prometheus() {
        for ok in ["a", "my/*.rules", "/abs/x*y", "*"] {
            assert!(is_rule_path(ok), "{ok}");
        }
        for bad in ["my/*/rule", "a**", "*/x"] {
            assert!(!is_rule_path(bad), "{bad}");
        }
    }
}
