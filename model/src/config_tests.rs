use super::*;

const FULL: &str = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    cluster: eu1
rule_files: []
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
  - job_name: node
    scrape_interval: 5s
    file_sd_configs:
      - files: ["/etc/prometheus/nodes/*.json"]
remote_write:
  - url: http://mimir:9009/api/v1/push
    queue_config:
      max_samples_per_send: 500
"#;

#[test]
fn parses_a_real_looking_prometheus_yml() {
    let c = Config::parse(FULL).unwrap();
    assert_eq!(c.global.scrape_interval, PromDuration::from_secs(15));
    assert_eq!(
        c.global.external_labels.get("cluster").map(String::as_str),
        Some("eu1")
    );
    let p = &c.scrape_configs[0];
    assert_eq!(p.interval(), PromDuration::from_secs(15));
    assert_eq!(p.timeout(), PromDuration::from_secs(10));
    assert_eq!(p.metrics_path, "/metrics");
    let n = &c.scrape_configs[1];
    assert_eq!(n.interval(), PromDuration::from_secs(5));
    // An unset timeout is capped at the job's interval, as Prometheus does.
    assert_eq!(n.timeout(), PromDuration::from_secs(5));
    assert_eq!(c.remote_write[0].queue_config.max_samples_per_send, 500);
    assert_eq!(c.remote_write[0].queue_config.capacity, 10_000);
}

#[test]
fn round_trips_through_yaml() {
    let c = Config::parse(FULL).unwrap();
    let again = Config::parse(&c.to_yaml()).unwrap();
    assert_eq!(c, again);
}

fn err(yaml: &str) -> String {
    Config::parse(yaml).unwrap_err().to_string()
}

#[test]
fn errors_name_job_and_field() {
    let e = err("scrape_configs: [{job_name: node, scrape_intervall: 5s}]");
    assert!(
        e.contains(r#"scrape_configs[0] (job "node")"#) && e.contains("scrape_intervall"),
        "{e}"
    );

    let e = err(
        "scrape_configs: [{job_name: a}, {job_name: b, scrape_interval: 5s, scrape_timeout: 10s}]",
    );
    assert!(
        e.starts_with(
            r#"scrape_configs[1] (job "b"): scrape_timeout 10s greater than scrape_interval 5s"#
        ),
        "{e}"
    );

    let e = err("scrape_configs: [{job_name: a}, {job_name: a}]");
    assert!(e.contains("multiple scrape configs"), "{e}");

    let e =
        err("scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1/metrics']}]}]");
    assert!(
        e.contains("static_configs[0]") && e.contains("not a valid hostname"),
        "{e}"
    );

    let e = err("scrape_configs: [{job_name: k8s, consul_sd_configs: [{server: x}]}]");
    assert!(e.contains("consul_sd_configs") && e.contains("k8s"), "{e}");

    let e = err("scrape_configs: [{job_name: k8s, kubernetes_sd_configs: [{role: pods}]}]");
    assert!(
        e.contains("unknown variant `pods`") && e.contains("k8s"),
        "{e}"
    );

    let e = err(
        "scrape_configs: [{job_name: k8s, kubernetes_sd_configs: [{role: pod, selectors: [{role: node, label: a=b}]}]}]",
    );
    assert!(e.contains("pod role supports only pod selectors"), "{e}");

    let e = err("scrape_configs: [{job_name: a, scrape_interval: 1x}]");
    assert!(e.contains("not a valid duration"), "{e}");

    let e = err("remote_write: [{url: 'ftp://x'}]");
    assert!(e.starts_with("remote_write[0]: url"), "{e}");

    let e = err("alerting: {alertmanagers: []}");
    assert!(e.starts_with("alerting: not supported"), "{e}");

    let e = err(
        "scrape_configs: [{job_name: a, relabel_configs: [{action: hashmod, source_labels: [a], target_label: b}]}]",
    );
    assert!(e.contains("relabel_configs[0]"), "{e}");

    let e = err("global: {scrape_interval: 5s, scrape_timeout: 10s}");
    assert!(e.starts_with("global: scrape_timeout greater"), "{e}");

    let e = err("scrape_configs: [{job_name: a, file_sd_configs: [{files: [x.txt]}]}]");
    assert!(e.contains("not valid for file discovery"), "{e}");
}

#[test]
fn unset_global_timeout_is_capped_at_the_interval() {
    let c =
        Config::parse("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: a}]").unwrap();
    assert_eq!(c.global.scrape_timeout, Some(PromDuration::from_secs(5)));
    assert_eq!(c.scrape_configs[0].timeout(), PromDuration::from_secs(5));
    let c = Config::parse("global: {scrape_interval: 30s}").unwrap();
    assert_eq!(c.global.scrape_timeout, Some(PromDuration::from_secs(10)));
}

#[test]
fn kubernetes_sd_config_parses() {
    let c = Config::parse(
        "scrape_configs: [{job_name: pods, kubernetes_sd_configs: [{role: endpointslice, namespaces: {names: [a, b]}, selectors: [{role: pod, label: 'app=x'}], attach_metadata: {node: true}}]}]",
    )
    .unwrap();
    let k = &c.scrape_configs[0].kubernetes_sd_configs[0];
    assert_eq!(k.role, KubernetesRole::EndpointSlice);
    assert_eq!(k.namespaces.names, ["a", "b"]);
    assert_eq!(k.selectors[0].label, "app=x");
    assert!(k.attach_metadata.node);
}

#[test]
fn empty_config_is_valid() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.global.scrape_interval, PromDuration::from_secs(60));
    assert!(c.scrape_configs.is_empty());
}

