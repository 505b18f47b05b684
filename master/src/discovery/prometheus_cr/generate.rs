//! prometheus-operator resources to scrape jobs, as the operator's `pkg/prometheus/promcfg.go`
//! writes them (`generateServiceMonitorConfig`, `generatePodMonitorConfig`,
//! `generateProbeConfig`, `generateScrapeConfig`): same job names, same relabel rules in the
//! same order, same fields, in Prometheus's YAML. The output is then validated as any job of
//! the file is (`Config::generated_job`), so a resource that makes an invalid job is refused
//! with the same message a file would get.
//!
//! Deliberate differences from the operator's output:
//! - no sharding rules (`__tmp_hash`, `$(SHARD)`): promshard places targets itself;
//! - TLS material and credentials inline (`ca`, `cert`, `key`, `password`, ...), the
//!   operator's `WithInlineTLSConfig` mode: workers have no Secret volume to read files from;
//! - no scrape classes, enforced namespace label or enforced limits (Prometheus CR fields with
//!   no equivalent in `prometheus_cr`): a resource naming a scrape class is refused.
//!
//! Pure: Secrets and ConfigMaps come through [`Secrets`], so tests need no API server.

use promshard_model::config::{LabelSelector, ServiceDiscoveryRole};
use serde_norway::{Mapping, Value};

use super::spec::*;

/// Secret and ConfigMap keys by name, in the resource's namespace.
pub(crate) trait Secrets {
    fn secret(&self, namespace: &str, name: &str, key: &str) -> Result<String, String>;
    fn config_map(&self, namespace: &str, name: &str, key: &str) -> Result<String, String>;
}

/// `prometheus_cr` settings the generator needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// For endpoints without `interval`.
    pub scrape_interval: Option<String>,
    pub role: ServiceDiscoveryRole,
}

/// An ordered YAML mapping, as the operator's `yaml.MapSlice`.
#[derive(Default)]
struct M(Mapping);

impl M {
    fn set(&mut self, k: &str, v: impl Into<Value>) -> &mut Self {
        self.0.insert(Value::String(k.into()), v.into());
        self
    }
    fn value(self) -> Value {
        Value::Mapping(self.0)
    }
}

fn strs<S: AsRef<str>>(v: &[S]) -> Value {
    Value::Sequence(v.iter().map(|s| Value::String(s.as_ref().into())).collect())
}

/// `sanitizeLabelName`: invalid label characters become `_`.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn rule(pairs: &[(&str, Value)]) -> Value {
    let mut m = M::default();
    for (k, v) in pairs {
        m.set(k, v.clone());
    }
    m.value()
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// `generateRelabelConfig`: the user's rules in Prometheus's spelling (action lower-cased).
fn relabel_rules(rc: &[RelabelConfig]) -> Vec<Value> {
    rc.iter()
        .map(|c| {
            let mut m = M::default();
            if !c.source_labels.is_empty() {
                m.set("source_labels", strs(&c.source_labels));
            }
            if let Some(sep) = &c.separator {
                m.set("separator", s(sep));
            }
            if let Some(t) = c.target_label.as_deref().filter(|t| !t.is_empty()) {
                m.set("target_label", s(t));
            }
            if let Some(r) = c.regex.as_deref().filter(|r| !r.is_empty()) {
                m.set("regex", s(r));
            }
            if let Some(n) = c.modulus.filter(|n| *n != 0) {
                m.set("modulus", Value::Number(n.into()));
            }
            if let Some(r) = &c.replacement {
                m.set("replacement", s(r));
            }
            if let Some(a) = c.action.as_deref().filter(|a| !a.is_empty()) {
                m.set("action", s(&a.to_lowercase()));
            }
            m.value()
        })
        .collect()
}

/// `initRelabelings`.
fn init_relabelings() -> Vec<Value> {
    vec![rule(&[
        ("source_labels", strs(&["job"])),
        ("target_label", s("__tmp_prometheus_job_name")),
    ])]
}

