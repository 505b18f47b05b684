//! The `prometheus_cr` block: a promshard extension to `prometheus.yml`, named and shaped as the
//! OpenTelemetry Target Allocator names it, that turns prometheus-operator custom resources
//! (ServiceMonitor, PodMonitor, Probe, ScrapeConfig) into scrape jobs beside the file's own.
//!
//! Only the block lives here (parsed and validated with the rest of the file, so `check config`
//! refuses a bad selector). Watching the resources and generating the jobs is the master's
//! (`master/src/discovery/prometheus_cr/`); a generated job is validated with
//! [`Config::generated_job`](super::Config::generated_job), the same rules as a job in the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{At, ConfigError};
use crate::duration::PromDuration;
use crate::selector::Selector;

/// Kubernetes' `metav1.LabelSelector`: `matchLabels` and `matchExpressions`, ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// The selector in the API server's string form (`a=b,c in (d,e),!f`), as
    /// `metav1.LabelSelectorAsSelector` renders it: what `selectors[].label` of a generated
    /// `kubernetes_sd_configs` entry carries.
    pub fn to_selector_string(&self) -> Result<String, String> {
        let mut parts: Vec<String> = Vec::new();
        for (k, v) in &self.match_labels {
            parts.push(format!("{k}={v}"));
        }
        for e in &self.match_expressions {
            let mut values = e.values.clone();
            values.sort();
            match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!(
                        "matchExpressions key {:?}: operator {} needs values",
                        e.key, e.operator
                    ));
                }
                "In" => parts.push(format!("{} in ({})", e.key, values.join(","))),
                "NotIn" => parts.push(format!("{} notin ({})", e.key, values.join(","))),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!(
                        "matchExpressions key {:?}: operator {} takes no values",
                        e.key, e.operator
                    ));
                }
                "Exists" => parts.push(e.key.clone()),
                "DoesNotExist" => parts.push(format!("!{}", e.key)),
                op => {
                    return Err(format!(
                        "matchExpressions key {:?}: unknown operator {op:?} (In, NotIn, Exists, DoesNotExist)",
                        e.key
                    ));
                }
            }
        }
        // The API server sorts requirements by key; so does labels.Selector.String().
        parts.sort();
        Ok(parts.join(","))
    }

    /// The parsed selector; the empty selector matches everything.
    pub fn to_selector(&self) -> Result<Selector, String> {
        Selector::parse_label(&self.to_selector_string()?)
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// Kubernetes discovery role of the jobs generated from ServiceMonitors (the operator's
/// `serviceDiscoveryRole`): EndpointSlice by default, as the operator recommends and because
/// slices fan out less than Endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceDiscoveryRole {
    #[default]
    EndpointSlice,
    Endpoints,
}

/// `prometheus_cr:`. An absent or empty (`{}`) selector selects every object, and an absent or
/// empty namespace selector every namespace, as in the Target Allocator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusCrConfig {
    pub enabled: bool,
    /// Interval of endpoints that set none (default: `global.scrape_interval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<PromDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_monitor_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_monitor_namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_monitor_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_monitor_namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_config_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_config_namespace_selector: Option<LabelSelector>,
    /// Role of the jobs generated from ServiceMonitors without their own
    /// `serviceDiscoveryRole`.
    pub service_discovery_role: ServiceDiscoveryRole,
}

/// The custom resource kinds `prometheus_cr` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrKind {
    ServiceMonitor,
    PodMonitor,
    Probe,
    ScrapeConfig,
}

impl CrKind {
    pub const ALL: [CrKind; 4] = [
        CrKind::ServiceMonitor,
        CrKind::PodMonitor,
        CrKind::Probe,
        CrKind::ScrapeConfig,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CrKind::ServiceMonitor => "ServiceMonitor",
            CrKind::PodMonitor => "PodMonitor",
            CrKind::Probe => "Probe",
            CrKind::ScrapeConfig => "ScrapeConfig",
        }
    }
}

impl PrometheusCrConfig {
    /// (object selector, namespace selector) of a kind; `None` selects everything.
    pub fn selectors(&self, kind: CrKind) -> (Option<&LabelSelector>, Option<&LabelSelector>) {
        let (o, n) = match kind {
            CrKind::ServiceMonitor => (
                &self.service_monitor_selector,
                &self.service_monitor_namespace_selector,
            ),
            CrKind::PodMonitor => (
                &self.pod_monitor_selector,
                &self.pod_monitor_namespace_selector,
            ),
            CrKind::Probe => (&self.probe_selector, &self.probe_namespace_selector),
            CrKind::ScrapeConfig => (
                &self.scrape_config_selector,
                &self.scrape_config_namespace_selector,
            ),
        };
        (o.as_ref(), n.as_ref())
    }

    /// The kinds to watch: all four when enabled. A kind whose CRD is not installed costs a
    /// LIST retried with backoff and generates nothing.
    pub fn kinds(&self) -> Vec<CrKind> {
        if !self.enabled {
            return Vec::new();
        }
        CrKind::ALL.to_vec()
    }

    /// Whether some namespace selector looks at namespace labels (then namespaces are watched).
    pub fn needs_namespaces(&self) -> bool {
        self.kinds()
            .into_iter()
            .any(|k| self.selectors(k).1.is_some_and(|s| !s.is_empty()))
    }

