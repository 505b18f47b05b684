//! Verdicts that must match Prometheus's: cases following the files of
//! `prometheus/prometheus` `config/testdata/` (named in each row), written here in our own
//! words. `scripts/prometheus-testdata.sh` runs the real files against the binary.

use super::*;

enum Want {
    /// Prometheus accepts it, and so does promshard.
    Valid,
    /// Prometheus refuses it; promshard's error starts with this (path and message).
    Invalid(&'static str),
    /// Prometheus accepts it; promshard refuses it naming a feature it does not implement.
    NotImplemented(&'static str),
}
use Want::*;

const CASES: &[(&str, &str, Want)] = &[
    // The ten files the issue found accepted.
    (
        "empty_static_config.bad.yml",
        "scrape_configs: [{job_name: t, static_configs: [null]}]",
        Invalid(r#"scrape_configs[0] (job "t").static_configs[0]: empty or null section"#),
    ),
    (
        "kubernetes_api_server_with_own_namespace.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints, api_server: 'https://h:1', namespaces: {own_namespace: true}}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0].namespaces.own_namespace: cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"#,
        ),
    ),
    (
        "kubernetes_kubeconfig_with_own_namespace.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod, kubeconfig_file: /k, namespaces: {own_namespace: true}}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0].namespaces.own_namespace: cannot use 'kubeconfig_file'"#,
        ),
    ),
    (
        "kubernetes_selectors_duplicated_role.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints, selectors: [{role: pod, label: a=b}, {role: pod, field: metadata.name=x}]}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0].selectors[1].role: duplicated selector role: pod"#,
        ),
    ),
    (
        "kubernetes_selectors_incorrect_selector.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints, selectors: [{role: pod, field: metadata.status-Running}]}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0].selectors[0].field: field selector"#,
        ),
    ),
    (
        "labelvalue.bad.yml",
        "global:\n  external_labels:\n    name: !!binary \"/w==\"\n",
        Invalid("line 3: YAML !!binary values are not accepted"),
    ),
    (
        "remote_write_queue_capacity_zero.bad.yml",
        "remote_write: [{url: 'http://h/w', queue_config: {capacity: 0}}]",
        Invalid(
            "remote_write[0].queue_config.capacity: remote write queue capacity must be positive",
        ),
    ),
    (
        "remote_write_queue_max_backoff_less_than_min.bad.yml",
        "remote_write: [{url: 'http://h/w', queue_config: {min_backoff: 5s, max_backoff: 2s}}]",
        Invalid("remote_write[0].queue_config.max_backoff: remote write queue max_backoff"),
    ),
    (
        "rules.bad.yml",
        "rule_files: [ok.rules, 'a/*/b.rules']",
        Invalid(r#"rule_files[1]: invalid rule file path "a/*/b.rules""#),
    ),
    (
        "scrape_body_size_limit.bad.yml",
        "scrape_configs: [{job_name: a, body_size_limit: 2048}]",
        Invalid(r#"scrape_configs[0] (job "a").body_size_limit: missing unit in size 2048"#),
    ),
    // More refusals.
    (
        "empty_scrape_config.bad.yml",
        "scrape_configs: [null]",
        Invalid("scrape_configs[0] (job \"\"): empty or null section"),
    ),
    (
        "empty_rw_config.bad.yml",
        "remote_write: [null]",
        Invalid("remote_write[0]: empty or null section"),
    ),
    (
        "empty_alertmanager_relabel_config.bad.yml",
        "alerting: {alertmanagers: [{relabel_configs: [null]}]}",
        Invalid("alerting.alertmanagers[0].relabel_configs[0]: empty or null section"),
    ),
    (
        "empty_rr_config.bad.yml",
        "remote_read: [null]",
        Invalid("remote_read[0]: empty or null section"),
    ),
    (
        "remote_read_url_missing.bad.yml",
        "remote_read: [{url: }]",
        Invalid("remote_read[0].url: url for remote_read is empty"),
    ),
    (
        "remote_write_header.bad.yml",
        "remote_write: [{url: 'http://h/w', headers: {X-Prometheus-Remote-Write-Version: x}}]",
        Invalid("remote_write[0].headers: X-Prometheus-Remote-Write-Version is a reserved header"),
    ),
    (
        "remote_write_authorization_header.bad.yml",
        "remote_write: [{url: 'http://h/w', headers: {Authorization: x}}]",
        Invalid("remote_write[0].headers: authorization header must be changed via"),
    ),
    (
        "bearertoken.bad.yml",
        "scrape_configs: [{job_name: a, bearer_token: 42, bearer_token_file: f}]",
        Invalid(r#"scrape_configs[0] (job "a"): at most one of bearer_token & bearer_token_file"#),
    ),
    (
        "kubernetes_http_config_without_api_server.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod, authorization: {credentials: x}}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0]: to use custom HTTP client configuration please provide the 'api_server' URL explicitly"#,
        ),
    ),
    (
        "kubernetes_kubeconfig_with_http_config.bad.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod, kubeconfig_file: /k, basic_auth: {username: u}}]}]",
        Invalid(
            r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0]: cannot use a custom HTTP client configuration together with 'kubeconfig_file'"#,
        ),
    ),
    (
        "http_url_no_scheme.bad.yml",
        "scrape_configs: [{job_name: h, http_sd_configs: [{url: example}]}]",
        Invalid(
            r#"scrape_configs[0] (job "h").http_sd_configs[0].url: URL scheme must be 'http' or 'https'"#,
        ),
    ),
    (
        "http_url_no_host.bad.yml",
        "scrape_configs: [{job_name: h, http_sd_configs: [{url: 'https://'}]}]",
        Invalid(r#"scrape_configs[0] (job "h").http_sd_configs[0].url: host is missing in URL"#),
    ),
    (
        "http_token_file.bad.yml",
        "scrape_configs: [{job_name: h, http_sd_configs: [{url: 'http://h', bearer_token: a, bearer_token_file: b}]}]",
        Invalid(
            r#"scrape_configs[0] (job "h").http_sd_configs[0]: at most one of bearer_token & bearer_token_file"#,
        ),
    ),
    (
        "scrape_config_files_scrape_protocols2.bad.yml",
        "scrape_configs: [{job_name: a, scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0, PrometheusText0.0.4]}]",
        Invalid(
            r#"scrape_configs[0] (job "a").scrape_protocols: duplicated protocol in scrape_protocols"#,
        ),
    ),
    (
        "scrape_config_files_fallback_scrape_protocol1.bad.yml",
        "scrape_configs: [{job_name: a, fallback_scrape_protocol: text}]",
        Invalid(r#"scrape_configs[0] (job "a").fallback_scrape_protocol: unknown variant `text`"#),
    ),
    (
        "scrape_config_utf8_conflicting.bad.yml",
        "global: {metric_name_validation_scheme: legacy, metric_name_escaping_scheme: allow-utf-8}\nscrape_configs: [{job_name: a}]",
        Invalid(
            r#"scrape_configs[0] (job "a").metric_name_escaping_scheme: utf8 metric names requested but validation scheme is not set to UTF8"#,
        ),
    ),
    (
        "metric_name_validation_scheme.bad.yml",
        "global: {metric_name_validation_scheme: latin1}",
        Invalid("global.metric_name_validation_scheme: unknown variant `latin1`"),
    ),
    (
        "tracing_missing_endpoint.bad.yml",
        "tracing: {sampling_fraction: 0.5}",
        Invalid("tracing.endpoint: tracing endpoint must be set"),
    ),
    (
        "tracing_invalid_compression.bad.yml",
        "tracing: {endpoint: 'h:4317', compression: zstd}",
        Invalid("tracing.compression: invalid compression type zstd"),
    ),
    (
        "tsdb_retention_time.bad.yml",
        "storage: {tsdb: {retention: {time: -5m}}}",
        Invalid("storage.tsdb.retention.time: not a valid duration string"),
    ),
    (
        "tsdb_retention_percentage.bad.yml",
        "storage: {tsdb: {retention: {percentage: 150}}}",
        Invalid(
            "storage.tsdb.retention.percentage: 'storage.tsdb.retention.percentage' must be in the range [0, 100], got 150",
        ),
    ),
    (
        "tsdb_chunk_encoding_floats.bad.yml",
        "storage: {tsdb: {chunk_encoding: {floats: XOR}}}",
        Invalid("storage.tsdb.chunk_encoding.floats: "),
    ),
    (
        "otlp_promote_all_resource_attributes.bad.yml",
        "otlp: {promote_all_resource_attributes: true, promote_resource_attributes: [a]}",
        Invalid("otlp: 'promote_all_resource_attributes' and 'promote_resource_attributes'"),
    ),
    (
        "otlp_sanitize_promote_resource_attributes.bad.yml",
        "otlp: {promote_resource_attributes: [a, ' a ']}",
        Invalid(
            r#"otlp.promote_resource_attributes: duplicated promoted OTel resource attribute "a""#,
        ),
    ),
    (
        "section_key_dup.bad.yml",
        "scrape_configs: []\nscrape_configs: []\n",
        Invalid("invalid YAML: duplicate entry with key \"scrape_configs\""),
    ),
    (
        "unknown_global_attr.bad.yml",
        "global: {no_such_field: 1}",
        Invalid("global.no_such_field: unknown field, expected one of"),
    ),
    (
        "unknown_attr.bad.yml",
        "scrape_configs: [{job_name: a, consult_sd_configs: [{}]}]",
        Invalid(r#"scrape_configs[0] (job "a").consult_sd_configs: unknown field, expected"#),
    ),
    // Accepted, server-only sections included.
    (
        "conf.good.yml (server sections)",
        "global:\n  evaluation_interval: 30s\n  query_log_file: q.log\n  rule_query_offset: 1m\n\
         runtime: {gogc: 42}\nrule_files: [first.rules, 'my/*.rules']\n\
         alerting: {alertmanagers: [{scheme: https, static_configs: [{targets: ['1.2.3.4:9093']}]}]}\n\
         remote_read: [{url: 'http://r/read', read_recent: true, name: default, enable_http2: false}]\n\
         storage: {tsdb: {out_of_order_time_window: 30m, retention: {time: 1d, size: 1GB, percentage: 28}}}\n\
         tracing: {endpoint: 'localhost:4317', client_type: grpc, timeout: 5s, compression: gzip}\n\
         otlp: {promote_resource_attributes: [k8s.cluster.name]}\n",
        Valid,
    ),
    (
        "conf.good.yml (global limits)",
        "global: {body_size_limit: 15MB, sample_limit: 1500, target_limit: 30, label_limit: 30, label_name_length_limit: 200, label_value_length_limit: 200, keep_dropped_targets: 7}\nscrape_configs: [{job_name: a}]",
        Valid,
    ),
    (
        "kubernetes_selectors_pod.good.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod, selectors: [{role: node, label: a=b, field: metadata.status=Running}]}, {role: pod, selectors: [{role: pod, label: 'a in (b,c)'}]}]}]",
        Valid,
    ),
    (
        "kubernetes_empty_apiserver.good.yml",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints}]}]",
        Valid,
    ),
    (
        "roundtrip.good.yml (kubernetes with auth)",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints, api_server: 'https://h:1234', tls_config: {cert_file: c, key_file: k}, basic_auth: {username: u, password: p}}]}]",
        Valid,
    ),
    (
        "kubernetes_namespace_discovery.bad.yml (api_server without a scheme)",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: endpoints, api_server: 'kubernetes:443'}]}]",
        Valid,
    ),
    (
        "scrape_interval_larger.good.yml",
        "global: {scrape_interval: 15s, scrape_timeout: 15s}\nscrape_configs: [{job_name: d, scrape_interval: 5s, dns_sd_configs: [{refresh_interval: 15s, names: [a.example]}, {names: [b.example]}]}]",
        Valid,
    ),
    (
        "conf.good.yml (consul)",
        "scrape_configs: [{job_name: c, consul_sd_configs: [{server: 'localhost:1234', token: t, services: [nginx], tags: [canary], node_meta: {rack: '123'}, allow_stale: true, scheme: https}]}]",
        Valid,
    ),
    (
        "conf.good.yml (http sd, http_headers, scrape_protocols)",
        "scrape_configs: [{job_name: h, scrape_protocols: [PrometheusText0.0.4], http_headers: {foo: {values: [bar], secrets: [s], files: [f]}}, http_sd_configs: [{url: 'http://example.com/prometheus'}]}]",
        Valid,
    ),
    (
        "global_disable_always_scrape_classic_hist.good.yml",
        "global: {always_scrape_classic_histograms: false, scrape_native_histograms: false}\nscrape_configs: [{job_name: a, always_scrape_classic_histograms: true, convert_classic_histograms_to_nhcb: false}]",
        Valid,
    ),
    (
        "tsdb_retention_percentage_float.good.yml",
        "storage: {tsdb: {retention: {percentage: 0.5}}}",
        Valid,
    ),
    (
        "otlp_sanitize_ignore_resource_attributes.good.yml",
        "otlp: {promote_all_resource_attributes: true, ignore_resource_attributes: [a, ' b ']}",
        Valid,
    ),
    (
        "remote_write_retry_on_rate_limit.good.yml (with a scheme)",
        "remote_write: [{url: 'http://h:9090/api/v1/write', queue_config: {retry_on_http_429: true}}]",
        Valid,
    ),
    (
        "global_enable_scrape_native_hist.good.yml",
        "global: {scrape_native_histograms: true}\nscrape_configs: [{job_name: a}]",
        Valid,
    ),
    // Accepted by Prometheus, refused by promshard naming what it lacks.
    (
        "local_disable_scrape_native_hist.good.yml",
        "global: {scrape_native_histograms: true, scrape_protocols: [PrometheusText0.0.4]}\nscrape_configs: [{job_name: a, scrape_native_histograms: false}]",
        Valid,
    ),
    (
        "local_disable_convert_classic_hist_to_nhcb.good.yml",
        "global: {convert_classic_histograms_to_nhcb: true, extra_scrape_metrics: true}\nscrape_configs: [{job_name: a, convert_classic_histograms_to_nhcb: false, extra_scrape_metrics: false}]",
        Valid,
    ),
    (
        "local_enable_scrape_native_hist.good.yml",
        "scrape_configs: [{job_name: a, scrape_native_histograms: true}]",
        Valid,
    ),
    (
        "local_convert_classic_hist_to_nhcb.good.yml",
        "scrape_configs: [{job_name: a, convert_classic_histograms_to_nhcb: true}]",
        NotImplemented(r#"scrape_configs[0] (job "a").convert_classic_histograms_to_nhcb: "#),
    ),
    (
        "conf.good.yml (protobuf first)",
        "scrape_configs: [{job_name: a, scrape_protocols: [PrometheusProto, PrometheusText0.0.4], fallback_scrape_protocol: PrometheusProto}]",
        Valid,
    ),
    (
        "conf.good.yml (ec2)",
        "scrape_configs: [{job_name: e, ec2_sd_configs: [{region: us-east-1}]}]",
        NotImplemented(r#"scrape_configs[0] (job "e").ec2_sd_configs: "#),
    ),
    (
        "scrape_config_files_only.good.yml",
        "scrape_config_files: [a.yml]",
        NotImplemented("scrape_config_files: "),
    ),
    (
        "conf.good.yml (remote write sigv4)",
        "remote_write: [{url: 'http://h/w', sigv4: {region: x}}]",
        NotImplemented("remote_write[0].sigv4: "),
    ),
    (
        "conf.good.yml (kubernetes with oauth2)",
        "scrape_configs: [{job_name: k, kubernetes_sd_configs: [{role: pod, api_server: 'https://k:1', oauth2: {client_id: a, client_secret: b, token_url: 'https://t'}}]}]",
        NotImplemented(r#"scrape_configs[0] (job "k").kubernetes_sd_configs[0].oauth2: "#),
    ),
    (
        "conf.good.yml (TLS 1.0)",
        "scrape_configs: [{job_name: a, tls_config: {min_version: TLS10}}]",
        NotImplemented(r#"scrape_configs[0] (job "a").tls_config.min_version: "#),
    ),
];

#[test]
fn verdicts_match_prometheus() {
    let mut failures = Vec::new();
    for (file, yaml, want) in CASES {
        let got = Config::parse(yaml);
        let ok = match (want, &got) {
            (Valid, Ok(_)) => true,
            (Invalid(prefix), Err(e)) => e.to_string().starts_with(prefix),
            (NotImplemented(prefix), Err(e)) => {
                let e = e.to_string();
                e.starts_with(prefix) && e.contains("not implemented by promshard")
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