/// The keep/drop rules that select the monitor's objects by label, on `prefix`
/// (`__meta_kubernetes_service` or `__meta_kubernetes_pod`).
fn selector_rules(sel: &LabelSelector, prefix: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (k, v) in &sel.match_labels {
        let k = sanitize(k);
        out.push(rule(&[
            ("action", s("keep")),
            (
                "source_labels",
                strs(&[
                    format!("{prefix}_label_{k}"),
                    format!("{prefix}_labelpresent_{k}"),
                ]),
            ),
            ("regex", s(&format!("({v});true"))),
        ]));
    }
    for e in &sel.match_expressions {
        let k = sanitize(&e.key);
        let both = strs(&[
            format!("{prefix}_label_{k}"),
            format!("{prefix}_labelpresent_{k}"),
        ]);
        let present = strs(&[format!("{prefix}_labelpresent_{k}")]);
        let values = format!("({});true", e.values.join("|"));
        let r = match e.operator.as_str() {
            "In" => rule(&[
                ("action", s("keep")),
                ("source_labels", both),
                ("regex", s(&values)),
            ]),
            "NotIn" => rule(&[
                ("action", s("drop")),
                ("source_labels", both),
                ("regex", s(&values)),
            ]),
            "Exists" => rule(&[
                ("action", s("keep")),
                ("source_labels", present),
                ("regex", s("true")),
            ]),
            "DoesNotExist" => rule(&[
                ("action", s("drop")),
                ("source_labels", present),
                ("regex", s("true")),
            ]),
            op => return Err(format!("selector: unknown operator {op:?}")),
        };
        out.push(r);
    }
    Ok(out)
}

/// `generateK8SSDConfig`.
fn k8s_sd(
    role: &str,
    namespace: &str,
    nsel: &NamespaceSelector,
    attach: Option<&AttachMetadata>,
    role_selectors: Option<(&[&str], &LabelSelector)>,
) -> Result<Value, String> {
    let mut m = M::default();
    m.set("role", s(role));
    let names: Vec<String> = if nsel.any {
        Vec::new()
    } else if nsel.match_names.is_empty() {
        vec![namespace.to_string()]
    } else {
        nsel.match_names.clone()
    };
    if !names.is_empty() {
        let mut n = M::default();
        n.set("names", strs(&names));
        m.set("namespaces", n.value());
    }
    if let Some(a) = attach {
        let mut am = M::default();
        am.set("node", Value::Bool(a.node.unwrap_or(false)));
        m.set("attach_metadata", am.value());
    }
    if let Some((roles, sel)) = role_selectors {
        let label = sel.to_selector_string()?;
        let sels: Vec<Value> = roles
            .iter()
            .map(|r| rule(&[("role", s(r)), ("label", s(&label))]))
            .collect();
        m.set("selectors", Value::Sequence(sels));
    }
    Ok(Value::Sequence(vec![m.value()]))
}

fn secret(
    sec: &dyn Secrets,
    ns: &str,
    sel: &SecretKeySelector,
    what: &str,
) -> Result<String, String> {
    sec.secret(ns, &sel.name, &sel.key)
        .map_err(|e| format!("{what}: Secret {ns}/{} key {:?}: {e}", sel.name, sel.key))
}

fn secret_or_config_map(
    sec: &dyn Secrets,
    ns: &str,
    v: &SecretOrConfigMap,
    what: &str,
) -> Result<Option<String>, String> {
    match (&v.secret, &v.config_map) {
        (Some(_), Some(_)) => Err(format!("{what}: both secret and configMap are set")),
        (Some(s), None) => secret(sec, ns, s, what).map(Some),
        (None, Some(c)) => sec
            .config_map(ns, &c.name, &c.key)
            .map(Some)
            .map_err(|e| format!("{what}: ConfigMap {ns}/{} key {:?}: {e}", c.name, c.key)),
        (None, None) => Ok(None),
    }
}

/// `addTLStoYaml` in inline mode.
fn tls(sec: &dyn Secrets, ns: &str, t: &TlsConfig) -> Result<Value, String> {
    let mut m = M::default();
    if let Some(v) = t.insecure_skip_verify {
        m.set("insecure_skip_verify", Value::Bool(v));
    }
    if let Some(ca) = &t.ca
        && let Some(v) = secret_or_config_map(sec, ns, ca, "tlsConfig.ca")?
    {
        m.set("ca", s(&v));
    }
    if let Some(cert) = &t.cert
        && let Some(v) = secret_or_config_map(sec, ns, cert, "tlsConfig.cert")?
    {
        m.set("cert", s(&v));
    }
    if let Some(k) = &t.key_secret {
        m.set("key", s(&secret(sec, ns, k, "tlsConfig.keySecret")?));
    }
    if let Some(n) = t.server_name.as_deref().filter(|n| !n.is_empty()) {
        m.set("server_name", s(n));
    }
    if let Some(v) = &t.min_version {
        m.set("min_version", s(v));
    }
    if let Some(v) = &t.max_version {
        m.set("max_version", s(v));
    }
    for (k, v) in [
        ("ca_file", &t.ca_file),
        ("cert_file", &t.cert_file),
        ("key_file", &t.key_file),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            m.set(k, s(v));
        }
    }
    Ok(m.value())
}

