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

/// Each error names the full path of the field it is about, the job after `scrape_configs[i]`.
#[test]
fn errors_name_the_full_path() {
    let cases: &[(&str, &str)] = &[
        (
            "scrape_configs: [{job_name: node, scrape_intervall: 5s}]",
            r#"scrape_configs[0] (job "node").scrape_intervall: unknown field, expected one of `job_name`, "#,
        ),
        (
            "scrape_configs: [{job_name: a}, {job_name: b, scrape_interval: 5s, scrape_timeout: 10s}]",
            r#"scrape_configs[1] (job "b").scrape_timeout: scrape_timeout 10s greater than scrape_interval 5s"#,
        ),
        (
            "scrape_configs: [{job_name: a}, {job_name: a}]",
            r#"scrape_configs[1] (job "a").job_name: found multiple scrape configs with job name "a""#,
        ),
        (
            "scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}, {targets: ['http://x:1/metrics']}]}]",
            r#"scrape_configs[0] (job "a").static_configs[1].targets: "http://x:1/metrics" is not a valid hostname"#,
        ),
        (
            "scrape_configs: [{job_name: k8s, ec2_sd_configs: [{region: x}]}]",
            r#"scrape_configs[0] (job "k8s").ec2_sd_configs: not implemented by promshard (service discovery)"#,
        ),
        (
            "scrape_configs: [{job_name: k8s, kubernetes_sd_configs: [{role: pods}]}]",
            r#"scrape_configs[0] (job "k8s").kubernetes_sd_configs[0].role: unknown variant `pods`"#,
        ),
        (
            "scrape_configs: [{job_name: k8s, kubernetes_sd_configs: [{role: pod, selectors: [{role: service, label: a=b}]}]}]",
            r#"scrape_configs[0] (job "k8s").kubernetes_sd_configs[0].selectors[0].role: pod role supports only pod, node selectors"#,
        ),
        (
            "scrape_configs: [{job_name: k8s, kubernetes_sd_configs: [{role: endpoints, api_server: 'https://k:6443', tls_config: {max_version: TLS14}}]}]",
            r#"scrape_configs[0] (job "k8s").kubernetes_sd_configs[0].tls_config.max_version: unknown TLS version: TLS14"#,
        ),
        (
            "scrape_configs: [{job_name: a, scrape_interval: 2 fortnights}]",
            r#"scrape_configs[0] (job "a").scrape_interval: not a valid duration string: "2 fortnights""#,
        ),
        (
            "global: {scrape_timeout: 1x}",
            r#"global.scrape_timeout: not a valid duration string: "1x""#,
        ),
        (
            "remote_write: [{url: 'ftp://x'}]",
            r#"remote_write[0].url: "ftp://x" is not an http(s) URL"#,
        ),
        (
            "scrape_configs: [{job_name: a, relabel_configs: [{action: drop, regex: x}, {action: hashmod, source_labels: [a], target_label: b}]}]",
            r#"scrape_configs[0] (job "a").relabel_configs[1]: relabel configuration for hashmod requires non-zero modulus"#,
        ),
        (
            "scrape_configs: [{job_name: a, metric_relabel_configs: [{action: drop, regex: x}, {action: drop, regexp: y}]}]",
            r#"scrape_configs[0] (job "a").metric_relabel_configs[1].regexp: unknown field, expected one of `source_labels`, "#,
        ),
        (
            "scrape_configs: [{job_name: a, relabel_configs: [{action: keep, regex: x}, null]}]",
            r#"scrape_configs[0] (job "a").relabel_configs[1]: empty or null section"#,
        ),
        (
            "global: {scrape_interval: 5s, scrape_timeout: 10s}",
            "global.scrape_timeout: global scrape timeout greater than scrape interval",
        ),
        (
            "scrape_configs: [{job_name: a, file_sd_configs: [{files: [x.txt]}]}]",
            r#"scrape_configs[0] (job "a").file_sd_configs[0].files: path name "x.txt" is not valid for file discovery"#,
        ),
        (
            "remote_write: [{url: 'http://a/w', queue_config: {max_backoff: 1s, min_backoff: 10s}}]",
            "remote_write[0].queue_config.max_backoff: remote write queue max_backoff must not be less than min_backoff",
        ),
        (
            "scrape_configs: [{job_name: a, tls_config: {cert_ref: x}}]",
            r#"scrape_configs[0] (job "a").tls_config.cert_ref: not implemented by promshard (secret references)"#,
        ),
        (
            "scrape_config_files: [a.yml]",
            "scrape_config_files: not implemented by promshard (list the scrape configs in this file)",
        ),
        (
            "unknown_top: 1",
            "unknown_top: unknown field, expected one of `global`, ",
        ),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(e.starts_with(want), "{yaml}\n got: {e}\nwant: {want}...");
    }
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
        e.contains(r#"job "a""#) && e.contains("at most one of basic_auth, oauth2, bearer_token"),
        "{e}"
    );
    let e = err("scrape_configs: [{job_name: a, authorization: {type: Basic, credentials: x}}]");
    assert!(e.contains("use \"basic_auth\" instead"), "{e}");
    let e = err("scrape_configs: [{job_name: a, tls_config: {cert_file: /c.pem}}]");
    assert!(e.contains("exactly one of key or key_file"), "{e}");
    let e = err("scrape_configs: [{job_name: a, tls_config: {min_version: TLS10}}]");
    assert!(e.contains("not implemented by promshard"), "{e}");
    let e = err("scrape_configs: [{job_name: a, oauth2: {client_id: x}}]");
    assert_eq!(
        e,
        r#"scrape_configs[0] (job "a").oauth2.token_url: oauth2 token_url must be configured"#
    );
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
    assert!(e.starts_with("remote_write[0].protobuf_message: "), "{e}");
    let e =
        err("remote_write: [{url: 'http://a:1/w', basic_auth: {username: u}, bearer_token: t}]");
    assert!(e.contains("at most one of basic_auth"), "{e}");
    let e = err("remote_write: [{url: 'http://a', send_exemplars: true}]");
    assert_eq!(
        e,
        "remote_write[0].send_exemplars: sending exemplars (true) is not implemented by promshard yet"
    );
}

