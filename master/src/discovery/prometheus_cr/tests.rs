//! The generator against prometheus-operator's goldens (`pkg/prometheus/testdata/*.golden`,
//! the scrape job only: without the sharding rules and the `global` section, see
//! `generate.rs`), and our own cases for every field the generator reads. Each expected job
//! is also loaded as a job of the file would be (`Config::generated_job`).

use std::collections::BTreeMap;

use promshard_model::config::Config;
use serde_json::json;
use serde_norway::Value;

use super::generate::{self, Options, Secrets};

/// Secrets and ConfigMaps of one namespace, `default`.
#[derive(Default)]
struct Fake(BTreeMap<(String, String), String>);

impl Fake {
    fn with(mut self, name: &str, key: &str, value: &str) -> Self {
        self.0.insert((name.into(), key.into()), value.into());
        self
    }
}

impl Secrets for Fake {
    fn secret(&self, ns: &str, name: &str, key: &str) -> Result<String, String> {
        assert_eq!(
            ns, "default",
            "a Secret is read in the resource's namespace"
        );
        self.0
            .get(&(name.into(), key.into()))
            .cloned()
            .ok_or_else(|| "not found".into())
    }
    fn config_map(&self, ns: &str, name: &str, key: &str) -> Result<String, String> {
        self.secret(ns, &format!("cm:{name}"), key)
    }
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}

/// Asserts the generated job equals `want` and loads as a valid job.
fn check(got: &Value, want: &str) {
    let want = yaml(want);
    assert_eq!(
        got,
        &want,
        "got:\n{}\nwant:\n{}",
        serde_norway::to_string(got).unwrap(),
        serde_norway::to_string(&want).unwrap()
    );
    Config::default_for_tests()
        .generated_job(got.clone())
        .unwrap_or_else(|e| panic!("generated job does not load: {e}"));
}

trait ForTests {
    fn default_for_tests() -> Config;
}
impl ForTests for Config {
    fn default_for_tests() -> Config {
        Config::parse("global: {scrape_interval: 30s}\n").unwrap()
    }
}

fn sm(spec: serde_json::Value) -> Result<Vec<Value>, String> {
    sm_with(spec, &Fake::default(), &Options::default())
}

fn sm_with(spec: serde_json::Value, sec: &Fake, opts: &Options) -> Result<Vec<Value>, String> {
    let spec = generate::parse_spec(&spec)?;
    generate::service_monitor("default", "test", &spec, opts, sec)
}

fn pm(spec: serde_json::Value, sec: &Fake) -> Result<Vec<Value>, String> {
    let spec = generate::parse_spec(&spec)?;
    generate::pod_monitor(
        "default",
        "defaultPodMonitor",
        &spec,
        &Options::default(),
        sec,
    )
}

/// `TestServiceMonitorWithEndpointSliceEnable_Expected.golden`.
#[test]
fn service_monitor_endpointslice_is_the_operators() {
    let jobs = sm(json!({
        "selector": {
            "matchLabels": {"foo": "bar"},
            "matchExpressions": [{"key": "alpha", "operator": "In", "values": ["beta", "gamma"]}]
        },
        "endpoints": [{"port": "web", "interval": "30s"}]
    }))
    .unwrap();
    assert_eq!(jobs.len(), 1);
    check(
        &jobs[0],
        r#"
job_name: serviceMonitor/default/test/0
honor_labels: false
kubernetes_sd_configs:
- role: endpointslice
  namespaces:
    names:
    - default
scrape_interval: 30s
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- action: keep
  source_labels: [__meta_kubernetes_service_label_foo, __meta_kubernetes_service_labelpresent_foo]
  regex: (bar);true
- action: keep
  source_labels: [__meta_kubernetes_service_label_alpha, __meta_kubernetes_service_labelpresent_alpha]
  regex: (beta|gamma);true
- action: keep
  source_labels: [__meta_kubernetes_endpointslice_port_name]
  regex: web
- source_labels: [__meta_kubernetes_endpointslice_address_target_kind, __meta_kubernetes_endpointslice_address_target_name]
  separator: ;
  regex: Node;(.*)
  replacement: ${1}
  target_label: node
- source_labels: [__meta_kubernetes_endpointslice_address_target_kind, __meta_kubernetes_endpointslice_address_target_name]
  separator: ;
  regex: Pod;(.*)
  replacement: ${1}
  target_label: pod
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_service_name]
  target_label: service
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
- source_labels: [__meta_kubernetes_pod_container_name]
  target_label: container
- action: drop
  source_labels: [__meta_kubernetes_pod_phase]
  regex: (Failed|Succeeded)
- source_labels: [__meta_kubernetes_service_name]
  target_label: job
  replacement: ${1}
- target_label: endpoint
  replacement: web
"#,
    );
}