/// The HTTP client settings of an endpoint (auth, TLS, redirects, HTTP/2, proxy).
#[allow(clippy::too_many_arguments)]
fn http_client(
    cfg: &mut M,
    sec: &dyn Secrets,
    ns: &str,
    tls_config: Option<&TlsConfig>,
    bearer_token_file: Option<&str>,
    bearer_token_secret: Option<&SecretKeySelector>,
    basic_auth: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    oauth2: Option<&OAuth2>,
    follow_redirects: Option<bool>,
    enable_http2: Option<bool>,
    proxy_url: Option<&str>,
) -> Result<(), String> {
    if let Some(v) = follow_redirects {
        cfg.set("follow_redirects", Value::Bool(v));
    }
    if let Some(v) = enable_http2 {
        cfg.set("enable_http2", Value::Bool(v));
    }
    if let Some(p) = proxy_url.filter(|p| !p.is_empty()) {
        cfg.set("proxy_url", s(p));
    }
    if let Some(o) = oauth2 {
        let id = secret_or_config_map(sec, ns, &o.client_id, "oauth2.clientId")?
            .ok_or("oauth2.clientId: neither secret nor configMap is set")?;
        let mut m = M::default();
        m.set("client_id", s(&id));
        m.set(
            "client_secret",
            s(&secret(sec, ns, &o.client_secret, "oauth2.clientSecret")?),
        );
        m.set("token_url", s(&o.token_url));
        if !o.scopes.is_empty() {
            m.set("scopes", strs(&o.scopes));
        }
        if !o.endpoint_params.is_empty() {
            let mut p = M::default();
            for (k, v) in &o.endpoint_params {
                p.set(k, s(v));
            }
            m.set("endpoint_params", p.value());
        }
        cfg.set("oauth2", m.value());
    }
    if let Some(t) = tls_config {
        cfg.set("tls_config", tls(sec, ns, t)?);
    }
    if let Some(f) = bearer_token_file.filter(|f| !f.is_empty()) {
        cfg.set("bearer_token_file", s(f));
    }
    if let Some(b) = bearer_token_secret.filter(|b| !b.name.is_empty()) {
        cfg.set("bearer_token", s(&secret(sec, ns, b, "bearerTokenSecret")?));
    }
    if let Some(b) = basic_auth {
        let mut m = M::default();
        m.set(
            "username",
            s(&secret(sec, ns, &b.username, "basicAuth.username")?),
        );
        m.set(
            "password",
            s(&secret(sec, ns, &b.password, "basicAuth.password")?),
        );
        cfg.set("basic_auth", m.value());
    }
    if let Some(a) = authorization {
        let mut m = M::default();
        let kind = a.kind.as_deref().map(str::trim).filter(|k| !k.is_empty());
        m.set("type", s(kind.unwrap_or("Bearer")));
        if let Some(c) = &a.credentials {
            m.set(
                "credentials",
                s(&secret(sec, ns, c, "authorization.credentials")?),
            );
        }
        cfg.set("authorization", m.value());
    }
    Ok(())
}

/// `AddLimitsToYAML` and friends, and the protocols.
fn limits(cfg: &mut M, l: &Limits) {
    for (k, v) in [
        ("sample_limit", l.sample_limit),
        ("target_limit", l.target_limit),
        ("label_limit", l.label_limit),
        ("label_name_length_limit", l.label_name_length_limit),
        ("label_value_length_limit", l.label_value_length_limit),
        ("keep_dropped_targets", l.keep_dropped_targets),
    ] {
        if let Some(v) = v {
            cfg.set(k, Value::Number(v.into()));
        }
    }
    if let Some(v) = l.native_histogram_bucket_limit {
        cfg.set("native_histogram_bucket_limit", Value::Number(v.into()));
    }
    if let Some(v) = l.scrape_classic_histograms {
        cfg.set("scrape_classic_histograms", Value::Bool(v));
    }
    if !l.scrape_protocols.is_empty() {
        cfg.set("scrape_protocols", strs(&l.scrape_protocols));
    }
    if let Some(p) = &l.fallback_scrape_protocol {
        cfg.set("fallback_scrape_protocol", s(p));
    }
    if let Some(b) = l.body_size_limit.as_deref().filter(|b| !b.is_empty()) {
        cfg.set("body_size_limit", s(b));
    }
}

fn common_endpoint(cfg: &mut M, ep: &Endpoint) {
    cfg.set("honor_labels", Value::Bool(ep.honor_labels));
    if let Some(v) = ep.honor_timestamps {
        cfg.set("honor_timestamps", Value::Bool(v));
    }
    if let Some(v) = ep.track_timestamps_staleness {
        cfg.set("track_timestamps_staleness", Value::Bool(v));
    }
}