#[test]
fn byte_sizes() {
    assert_eq!(ByteSize::parse("10MB").unwrap(), ByteSize(10 << 20));
    assert_eq!(ByteSize::parse("0").unwrap(), ByteSize(0));
    assert!(ByteSize::parse("10XB").is_err());
}

#[test]
fn scrape_auth_and_tls_fields_parse_and_validate() {
    let c = Config::parse(
        r#"
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password_file: /run/p}
    tls_config:
      {ca_file: /ca.pem, server_name: x.example, insecure_skip_verify: true, min_version: TLS13}
  - job_name: b
    authorization: {credentials_file: /run/t}
  - job_name: c
    bearer_token: tok
"#,
    )
    .unwrap();
    let a = c.scrape_config("a").unwrap().http_client_config();
    assert_eq!(a.basic_auth.as_ref().unwrap().username, "u");
    assert_eq!(a.basic_auth.as_ref().unwrap().password_file, "/run/p");
    let tls = a.tls_config.unwrap();
    assert_eq!(
        (
            tls.ca_file.as_str(),
            tls.server_name.as_str(),
            tls.insecure_skip_verify
        ),
        ("/ca.pem", "x.example", true)
    );
    let b = c.scrape_config("b").unwrap().authorization.clone().unwrap();
    assert_eq!(
        (b.kind.as_str(), b.credentials_file.as_str()),
        ("Bearer", "/run/t")
    );
    assert_eq!(c.scrape_config("c").unwrap().bearer_token, "tok");
    // Survives the trip to the workers.
    assert_eq!(Config::parse(&c.to_yaml()).unwrap(), c);

    // Prometheus's HTTPClientConfig.Validate messages, with the job named.
    let e = err("scrape_configs: [{job_name: a, basic_auth: {username: u}, bearer_token: t}]");
    assert!(
        e.contains(r#"job "a""#) && e.contains("at most one of basic_auth, bearer_token"),
        "{e}"
    );
    let e = err("scrape_configs: [{job_name: a, authorization: {type: Basic, credentials: x}}]");
    assert!(e.contains("use \"basic_auth\" instead"), "{e}");
    let e = err("scrape_configs: [{job_name: a, tls_config: {cert_file: /c.pem}}]");
    assert!(e.contains("exactly one of key or key_file"), "{e}");
    let e = err("scrape_configs: [{job_name: a, tls_config: {min_version: TLS10}}]");
    assert!(e.contains("unsupported min_version"), "{e}");
    let e = err("scrape_configs: [{job_name: a, oauth2: {client_id: x}}]");
    assert!(e.contains("field `oauth2` is not supported"), "{e}");
}

#[test]
fn remote_write_protocol_auth_and_their_errors() {
    let c = Config::parse(
        "remote_write:\n  - url: http://a/api/v1/write\n    protobuf_message: io.prometheus.write.v2.Request\n    authorization: {credentials: t}\n  - url: http://b/api/v1/write\n",
    )
    .unwrap();
    assert_eq!(c.remote_write[0].protobuf_message, ProtobufMessage::V2);
    assert_eq!(c.remote_write[1].protobuf_message, ProtobufMessage::V1);
    assert_eq!(
        c.remote_write[0]
            .authorization
            .as_ref()
            .map(|a| (a.kind.as_str(), a.credentials.as_str())),
        Some(("Bearer", "t"))
    );
    // Round trip keeps the protocol.
    let again = Config::parse(&c.to_yaml()).unwrap();
    assert_eq!(again.remote_write, c.remote_write);

    let e = err("remote_write: [{url: 'http://a', protobuf_message: prometheus.WriteRequest2}]");
    assert!(e.starts_with("remote_write[0]: "), "{e}");
    let e =
        err("remote_write: [{url: 'http://a:1/w', basic_auth: {username: u}, bearer_token: t}]");
    assert!(e.contains("at most one of basic_auth"), "{e}");
    let e = err("remote_write: [{url: 'http://a', send_exemplars: true}]");
    assert!(e.contains("`send_exemplars` is not supported"), "{e}");
}