/// `PodMonitorObjectWithMatchExpressionSelector.golden` (selectorMechanism RoleSelector).
#[test]
fn pod_monitor_role_selector_is_the_operators() {
    let jobs = pm(
        json!({
            "selector": {"matchExpressions": [{"key": "group", "operator": "In", "values": ["group1"]}]},
            "selectorMechanism": "RoleSelector",
            "podMetricsEndpoints": [{"port": "web", "interval": "30s"}]
        }),
        &Fake::default(),
    )
    .unwrap();
    check(
        &jobs[0],
        r#"
job_name: podMonitor/default/defaultPodMonitor/0
honor_labels: false
kubernetes_sd_configs:
- role: pod
  namespaces:
    names:
    - default
  selectors:
  - role: pod
    label: group in (group1)
scrape_interval: 30s
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- action: drop
  source_labels: [__meta_kubernetes_pod_phase]
  regex: (Failed|Succeeded)
- action: keep
  source_labels: [__meta_kubernetes_pod_container_port_name]
  regex: web
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_pod_container_name]
  target_label: container
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
- target_label: job
  replacement: default/defaultPodMonitor
- target_label: endpoint
  replacement: web
"#,
    );
}

/// Every field of a ServiceMonitor endpoint the generator reads, on the Endpoints role,
/// with `targetPort`, `jobLabel`, `targetLabels`, `podTargetLabels`, auth and TLS from
/// Secrets and a ConfigMap, limits and attachMetadata.
#[test]
fn service_monitor_every_field() {
    let sec = Fake::default()
        .with("cm:ca", "ca.crt", "CA PEM")
        .with("tls", "tls.crt", "CERT PEM")
        .with("tls", "tls.key", "KEY PEM")
        .with("auth", "user", "alice")
        .with("auth", "pass", "s3cret")
        .with("auth", "token", "tok");
    let jobs = sm_with(
        json!({
            "jobLabel": "app.kubernetes.io/name",
            "targetLabels": ["team"],
            "podTargetLabels": ["version"],
            "serviceDiscoveryRole": "Endpoints",
            "namespaceSelector": {"any": true},
            "attachMetadata": {"node": true},
            "selector": {"matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["x"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "app", "operator": "Exists"}
            ]},
            "sampleLimit": 1000, "targetLimit": 10, "labelLimit": 30,
            "labelNameLengthLimit": 100, "labelValueLengthLimit": 200, "keepDroppedTargets": 5,
            "bodySizeLimit": "10MB",
            "endpoints": [{
                "targetPort": 8443,
                "path": "/m", "scheme": "HTTPS", "params": {"format": ["prometheus"]},
                "interval": "15s", "scrapeTimeout": "5s",
                "honorLabels": true, "honorTimestamps": false,
                "followRedirects": false, "enableHttp2": true, "filterRunning": false,
                "tlsConfig": {
                    "ca": {"configMap": {"name": "ca", "key": "ca.crt"}},
                    "cert": {"secret": {"name": "tls", "key": "tls.crt"}},
                    "keySecret": {"name": "tls", "key": "tls.key"},
                    "serverName": "svc.local", "insecureSkipVerify": false
                },
                "basicAuth": {"username": {"name": "auth", "key": "user"}, "password": {"name": "auth", "key": "pass"}},
                "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node_name", "action": "Replace"}],
                "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "Drop"}]
            }, {
                "port": "admin",
                "authorization": {"credentials": {"name": "auth", "key": "token"}}
            }]
        }),
        &sec,
        &Options {
            scrape_interval: Some("1m".into()),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(jobs.len(), 2);
    let common_tail = r#"
- source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
  separator: ;
  regex: Node;(.*)
  replacement: ${1}
  target_label: node
- source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
  separator: ;
  regex: Pod;(.*)
  replacement: ${1}
  target_label: pod
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_service_name]
  target_label: service
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
- source_labels: [__meta_kubernetes_pod_container_name]
  target_label: container