fn scrape_fields(cfg: &mut M, ep: &Endpoint, opts: &Options) {
    if let Some(i) = ep.interval.as_ref().or(opts.scrape_interval.as_ref()) {
        cfg.set("scrape_interval", s(i));
    }
    if let Some(t) = ep.scrape_timeout.as_deref().filter(|t| !t.is_empty()) {
        cfg.set("scrape_timeout", s(t));
    }
    if let Some(p) = ep.path.as_deref().filter(|p| !p.is_empty()) {
        cfg.set("metrics_path", s(p));
    }
    if let Some(params) = &ep.params {
        let mut m = M::default();
        for (k, v) in params {
            m.set(k, strs(v));
        }
        cfg.set("params", m.value());
    }
    if let Some(sch) = ep.scheme.as_deref().filter(|s| !s.is_empty()) {
        cfg.set("scheme", s(&sch.to_lowercase()));
    }
}

fn refuse_scrape_class(class: &Option<String>) -> Result<(), String> {
    match class {
        Some(c) if !c.is_empty() => Err(format!(
            "scrapeClass {c:?}: scrape classes are not supported by promshard's prometheus_cr"
        )),
        _ => Ok(()),
    }
}

fn uses_role_selector(mechanism: &Option<String>) -> Result<bool, String> {
    match mechanism.as_deref() {
        None | Some("") | Some("RelabelConfig") => Ok(false),
        Some("RoleSelector") => Ok(true),
        Some(o) => Err(format!("selectorMechanism: unknown value {o:?}")),
    }
}

fn running_filter() -> Value {
    rule(&[
        ("action", s("drop")),
        ("source_labels", strs(&["__meta_kubernetes_pod_phase"])),
        ("regex", s("(Failed|Succeeded)")),
    ])
}

fn label_copy(source: String, target: String) -> Value {
    rule(&[
        ("source_labels", strs(&[source])),
        ("target_label", s(&target)),
        ("regex", s("(.+)")),
        ("replacement", s("${1}")),
    ])
}

fn set_relabelings(cfg: &mut M, relabelings: Vec<Value>) {
    cfg.set("relabel_configs", Value::Sequence(relabelings));
}

fn set_metric_relabelings(cfg: &mut M, rc: &[RelabelConfig]) {
    if !rc.is_empty() {
        cfg.set("metric_relabel_configs", Value::Sequence(relabel_rules(rc)));
    }
}