    pub(super) fn validate(&self, at: &At) -> Result<(), ConfigError> {
        if let Some(i) = self.scrape_interval
            && i.0.is_zero()
        {
            return Err(at
                .key("scrape_interval")
                .err("scrape_interval must be greater than 0"));
        }
        let names = [
            ("service_monitor", CrKind::ServiceMonitor),
            ("pod_monitor", CrKind::PodMonitor),
            ("probe", CrKind::Probe),
            ("scrape_config", CrKind::ScrapeConfig),
        ];
        for (name, kind) in names {
            let (o, n) = self.selectors(kind);
            if let Some(s) = o {
                s.to_selector()
                    .map_err(|e| at.key(&format!("{name}_selector")).err(e))?;
            }
            if let Some(s) = n {
                s.to_selector()
                    .map_err(|e| at.key(&format!("{name}_namespace_selector")).err(e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_block_parses_validates_and_round_trips() {
        let text = "prometheus_cr:\n  enabled: true\n  scrape_interval: 15s\n  service_monitor_selector: {matchLabels: {release: kps}}\n  service_monitor_namespace_selector: {}\n  pod_monitor_selector: {matchExpressions: [{key: team, operator: In, values: [b, a]}]}\n";
        let cfg = Config::parse(text).unwrap();
        let cr = cfg.prometheus_cr.as_ref().unwrap();
        assert_eq!(cr.kinds(), CrKind::ALL.to_vec());
        assert!(!cr.needs_namespaces());
        assert_eq!(
            cr.pod_monitor_selector
                .as_ref()
                .unwrap()
                .to_selector_string()
                .unwrap(),
            "team in (a,b)"
        );
        assert_eq!(cr.scrape_interval, Some(PromDuration::from_secs(15)));
        let again = Config::parse(&cfg.to_yaml()).unwrap();
        assert_eq!(again.prometheus_cr, cfg.prometheus_cr);
    }

    #[test]
    fn bad_selectors_and_fields_name_their_path() {
        let bad_op = "prometheus_cr:\n  enabled: true\n  probe_selector: {matchExpressions: [{key: a, operator: Near}]}\n";
        let e = Config::parse(bad_op).unwrap_err();
        assert_eq!(e.path, "prometheus_cr.probe_selector");
        assert!(e.message.contains("unknown operator \"Near\""), "{e}");
        let unknown = "prometheus_cr:\n  enabled: true\n  service_monitor_selecter: {}\n";
        let e = Config::parse(unknown).unwrap_err();
        assert!(e.to_string().contains("service_monitor_selecter"), "{e}");
        let no_values = "prometheus_cr:\n  pod_monitor_namespace_selector: {matchExpressions: [{key: a, operator: In}]}\n";
        let e = Config::parse(no_values).unwrap_err();
        assert_eq!(e.path, "prometheus_cr.pod_monitor_namespace_selector");
    }

    #[test]
    fn disabled_or_absent_reads_nothing() {
        let cfg = Config::parse("prometheus_cr:\n  service_monitor_selector: {}\n").unwrap();
        assert!(cfg.prometheus_cr.unwrap().kinds().is_empty());
        let cfg = Config::parse("prometheus_cr:\n  enabled: true\n  pod_monitor_selector: {}\n  pod_monitor_namespace_selector: {matchLabels: {a: b}}\n").unwrap();
        let cr = cfg.prometheus_cr.unwrap();
        assert_eq!(cr.kinds().len(), 4);
        assert!(cr.needs_namespaces());
    }
}

#[cfg(test)]
mod owner_only_tests {
    use std::collections::BTreeSet;

    use crate::config::Config;

    /// Jobs with inline credentials are named, and a worker's config leaves out those it has no
    /// target of; `*_file` paths are not credentials the master holds.
    #[test]
    fn inline_credentials_are_withheld_from_workers_without_targets() {
        let cfg = Config::parse(
            r#"
scrape_configs:
  - job_name: basic
    basic_auth: {username: u, password: p}
    static_configs: [{targets: ['h:1']}]
  - job_name: token
    authorization: {credentials: t}
    static_configs: [{targets: ['h:2']}]
  - job_name: tls
    tls_config: {cert: C, key: K}
    static_configs: [{targets: ['h:3']}]
  - job_name: header
    http_headers: {X-Key: {secrets: [s]}}
    static_configs: [{targets: ['h:4']}]
  - job_name: files
    basic_auth: {username: u, password_file: /p}
    tls_config: {cert_file: /c, key_file: /k}
    static_configs: [{targets: ['h:5']}]
  - job_name: plain
    static_configs: [{targets: ['h:6']}]
"#,
        )
        .unwrap();
        let secret: Vec<String> = cfg.jobs_with_inline_secrets().into_iter().collect();
        assert_eq!(secret, ["basic", "header", "tls", "token"]);
        let withheld: BTreeSet<String> = ["basic".into(), "tls".into()].into();
        let jobs: Vec<String> = cfg
            .for_worker(&withheld)
            .scrape_configs
            .into_iter()
            .map(|s| s.job_name)
            .collect();
        assert_eq!(jobs, ["token", "header", "files", "plain"]);
    }
}