"#;
    let selectors = r#"
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- action: drop
  source_labels: [__meta_kubernetes_service_label_tier, __meta_kubernetes_service_labelpresent_tier]
  regex: (x);true
- action: drop
  source_labels: [__meta_kubernetes_service_labelpresent_canary]
  regex: "true"
- action: keep
  source_labels: [__meta_kubernetes_service_labelpresent_app]
  regex: "true"
"#;
    let labels = r#"
- source_labels: [__meta_kubernetes_service_label_team]
  target_label: team
  regex: (.+)
  replacement: ${1}
- source_labels: [__meta_kubernetes_pod_label_version]
  target_label: version
  regex: (.+)
  replacement: ${1}
- source_labels: [__meta_kubernetes_service_name]
  target_label: job
  replacement: ${1}
- source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name]
  target_label: job
  regex: (.+)
  replacement: ${1}
"#;
    let limits = r#"
sample_limit: 1000
target_limit: 10
label_limit: 30
label_name_length_limit: 100
label_value_length_limit: 200
keep_dropped_targets: 5
body_size_limit: 10MB
"#;
    let head = |i: usize| {
        format!(
            "job_name: serviceMonitor/default/test/{i}\nkubernetes_sd_configs:\n- role: endpoints\n  attach_metadata: {{node: true}}\n"
        )
    };
    check(
        &jobs[0],
        &format!(
            r#"{}honor_labels: true
honor_timestamps: false
scrape_interval: 15s
scrape_timeout: 5s
metrics_path: /m
params: {{format: [prometheus]}}
scheme: https
follow_redirects: false
enable_http2: true
tls_config:
  insecure_skip_verify: false
  ca: CA PEM
  cert: CERT PEM
  key: KEY PEM
  server_name: svc.local
basic_auth: {{username: alice, password: s3cret}}
relabel_configs:{selectors}- action: keep
  source_labels: [__meta_kubernetes_pod_container_port_number]
  regex: "8443"{common_tail}{labels}- target_label: endpoint
  replacement: "8443"
- source_labels: [__meta_kubernetes_pod_node_name]
  target_label: node_name
  action: replace
{limits}metric_relabel_configs:
- source_labels: [__name__]
  regex: go_.*
  action: drop
"#,
            head(0)
        ),
    );
    check(
        &jobs[1],
        &format!(
            r#"{}honor_labels: false
scrape_interval: 1m
authorization: {{type: Bearer, credentials: tok}}
relabel_configs:{selectors}- action: keep
  source_labels: [__meta_kubernetes_endpoint_port_name]
  regex: admin{common_tail}- action: drop
  source_labels: [__meta_kubernetes_pod_phase]
  regex: (Failed|Succeeded)
{labels}- target_label: endpoint
  replacement: admin
{limits}"#,
            head(1)
        ),
    );
}