/// `generateServiceMonitorConfig`, one job per endpoint.
pub(crate) fn service_monitor(
    namespace: &str,
    name: &str,
    spec: &ServiceMonitorSpec,
    opts: &Options,
    sec: &dyn Secrets,
) -> Result<Vec<Value>, String> {
    refuse_scrape_class(&spec.scrape_class)?;
    let role_selector = uses_role_selector(&spec.selector_mechanism)?;
    let role = match spec.service_discovery_role.as_deref() {
        Some("EndpointSlice") => "endpointslice",
        Some("Endpoints") => "endpoints",
        None | Some("") => match opts.role {
            ServiceDiscoveryRole::EndpointSlice => "endpointslice",
            ServiceDiscoveryRole::Endpoints => "endpoints",
        },
        Some(o) => return Err(format!("serviceDiscoveryRole: unknown value {o:?}")),
    };
    let prefix = if role == "endpointslice" {
        "__meta_kubernetes_endpointslice"
    } else {
        "__meta_kubernetes_endpoint"
    };
    let mut jobs = Vec::new();
    for (i, ep) in spec.endpoints.iter().enumerate() {
        let at = |e: String| format!("endpoints[{i}]: {e}");
        let mut cfg = M::default();
        cfg.set(
            "job_name",
            s(&format!("serviceMonitor/{namespace}/{name}/{i}")),
        );
        common_endpoint(&mut cfg, ep);
        let roles: &[&str] = &[role, "service"];
        cfg.set(
            "kubernetes_sd_configs",
            k8s_sd(
                role,
                namespace,
                &spec.namespace_selector,
                spec.attach_metadata.as_ref(),
                role_selector.then_some((roles, &spec.selector)),
            )
            .map_err(at)?,
        );
        scrape_fields(&mut cfg, ep, opts);
        http_client(
            &mut cfg,
            sec,
            namespace,
            ep.tls_config.as_ref(),
            ep.bearer_token_file.as_deref(),
            ep.bearer_token_secret.as_ref(),
            ep.basic_auth.as_ref(),
            ep.authorization.as_ref(),
            ep.oauth2.as_ref(),
            ep.follow_redirects,
            ep.enable_http2,
            ep.proxy_url.as_deref(),
        )
        .map_err(at)?;

        let mut r = init_relabelings();
        if !role_selector {
            r.extend(selector_rules(&spec.selector, "__meta_kubernetes_service")?);
        }
        let port = ep.port.as_deref().filter(|p| !p.is_empty());
        if let Some(p) = port {
            r.push(rule(&[
                ("action", s("keep")),
                ("source_labels", strs(&[format!("{prefix}_port_name")])),
                ("regex", s(p)),
            ]));
        } else if let Some(tp) = &ep.target_port {
            match tp {
                IntOrString::Str(v) if !v.is_empty() => r.push(rule(&[
                    ("action", s("keep")),
                    (
                        "source_labels",
                        strs(&["__meta_kubernetes_pod_container_port_name"]),
                    ),
                    ("regex", s(v)),
                ])),
                IntOrString::Int(n) if *n != 0 => r.push(rule(&[
                    ("action", s("keep")),
                    (
                        "source_labels",
                        strs(&["__meta_kubernetes_pod_container_port_number"]),
                    ),
                    ("regex", s(&n.to_string())),
                ])),
                _ => {}
            }
        }
        let target = strs(&[
            format!("{prefix}_address_target_kind"),
            format!("{prefix}_address_target_name"),
        ]);
        for (kind, label) in [("Node", "node"), ("Pod", "pod")] {
            r.push(rule(&[
                ("source_labels", target.clone()),
                ("separator", s(";")),
                ("regex", s(&format!("{kind};(.*)"))),
                ("replacement", s("${1}")),
                ("target_label", s(label)),
            ]));
        }
        for (src, target) in [
            ("__meta_kubernetes_namespace", "namespace"),
            ("__meta_kubernetes_service_name", "service"),
            ("__meta_kubernetes_pod_name", "pod"),
            ("__meta_kubernetes_pod_container_name", "container"),
        ] {
            r.push(rule(&[
                ("source_labels", strs(&[src])),
                ("target_label", s(target)),
            ]));
        }
        if ep.filter_running.unwrap_or(true) {
            r.push(running_filter());
        }
        for l in &spec.target_labels {
            r.push(label_copy(
                format!("__meta_kubernetes_service_label_{}", sanitize(l)),
                sanitize(l),
            ));
        }
        for l in &spec.pod_target_labels {
            r.push(label_copy(
                format!("__meta_kubernetes_pod_label_{}", sanitize(l)),
                sanitize(l),
            ));
        }
        r.push(rule(&[
            ("source_labels", strs(&["__meta_kubernetes_service_name"])),
            ("target_label", s("job")),
            ("replacement", s("${1}")),
        ]));
        if !spec.job_label.is_empty() {
            r.push(label_copy(
                format!(
                    "__meta_kubernetes_service_label_{}",
                    sanitize(&spec.job_label)
                ),
                "job".into(),
            ));
        }
        if let Some(p) = port {
            r.push(rule(&[
                ("target_label", s("endpoint")),
                ("replacement", s(p)),
            ]));
        } else if let Some(tp) = &ep.target_port {
            let v = tp.as_string();
            if !v.is_empty() {
                r.push(rule(&[
                    ("target_label", s("endpoint")),
                    ("replacement", s(&v)),
                ]));
            }
        }
        r.extend(relabel_rules(&ep.relabelings));
        set_relabelings(&mut cfg, r);
        limits(&mut cfg, &spec.limits);
        set_metric_relabelings(&mut cfg, &ep.metric_relabelings);
        jobs.push(cfg.value());
    }
    Ok(jobs)
}