/// Each server-only section is accepted, listed in `ignored` with its path, and changes
/// nothing: the config equals the one without it.
#[test]
fn server_only_sections_are_listed_and_change_nothing() {
    const JOB: &str = "scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "alerting: {alertmanagers: [{static_configs: [{targets: ['am:9093']}]}]}\n",
            &["alerting"],
        ),
        ("rule_files: [a.rules, 'b/*.rules']\n", &["rule_files"]),
        (
            "remote_read: [{url: 'http://r/api/v1/read'}]\n",
            &["remote_read"],
        ),
        ("storage: {tsdb: {retention: {time: 15d}}}\n", &["storage"]),
        ("tracing: {endpoint: 'otel:4317'}\n", &["tracing"]),
        (
            "otlp: {promote_resource_attributes: [service.name]}\n",
            &["otlp"],
        ),
        ("runtime: {gogc: 50}\n", &["runtime"]),
        (
            "global: {evaluation_interval: 30s, rule_query_offset: 10s, query_log_file: q.log, scrape_failure_log_file: f.log}\n",
            &[
                "global.evaluation_interval",
                "global.rule_query_offset",
                "global.query_log_file",
                "global.scrape_failure_log_file",
            ],
        ),
    ];
    let plain = Config::parse(JOB).unwrap();
    assert!(plain.ignored.is_empty());
    for (section, paths) in cases {
        let c = Config::parse(&format!("{section}{JOB}")).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<&str> = c.ignored.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(got, *paths, "{section}");
        assert!(c.ignored.iter().all(|i| !i.why.is_empty()));
        assert_eq!(c, plain, "{section} changed the config");
        // Nothing of it reaches the workers.
        assert_eq!(
            c.for_workers().to_yaml(),
            plain.for_workers().to_yaml(),
            "{section}"
        );
    }
    // Empty sections are accepted and not worth a warning.
    let c = Config::parse(&format!("alerting: {{}}\nrule_files: []\notlp:\n{JOB}")).unwrap();
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
    // A job's failure log.
    let c =
        Config::parse("scrape_configs: [{job_name: a, scrape_failure_log_file: f.log}]").unwrap();
    assert_eq!(
        c.ignored
            .iter()
            .map(|i| i.path.as_str())
            .collect::<Vec<_>>(),
        [r#"scrape_configs[0] (job "a").scrape_failure_log_file"#]
    );
}