/// PodMonitor: `portNumber`, `jobLabel`, `podTargetLabels`, matchLabels as relabel rules,
/// bearer token and OAuth2 from Secrets.
#[test]
fn pod_monitor_every_field() {
    let sec = Fake::default()
        .with("o", "id", "client")
        .with("o", "secret", "shh")
        .with("b", "t", "bearer");
    let jobs = pm(
        json!({
            "jobLabel": "app",
            "podTargetLabels": ["team"],
            "namespaceSelector": {"matchNames": ["a", "b"]},
            "selector": {"matchLabels": {"app": "db"}},
            "podMetricsEndpoints": [{
                "portNumber": 9187,
                "oauth2": {"clientId": {"secret": {"name": "o", "key": "id"}}, "clientSecret": {"name": "o", "key": "secret"},
                           "tokenUrl": "https://idp/token", "scopes": ["read"], "endpointParams": {"aud": "x"}},
                "trackTimestampsStaleness": true
            }]
        }),
        &sec,
    )
    .unwrap();
    check(
        &jobs[0],
        r#"
job_name: podMonitor/default/defaultPodMonitor/0
honor_labels: false
track_timestamps_staleness: true
kubernetes_sd_configs:
- role: pod
  namespaces: {names: [a, b]}
oauth2:
  client_id: client
  client_secret: shh
  token_url: https://idp/token
  scopes: [read]
  endpoint_params: {aud: x}
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- action: drop
  source_labels: [__meta_kubernetes_pod_phase]
  regex: (Failed|Succeeded)
- action: keep
  source_labels: [__meta_kubernetes_pod_label_app, __meta_kubernetes_pod_labelpresent_app]
  regex: (db);true
- action: keep
  source_labels: [__meta_kubernetes_pod_container_port_number]
  regex: "9187"
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_pod_container_name]
  target_label: container
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
- source_labels: [__meta_kubernetes_pod_label_team]
  target_label: team
  regex: (.+)
  replacement: ${1}
- target_label: job
  replacement: default/defaultPodMonitor
- source_labels: [__meta_kubernetes_pod_label_app]
  target_label: job
  regex: (.+)
  replacement: ${1}
"#,
    );
}

#[test]
fn a_missing_secret_or_an_unsupported_field_skips_the_resource_with_its_reason() {
    let e = sm(json!({"endpoints": [{"port": "web", "basicAuth": {
        "username": {"name": "gone", "key": "u"}, "password": {"name": "gone", "key": "p"}}}]}))
    .unwrap_err();
    assert_eq!(
        e,
        "endpoints[0]: basicAuth.username: Secret default/gone key \"u\": not found"
    );
    let e = sm(json!({"scrapeClass": "tls", "endpoints": []})).unwrap_err();
    assert!(e.contains("scrape classes are not supported"), "{e}");
    let e = sm(json!({"endpoints": [{"port": 8080}]})).unwrap_err();
    assert!(e.starts_with("spec.endpoints[0].port: invalid type"), "{e}");
    let e = sm(
        json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]},
        "selectorMechanism": "RoleSelector", "endpoints": [{"port": "web"}]}),
    )
    .unwrap_err();
    assert!(e.contains("unknown operator"), "{e}");
}

#[test]
fn an_invalid_job_is_refused_as_the_file_would_refuse_it() {
    let jobs =
        sm(json!({"endpoints": [{"port": "web", "interval": "10s", "scrapeTimeout": "20s"}]}))
            .unwrap();
    let e = Config::default_for_tests()
        .generated_job(jobs[0].clone())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scrape_configs[0] (job \"serviceMonitor/default/test/0\").scrape_timeout: scrape_timeout 20s greater than scrape_interval 10s"
    );
}

#[test]
fn bearer_token_secret_becomes_bearer_token() {
    let sec = Fake::default().with("b", "t", "bearer");
    let jobs = sm_with(
        json!({"endpoints": [{"port": "web", "bearerTokenSecret": {"name": "b", "key": "t"}}]}),
        &sec,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        jobs[0].get("bearer_token"),
        Some(&Value::String("bearer".into()))
    );
    let job = Config::default_for_tests()
        .generated_job(jobs[0].clone())
        .unwrap();
    assert_eq!(job.bearer_token, "bearer");
}