/// `generatePodMonitorConfig`, one job per endpoint.
pub(crate) fn pod_monitor(
    namespace: &str,
    name: &str,
    spec: &PodMonitorSpec,
    opts: &Options,
    sec: &dyn Secrets,
) -> Result<Vec<Value>, String> {
    refuse_scrape_class(&spec.scrape_class)?;
    let role_selector = uses_role_selector(&spec.selector_mechanism)?;
    let mut jobs = Vec::new();
    for (i, ep) in spec.pod_metrics_endpoints.iter().enumerate() {
        let at = |e: String| format!("podMetricsEndpoints[{i}]: {e}");
        let mut cfg = M::default();
        cfg.set("job_name", s(&format!("podMonitor/{namespace}/{name}/{i}")));
        common_endpoint(&mut cfg, ep);
        let roles: &[&str] = &["pod"];
        cfg.set(
            "kubernetes_sd_configs",
            k8s_sd(
                "pod",
                namespace,
                &spec.namespace_selector,
                spec.attach_metadata.as_ref(),
                role_selector.then_some((roles, &spec.selector)),
            )
            .map_err(at)?,
        );
        scrape_fields(&mut cfg, ep, opts);
        http_client(
            &mut cfg,
            sec,
            namespace,
            ep.tls_config.as_ref(),
            None,
            ep.bearer_token_secret.as_ref(),
            ep.basic_auth.as_ref(),
            ep.authorization.as_ref(),
            ep.oauth2.as_ref(),
            ep.follow_redirects,
            ep.enable_http2,
            ep.proxy_url.as_deref(),
        )
        .map_err(at)?;

        let mut r = init_relabelings();
        if ep.filter_running.unwrap_or(true) {
            r.push(running_filter());
        }
        if !role_selector {
            r.extend(selector_rules(&spec.selector, "__meta_kubernetes_pod")?);
        }
        let port = ep.port.as_deref().filter(|p| !p.is_empty());
        let keep = |src: &str, regex: String| {
            rule(&[
                ("action", s("keep")),
                ("source_labels", strs(&[src])),
                ("regex", s(&regex)),
            ])
        };
        if let Some(p) = port {
            r.push(keep("__meta_kubernetes_pod_container_port_name", p.into()));
        } else if let Some(n) = ep.port_number.filter(|n| *n != 0) {
            r.push(keep(
                "__meta_kubernetes_pod_container_port_number",
                n.to_string(),
            ));
        } else if let Some(tp) = &ep.target_port {
            match tp {
                IntOrString::Str(v) if !v.is_empty() => {
                    r.push(keep("__meta_kubernetes_pod_container_port_name", v.clone()))
                }
                IntOrString::Int(n) if *n != 0 => r.push(keep(
                    "__meta_kubernetes_pod_container_port_number",
                    n.to_string(),
                )),
                _ => {}
            }
        }
        for (src, target) in [
            ("__meta_kubernetes_namespace", "namespace"),
            ("__meta_kubernetes_pod_container_name", "container"),
            ("__meta_kubernetes_pod_name", "pod"),
        ] {
            r.push(rule(&[
                ("source_labels", strs(&[src])),
                ("target_label", s(target)),
            ]));
        }
        for l in &spec.pod_target_labels {
            r.push(label_copy(
                format!("__meta_kubernetes_pod_label_{}", sanitize(l)),
                sanitize(l),
            ));
        }
        r.push(rule(&[
            ("target_label", s("job")),
            ("replacement", s(&format!("{namespace}/{name}"))),
        ]));
        if !spec.job_label.is_empty() {
            r.push(label_copy(
                format!("__meta_kubernetes_pod_label_{}", sanitize(&spec.job_label)),
                "job".into(),
            ));
        }
        if let Some(p) = port {
            r.push(rule(&[
                ("target_label", s("endpoint")),
                ("replacement", s(p)),
            ]));
        } else if let Some(tp) = &ep.target_port {
            let v = tp.as_string();
            if !v.is_empty() {
                r.push(rule(&[
                    ("target_label", s("endpoint")),
                    ("replacement", s(&v)),
                ]));
            }
        }
        r.extend(relabel_rules(&ep.relabelings));
        set_relabelings(&mut cfg, r);
        limits(&mut cfg, &spec.limits);
        set_metric_relabelings(&mut cfg, &ep.metric_relabelings);
        jobs.push(cfg.value());
    }
    Ok(jobs)
}