/// Settings whose values change nothing for promshard are accepted; those of the native
/// histogram family that would change behaviour are refused naming the field.
#[test]
fn no_op_settings_are_accepted_and_behaviour_changing_ones_refused() {
    let c = Config::parse(
        r#"
global:
  metric_name_validation_scheme: legacy
  always_scrape_classic_histograms: true
  scrape_native_histograms: false
scrape_configs:
  - job_name: a
    enable_http2: false
    scrape_classic_histograms: true
    always_scrape_classic_histograms: false
    convert_classic_histograms_to_nhcb: false
    metric_name_validation_scheme: utf8
    metric_name_escaping_scheme: dots
    sample_limit: 0
    label_limit: 0
    target_limit: 0
    native_histogram_bucket_limit: 160
    scrape_protocols: [PrometheusText0.0.4, PrometheusProto]
remote_write:
  - url: http://h/api/v1/write
    send_exemplars: false
    send_native_histograms: false
    round_robin_dns: false
    enable_http2: false
alerting: {}
"#,
    )
    .unwrap();
    let a = &c.scrape_configs[0];
    assert!(!a.enable_http2);
    assert_eq!(a.escaping(), EscapingScheme::Dots);
    assert_eq!(
        a.protocols(),
        [
            ScrapeProtocol::PrometheusText0_0_4,
            ScrapeProtocol::PrometheusProto
        ]
    );
    assert!(!c.remote_write[0].enable_http2);

    let e = err("scrape_configs: [{job_name: a, convert_classic_histograms_to_nhcb: true}]");
    assert!(
        e.starts_with(r#"scrape_configs[0] (job "a").convert_classic_histograms_to_nhcb: "#)
            && e.ends_with("is not implemented by promshard yet"),
        "{e}"
    );
}

#[test]
fn global_limits_and_protocols_are_the_jobs_defaults() {
    let c = Config::parse(
        r#"
global:
  sample_limit: 100
  target_limit: 5
  label_limit: 30
  label_name_length_limit: 200
  label_value_length_limit: 300
  body_size_limit: 10MB
  keep_dropped_targets: 3
  scrape_protocols: [PrometheusText0.0.4]
scrape_configs:
  - job_name: inherits
  - job_name: overrides
    sample_limit: 7
    target_limit: 1
    body_size_limit: 1KB
    scrape_protocols: [OpenMetricsText1.0.0]
"#,
    )
    .unwrap();
    let a = &c.scrape_configs[0];
    assert_eq!(
        (
            a.sample_limit,
            a.target_limit,
            a.label_limit,
            a.label_name_length_limit,
            a.label_value_length_limit,
            a.keep_dropped_targets,
            a.body_size_limit
        ),
        (100, 5, 30, 200, 300, 3, Some(ByteSize(10 << 20)))
    );
    assert_eq!(a.protocols(), [ScrapeProtocol::PrometheusText0_0_4]);
    let b = &c.scrape_configs[1];
    assert_eq!(
        (b.sample_limit, b.target_limit, b.body_size_limit),
        (7, 1, Some(ByteSize(1 << 10)))
    );
    assert_eq!(b.protocols(), [ScrapeProtocol::OpenMetricsText1_0_0]);
    // What workers get carries the resolved values.
    let w = Config::parse(&c.for_workers().to_yaml()).unwrap();
    assert_eq!(w.scrape_configs[0].sample_limit, 100);
    // Without scrape_protocols anywhere: Prometheus's default order.
    let c = Config::parse("scrape_configs: [{job_name: a}]").unwrap();
    assert_eq!(c.scrape_configs[0].protocols(), ScrapeProtocol::DEFAULT);
}

#[test]
fn external_labels_expand_environment_variables_when_asked() {
    let text = "global:\n  external_labels:\n    cluster: ${CLUSTER}\n    region: eu-$REGION\n    literal: a$$b\n    unset: x${NOPE}\n";
    let env = |k: &str| match k {
        "CLUSTER" => Some("prod-1".to_string()),
        "REGION" => Some("west".to_string()),
        _ => None,
    };
    let c = Config::parse_with_env(text, env).unwrap();
    let l = &c.global.external_labels;
    assert_eq!(l["cluster"], "prod-1");
    assert_eq!(l["region"], "eu-west");
    assert_eq!(l["literal"], "a$b");
    assert_eq!(l["unset"], "x");
    // The worker parses what the master sends without expanding again: `$` stays `$`.
    let again = Config::parse(&c.to_yaml()).unwrap();
    assert_eq!(again.global.external_labels["literal"], "a$b");
    // Plain parse keeps the text.
    assert_eq!(
        Config::parse(text).unwrap().global.external_labels["cluster"],
        "${CLUSTER}"
    );
}

#[test]
fn http_client_settings_parse_everywhere_and_survive_the_trip_to_workers() {
    let c = Config::parse(
        r#"
scrape_configs:
  - job_name: a
    follow_redirects: false
    enable_http2: false
    proxy_url: http://proxy:3128
    no_proxy: 10.0.0.0/8,.internal
    proxy_connect_header: {Proxy-Authorization: [Basic abc]}
    http_headers:
      X-Tenant: {values: [t1], secrets: [s1], files: [/etc/h]}
    oauth2:
      client_id: id
      client_secret_file: /run/secret
      token_url: https://idp/token
      scopes: [read]
      endpoint_params: {audience: prom}
  - job_name: b
    proxy_from_environment: true
"#,
    )
    .unwrap();
    let a = c.scrape_configs[0].http_client_config();
    assert!(!a.follow_redirects && !a.enable_http2);
    assert_eq!(a.proxy.proxy_url, "http://proxy:3128");
    assert_eq!(a.proxy.no_proxy, "10.0.0.0/8,.internal");
    assert_eq!(
        a.proxy.proxy_connect_header["Proxy-Authorization"],
        ["Basic abc"]
    );
    assert_eq!(a.http_headers["X-Tenant"].files, ["/etc/h"]);
    let o = a.oauth2.unwrap();
    assert_eq!(
        (
            o.client_id.as_str(),
            o.token_url.as_str(),
            o.scopes.as_slice()
        ),
        ("id", "https://idp/token", &["read".to_string()][..])
    );
    assert!(
        c.scrape_configs[1]
            .http_client_config()
            .proxy
            .proxy_from_environment
    );
    assert_eq!(
        Config::parse(&c.for_workers().to_yaml()).unwrap(),
        c.for_workers()
    );

    let e = err(
        "scrape_configs: [{job_name: a, proxy_url: 'http://p:1', proxy_from_environment: true}]",
    );
    assert_eq!(
        e,
        r#"scrape_configs[0] (job "a").proxy_url: if proxy_from_environment is configured, proxy_url must not be configured"#
    );
    let e = err("scrape_configs: [{job_name: a, http_headers: {Authorization: {values: [x]}}}]");
    assert!(
        e.starts_with(r#"scrape_configs[0] (job "a").http_headers.Authorization: setting header"#),
        "{e}"
    );
}

/// Prometheus 3: label names are UTF-8 unless `metric_name_validation_scheme: legacy`, in
/// external labels, static labels and relabel rules alike.
#[test]
fn utf8_label_names_follow_the_validation_scheme() {
    let text = |scheme: &str| {
        format!(
            "global: {{external_labels: {{k8s.cluster: c}}{scheme}}}\n\
             scrape_configs:\n  - job_name: a\n    static_configs: [{{targets: ['h:1'], labels: {{ns-key: v}}}}]\n\
             \x20   relabel_configs: [{{source_labels: [ns-key], target_label: k8s.namespace}}]\n"
        )
    };
    let c = Config::parse(&text("")).unwrap();
    assert_eq!(c.global.external_labels["k8s.cluster"], "c");
    let sc = &c.scrape_configs[0];
    let discovered = crate::Labels::from_pairs([("__address__", "h:1"), ("ns-key", "v")]);
    let crate::target::Populated::Target(labels) =
        crate::target::populate_labels(sc, &discovered).unwrap()
    else {
        panic!("dropped")
    };
    assert_eq!(labels.get("k8s.namespace"), Some("v"));
    // The same file with the legacy scheme: refused where the first such name is.
    let e = err(&text(", metric_name_validation_scheme: legacy"));
    assert_eq!(
        e,
        r#"global.external_labels: "k8s.cluster" is not a valid label name"#
    );
    let e = err(
        "scrape_configs: [{job_name: a, metric_name_validation_scheme: legacy, relabel_configs: [{source_labels: [a], target_label: k8s.ns}]}]",
    );
    assert_eq!(
        e,
        r#"scrape_configs[0] (job "a").relabel_configs[0]: "k8s.ns" is invalid 'target_label' for replace action"#
    );
    // The worker gets the rules with the job's scheme again.
    let w = Config::parse(&c.for_workers().to_yaml()).unwrap();
    assert_eq!(
        w.scrape_configs[0].metric_name_validation_scheme,
        Some(ValidationScheme::Utf8)
    );
}

/// Protobuf scraping is accepted anywhere in `scrape_protocols` and as the fallback, as in
/// Prometheus 3 (`validateAcceptScrapeProtocols` checks only emptiness and duplicates).
#[test]
fn protobuf_is_accepted_first_and_as_the_fallback() {
    let c = Config::parse(
        "scrape_configs: [{job_name: a, scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0], fallback_scrape_protocol: PrometheusProto}]",
    )
    .unwrap();
    let a = &c.scrape_configs[0];
    assert_eq!(
        a.protocols(),
        [
            ScrapeProtocol::PrometheusProto,
            ScrapeProtocol::OpenMetricsText1_0_0
        ]
    );
    assert_eq!(
        a.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusProto)
    );
}

/// Native histogram settings resolve as in Prometheus 3: the job's own value, else global's;
/// with native histograms on and no `scrape_protocols` anywhere, protobuf is asked for first.
#[test]
fn native_histogram_settings_resolve_from_global_and_pick_protobuf_first() {
    let c = Config::parse(
        "global: {scrape_native_histograms: true, always_scrape_classic_histograms: true}
scrape_configs:
  - {job_name: a, native_histogram_bucket_limit: 10, native_histogram_min_bucket_factor: 1.1}
  - {job_name: b, scrape_native_histograms: false, scrape_classic_histograms: false}
remote_write: [{url: 'http://h/w', send_native_histograms: true}]",
    )
    .unwrap();
    let (a, b) = (&c.scrape_configs[0], &c.scrape_configs[1]);
    assert!(a.native_histograms() && a.keep_classic_histograms());
    assert_eq!(a.protocols(), ScrapeProtocol::PROTO_FIRST);
    assert_eq!(a.native_histogram_bucket_limit, 10);
    assert_eq!(a.native_histogram_min_bucket_factor, Some(1.1));
    assert!(!b.native_histograms() && !b.keep_classic_histograms());
    assert_eq!(b.protocols(), ScrapeProtocol::DEFAULT);
    assert!(c.remote_write[0].send_native_histograms);
    // A global list wins over the protobuf-first default.
    let c = Config::parse(
        "global: {scrape_protocols: [PrometheusText0.0.4]}
scrape_configs: [{job_name: a, scrape_native_histograms: true}]",
    )
    .unwrap();
    assert_eq!(
        c.scrape_configs[0].protocols(),
        [ScrapeProtocol::PrometheusText0_0_4]
    );
}

#[test]
fn field_selectors_warn_per_role_when_the_field_is_not_selectable() {
    let cfg = |role: &str, field: &str| {
        Config::parse(&format!(
            "scrape_configs:\n  - job_name: j\n    kubernetes_sd_configs:\n      - role: {role}\n        selectors: [{{role: {role}, field: '{field}'}}]\n"
        ))
        .unwrap()
    };
    assert!(cfg("pod", "spec.nodeName=a").warnings().is_empty());
    assert!(
        cfg("service", "spec.type=ClusterIP,spec.clusterIP=None")
            .warnings()
            .is_empty()
    );
    assert!(cfg("node", "spec.unschedulable=true").warnings().is_empty());
    let w = cfg("service", "spec.nodeName=a").warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("\"spec.nodeName\" is not a selectable field of role service"),
        "{w:?}"
    );
    // One line per unsupported key; supported keys beside it are fine.
    let w = cfg("endpointslice", "metadata.name=a,spec.x=1,status.y=2").warnings();
    assert_eq!(w.len(), 2, "{w:?}");
}