/// `ProbeStaticTargetsConfigGenerationWithJobName.golden`.
#[test]
fn probe_static_targets_are_the_operators() {
    let spec = generate::parse_spec(&json!({
        "jobName": "blackbox",
        "prober": {"url": "blackbox.exporter.io", "path": "/probe", "scheme": "http"},
        "module": "http_2xx",
        "targets": {"staticConfig": {"static": ["prometheus.io", "promcon.io"]}}
    }))
    .unwrap();
    let jobs = generate::probe(
        "default",
        "testprobe1",
        &spec,
        &Options::default(),
        &Fake::default(),
    )
    .unwrap();
    check(
        &jobs[0],
        r#"
job_name: probe/default/testprobe1
honor_timestamps: true
metrics_path: /probe
scheme: http
params:
  module: [http_2xx]
static_configs:
- targets: [prometheus.io, promcon.io]
  labels: {namespace: default}
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- target_label: job
  replacement: blackbox
- source_labels: [__address__]
  target_label: __param_target
- source_labels: [__param_target]
  target_label: instance
- target_label: __address__
  replacement: blackbox.exporter.io
"#,
    );
}

#[test]
fn scrape_config_static_and_refused_discoveries() {
    let raw = json!({
        "staticConfigs": [{"targets": ["a:9100"], "labels": {"env": "prod"}}],
        "metricsPath": "/x", "scrapeInterval": "20s", "honorLabels": true,
        "relabelings": [{"targetLabel": "team", "replacement": "db"}]
    });
    let jobs =
        generate::scrape_config("default", "sc", &raw, &Options::default(), &Fake::default())
            .unwrap();
    check(
        &jobs[0],
        r#"
job_name: scrapeConfig/default/sc
honor_labels: true
metrics_path: /x
scrape_interval: 20s
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- target_label: team
  replacement: db
static_configs:
- targets: ["a:9100"]
  labels: {env: prod}
"#,
    );
    let e = generate::scrape_config(
        "default",
        "sc",
        &json!({"ec2SDConfigs": [{}]}),
        &Options::default(),
        &Fake::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "spec.ec2SDConfigs is not implemented by promshard's prometheus_cr yet"
    );
}

/// `ProbeIngressSDConfigGeneration.golden`.
#[test]
fn probe_ingress_targets_are_the_operators() {
    let spec = generate::parse_spec(&json!({
        "prober": {"url": "blackbox.exporter.io", "path": "/probe", "scheme": "http"},
        "module": "http_2xx",
        "targets": {"ingress": {
            "selector": {"matchLabels": {"prometheus.io/probe": "true"}},
            "namespaceSelector": {"any": true},
            "relabelingConfigs": [{"targetLabel": "foo", "replacement": "bar", "action": "Replace"}]
        }}
    }))
    .unwrap();
    let jobs = generate::probe(
        "default",
        "testprobe1",
        &spec,
        &Options::default(),
        &Fake::default(),
    )
    .unwrap();
    check(
        &jobs[0],
        r#"
job_name: probe/default/testprobe1
honor_timestamps: true
metrics_path: /probe
scheme: http
params:
  module: [http_2xx]
kubernetes_sd_configs:
- role: ingress
relabel_configs:
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- action: keep
  source_labels: [__meta_kubernetes_ingress_label_prometheus_io_probe, __meta_kubernetes_ingress_labelpresent_prometheus_io_probe]
  regex: (true);true
- source_labels: [__meta_kubernetes_ingress_scheme, __address__, __meta_kubernetes_ingress_path]
  separator: ;
  regex: (.+);(.+);(.+)
  target_label: __param_target
  replacement: ${1}://${2}${3}
  action: replace
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_ingress_name]
  target_label: ingress
- source_labels: [__address__]
  separator: ;
  regex: (.*)
  target_label: __tmp_ingress_address
  replacement: $1
  action: replace
- source_labels: [__param_target]
  target_label: instance
- target_label: __address__
  replacement: blackbox.exporter.io
- target_label: foo
  replacement: bar
  action: replace
"#,
    );
}