/// `generateProbeConfig`: one job, static targets or ingresses, the prober as `__address__`.
pub(crate) fn probe(
    namespace: &str,
    name: &str,
    spec: &ProbeSpec,
    opts: &Options,
    sec: &dyn Secrets,
) -> Result<Vec<Value>, String> {
    refuse_scrape_class(&spec.scrape_class)?;
    if spec.prober.url.is_empty() {
        return Err("prober.url is empty".into());
    }
    let mut cfg = M::default();
    cfg.set("job_name", s(&format!("probe/{namespace}/{name}")));
    cfg.set("honor_timestamps", Value::Bool(true));
    // The CRD defaults the prober's path to /probe; an object stored without defaults (or
    // by a double) gets the same.
    let path = spec
        .prober
        .path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("/probe");
    cfg.set("metrics_path", s(path));
    if let Some(i) = spec.interval.as_ref().or(opts.scrape_interval.as_ref()) {
        cfg.set("scrape_interval", s(i));
    }
    if let Some(t) = spec.scrape_timeout.as_deref().filter(|t| !t.is_empty()) {
        cfg.set("scrape_timeout", s(t));
    }
    if let Some(sch) = spec.prober.scheme.as_deref().filter(|s| !s.is_empty()) {
        cfg.set("scheme", s(&sch.to_lowercase()));
    }
    let mut params = M::default();
    if !spec.module.is_empty() {
        params.set("module", strs(&[&spec.module]));
    }
    for p in &spec.params {
        if !spec.module.is_empty() && p.name == "module" {
            continue;
        }
        params.set(&p.name, strs(&p.values));
    }
    if !params.0.is_empty() {
        cfg.set("params", params.value());
    }
    limits(&mut cfg, &spec.limits);
    let mut r = init_relabelings();
    if !spec.job_name.is_empty() {
        r.push(rule(&[
            ("target_label", s("job")),
            ("replacement", s(&spec.job_name)),
        ]));
    }
    if let Some(p) = spec.prober.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        cfg.set("proxy_url", s(p));
    }
    if let Some(v) = spec.follow_redirects {
        cfg.set("follow_redirects", Value::Bool(v));
    }
    if let Some(v) = spec.enable_http2 {
        cfg.set("enable_http2", Value::Bool(v));
    }
    if let Some(t) = &spec.tls_config {
        cfg.set("tls_config", tls(sec, namespace, t)?);
    }
    match (&spec.targets.static_config, &spec.targets.ingress) {
        (Some(st), _) => {
            let mut labels = st.labels.clone().unwrap_or_default();
            labels
                .entry("namespace".into())
                .or_insert_with(|| namespace.into());
            let mut lm = M::default();
            for (k, v) in &labels {
                lm.set(k, s(v));
            }
            let mut sc = M::default();
            sc.set("targets", strs(&st.static_targets));
            sc.set("labels", lm.value());
            cfg.set("static_configs", Value::Sequence(vec![sc.value()]));
            r.push(rule(&[
                ("source_labels", strs(&["__address__"])),
                ("target_label", s("__param_target")),
            ]));
            r.push(rule(&[
                ("source_labels", strs(&["__param_target"])),
                ("target_label", s("instance")),
            ]));
            r.push(rule(&[
                ("target_label", s("__address__")),
                ("replacement", s(&spec.prober.url)),
            ]));
            r.extend(relabel_rules(&st.relabeling_configs));
        }
        (None, Some(ing)) => {
            r.extend(selector_rules(&ing.selector, "__meta_kubernetes_ingress")?);
            cfg.set(
                "kubernetes_sd_configs",
                k8s_sd("ingress", namespace, &ing.namespace_selector, None, None)?,
            );
            r.push(rule(&[
                (
                    "source_labels",
                    strs(&[
                        "__meta_kubernetes_ingress_scheme",
                        "__address__",
                        "__meta_kubernetes_ingress_path",
                    ]),
                ),
                ("separator", s(";")),
                ("regex", s("(.+);(.+);(.+)")),
                ("target_label", s("__param_target")),
                ("replacement", s("${1}://${2}${3}")),
                ("action", s("replace")),
            ]));
            r.push(rule(&[
                ("source_labels", strs(&["__meta_kubernetes_namespace"])),
                ("target_label", s("namespace")),
            ]));
            r.push(rule(&[
                ("source_labels", strs(&["__meta_kubernetes_ingress_name"])),
                ("target_label", s("ingress")),
            ]));
            r.push(rule(&[
                ("source_labels", strs(&["__address__"])),
                ("separator", s(";")),
                ("regex", s("(.*)")),
                ("target_label", s("__tmp_ingress_address")),
                ("replacement", s("$1")),
                ("action", s("replace")),
            ]));
            r.push(rule(&[
                ("source_labels", strs(&["__param_target"])),
                ("target_label", s("instance")),
            ]));
            r.push(rule(&[
                ("target_label", s("__address__")),
                ("replacement", s(&spec.prober.url)),
            ]));
            r.extend(relabel_rules(&ing.relabeling_configs));
        }
        (None, None) => return Err("targets: neither staticConfig nor ingress is set".into()),
    }
    set_relabelings(&mut cfg, r);
    if let Some(b) = spec
        .bearer_token_secret
        .as_ref()
        .filter(|b| !b.name.is_empty())
    {
        cfg.set(
            "bearer_token",
            s(&secret(sec, namespace, b, "bearerTokenSecret")?),
        );
    }
    http_client(
        &mut cfg,
        sec,
        namespace,
        None,
        None,
        None,
        spec.basic_auth.as_ref(),
        spec.authorization.as_ref(),
        spec.oauth2.as_ref(),
        None,
        None,
        None,
    )?;
    set_metric_relabelings(&mut cfg, &spec.metric_relabelings);
    Ok(vec![cfg.value()])
}

/// The `ScrapeConfig` fields naming service discoveries promshard does not read from the
/// resource yet: such a resource is refused rather than half-read.
const SCRAPE_CONFIG_KNOWN: &[&str] = &[
    "jobName",
    "staticConfigs",
    "httpSDConfigs",
    "relabelings",
    "metricRelabelings",
    "metricsPath",
    "scrapeInterval",
    "scrapeTimeout",
    "honorLabels",
    "honorTimestamps",
    "trackTimestampsStaleness",
    "params",
    "scheme",
    "tlsConfig",
    "basicAuth",
    "authorization",
    "oauth2",
    "followRedirects",
    "enableHTTP2",
    "sampleLimit",
    "targetLimit",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "keepDroppedTargets",
    "bodySizeLimit",
    "scrapeProtocols",
    "fallbackScrapeProtocol",
    "nativeHistogramBucketLimit",
    "scrapeClassicHistograms",
    "scrapeClass",
];

/// `generateScrapeConfig` (`monitoring.coreos.com/v1alpha1`), for static and HTTP discovery.
pub(crate) fn scrape_config(
    namespace: &str,
    name: &str,
    raw: &serde_json::Value,
    opts: &Options,
    sec: &dyn Secrets,
) -> Result<Vec<Value>, String> {
    if let Some(obj) = raw.as_object() {
        for k in obj.keys() {
            if !SCRAPE_CONFIG_KNOWN.contains(&k.as_str()) {
                return Err(format!(
                    "spec.{k} is not implemented by promshard's prometheus_cr yet"
                ));
            }
        }
    }
    let spec: ScrapeConfigSpec = parse_spec(raw)?;
    refuse_scrape_class(&spec.scrape_class)?;
    let mut cfg = M::default();
    cfg.set("job_name", s(&format!("scrapeConfig/{namespace}/{name}")));
    if let Some(v) = spec.honor_labels {
        cfg.set("honor_labels", Value::Bool(v));
    }
    if let Some(v) = spec.honor_timestamps {
        cfg.set("honor_timestamps", Value::Bool(v));
    }
    if let Some(v) = spec.track_timestamps_staleness {
        cfg.set("track_timestamps_staleness", Value::Bool(v));
    }
    if let Some(p) = spec.metrics_path.as_deref().filter(|p| !p.is_empty()) {
        cfg.set("metrics_path", s(p));
    }
    if let Some(i) = spec
        .scrape_interval
        .as_ref()
        .or(opts.scrape_interval.as_ref())
    {
        cfg.set("scrape_interval", s(i));
    }
    if let Some(t) = spec.scrape_timeout.as_deref().filter(|t| !t.is_empty()) {
        cfg.set("scrape_timeout", s(t));
    }
    if let Some(params) = &spec.params {
        let mut m = M::default();
        for (k, v) in params {
            m.set(k, strs(v));
        }
        cfg.set("params", m.value());
    }
    if let Some(sch) = spec.scheme.as_deref().filter(|s| !s.is_empty()) {
        cfg.set("scheme", s(&sch.to_lowercase()));
    }
    http_client(
        &mut cfg,
        sec,
        namespace,
        spec.tls_config.as_ref(),
        None,
        None,
        spec.basic_auth.as_ref(),
        spec.authorization.as_ref(),
        spec.oauth2.as_ref(),
        spec.follow_redirects,
        spec.enable_http2,
        None,
    )?;
    let mut r = init_relabelings();
    if let Some(j) = spec.job_name.as_deref().filter(|j| !j.is_empty()) {
        r.push(rule(&[("target_label", s("job")), ("replacement", s(j))]));
    }
    r.extend(relabel_rules(&spec.relabelings));
    set_relabelings(&mut cfg, r);
    if !spec.static_configs.is_empty() {
        let scs: Vec<Value> = spec
            .static_configs
            .iter()
            .map(|sc| {
                let mut m = M::default();
                m.set("targets", strs(&sc.targets));
                if !sc.labels.is_empty() {
                    let mut lm = M::default();
                    for (k, v) in &sc.labels {
                        lm.set(k, s(v));
                    }
                    m.set("labels", lm.value());
                }
                m.value()
            })
            .collect();
        cfg.set("static_configs", Value::Sequence(scs));
    }
    if !spec.http_sd_configs.is_empty() {
        let hs: Vec<Value> = spec
            .http_sd_configs
            .iter()
            .map(|h| {
                let mut m = M::default();
                m.set("url", s(&h.url));
                if let Some(r) = &h.refresh_interval {
                    m.set("refresh_interval", s(r));
                }
                m.value()
            })
            .collect();
        cfg.set("http_sd_configs", Value::Sequence(hs));
    }
    limits(&mut cfg, &spec.limits);
    set_metric_relabelings(&mut cfg, &spec.metric_relabelings);
    Ok(vec![cfg.value()])
}

/// Parses a spec, naming the field that does not fit.
pub(crate) fn parse_spec<T: serde::de::DeserializeOwned>(
    spec: &serde_json::Value,
) -> Result<T, String> {
    serde_path_to_error::deserialize(spec.clone()).map_err(|e| {
        let path = e.path().to_string();
        format!("spec.{path}: {}", e.into_inner())
    })
}
