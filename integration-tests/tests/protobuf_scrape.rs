//! Protobuf scraping end to end: promshard (master + one worker) asks for `PrometheusProto`
//! first and stores what Prometheus 2.42 (agent) stores from the same data read as text.
//!
//! - A real `prometheus-node-exporter` (client_golang, which answers protobuf when `Accept`
//!   prefers it): promshard scrapes it as protobuf, Prometheus 2.42 as text (2.42 asks for
//!   protobuf only with native histograms on). Same series label sets.
//! - Twin simulated targets with the same data, one serving a hand-built protobuf body (a
//!   counter with labels, a gauge, a summary, a classic histogram without its `+Inf` bucket,
//!   an untyped metric with a timestamp), one the text format; both are labelled
//!   `instance="twin"` by target relabeling so the stored series can be compared exactly,
//!   values included.
//!
//! The 2.42/3.x `le`/`quantile` spelling difference is normalized as in `scrape_parity.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promshard_integration_tests::cluster::{start_master, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::free_loopback_port;
use promshard_integration_tests::prometheus::PrometheusServer;
use promshard_integration_tests::receiver::{Labels, RecordingReceiver, is_stale};
use promshard_integration_tests::simulator::TargetSimulator;
use promshard_proto::exposition as pb;
use prost::Message;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const TEXT_CT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn label(name: &str, value: &str) -> pb::LabelPair {
    pb::LabelPair {
        name: name.into(),
        value: value.into(),
    }
}

/// The twin data as delimited protobuf, built by hand with prost.
fn twin_protobuf(ts: i64) -> Vec<u8> {
    let families = [
        pb::MetricFamily {
            name: "twin_requests_total".into(),
            help: "Requests.".into(),
            r#type: pb::MetricType::Counter as i32,
            metric: vec![
                pb::Metric {
                    label: vec![label("code", "200"), label("method", "get")],
                    counter: Some(pb::Counter {
                        value: 1027.0,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                pb::Metric {
                    label: vec![label("method", "post"), label("code", "500")],
                    counter: Some(pb::Counter {
                        value: 3.0,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
        pb::MetricFamily {
            name: "twin_temperature".into(),
            r#type: pb::MetricType::Gauge as i32,
            metric: vec![pb::Metric {
                gauge: Some(pb::Gauge { value: -3.5 }),
                ..Default::default()
            }],
            ..Default::default()
        },
        pb::MetricFamily {
            name: "twin_rpc_seconds".into(),
            r#type: pb::MetricType::Summary as i32,
            metric: vec![pb::Metric {
                summary: Some(pb::Summary {
                    sample_count: 10,
                    sample_sum: 7.0,
                    quantile: vec![
                        pb::Quantile {
                            quantile: 0.5,
                            value: 0.1,
                        },
                        pb::Quantile {
                            quantile: 1.0,
                            value: 0.9,
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        pb::MetricFamily {
            name: "twin_latency_seconds".into(),
            r#type: pb::MetricType::Histogram as i32,
            metric: vec![pb::Metric {
                label: vec![label("path", "/")],
                histogram: Some(pb::Histogram {
                    sample_count: 3,
                    sample_sum: 2.5,
                    bucket: vec![
                        pb::Bucket {
                            upper_bound: 0.5,
                            cumulative_count: 1,
                            ..Default::default()
                        },
                        pb::Bucket {
                            upper_bound: 1.0,
                            cumulative_count: 2,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        pb::MetricFamily {
            name: "twin_untyped".into(),
            r#type: pb::MetricType::Untyped as i32,
            metric: vec![pb::Metric {
                untyped: Some(pb::Untyped { value: 42.0 }),
                timestamp_ms: ts,
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    for f in &families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

/// The same data in the text format.
fn twin_text(ts: i64) -> String {
    format!(
        "# HELP twin_requests_total Requests.\n\
         # TYPE twin_requests_total counter\n\
         twin_requests_total{{code=\"200\",method=\"get\"}} 1027\n\
         twin_requests_total{{code=\"500\",method=\"post\"}} 3\n\
         # TYPE twin_temperature gauge\n\
         twin_temperature -3.5\n\
         # TYPE twin_rpc_seconds summary\n\
         twin_rpc_seconds{{quantile=\"0.5\"}} 0.1\n\
         twin_rpc_seconds{{quantile=\"1\"}} 0.9\n\
         twin_rpc_seconds_sum 7\n\
         twin_rpc_seconds_count 10\n\
         # TYPE twin_latency_seconds histogram\n\
         twin_latency_seconds_bucket{{path=\"/\",le=\"0.5\"}} 1\n\
         twin_latency_seconds_bucket{{path=\"/\",le=\"1\"}} 2\n\
         twin_latency_seconds_bucket{{path=\"/\",le=\"+Inf\"}} 3\n\
         twin_latency_seconds_sum{{path=\"/\"}} 2.5\n\
         twin_latency_seconds_count{{path=\"/\"}} 3\n\
         twin_untyped 42 {ts}\n"
    )
}

/// A real node exporter on a loopback port, killed on drop.
async fn node_exporter() -> (tokio::process::Child, String) {
    let addr = format!("127.0.0.1:{}", free_loopback_port());
    let child = tokio::process::Command::new(NODE_EXPORTER)
        .args([
            &format!("--web.listen-address={addr}"),
            "--collector.disable-defaults",
            "--log.level=warn",
            // Collectors whose series set does not change between scrapes.
            "--collector.loadavg",
            "--collector.os",
            "--collector.uname",
            "--collector.meminfo",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting prometheus-node-exporter");
    eventually(Duration::from_secs(20), "node exporter listens", || async {
        tokio::net::TcpStream::connect(&addr)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    (child, addr)
}

/// `le` / `quantile` in one float spelling (2.42 stores them as exposed, 3.x normalized).
fn normalize(mut l: Labels) -> Labels {
    for name in ["le", "quantile"] {
        if let Some(v) = l.get_mut(name)
            && let Ok(f) = v.parse::<f64>()
        {
            *v = format!("{f:?}");
        }
    }
    l
}

/// Series of `job` → the value bit patterns stored (stale markers aside).
fn stored(r: &RecordingReceiver, job: &str) -> BTreeMap<Labels, BTreeSet<u64>> {
    let mut out = BTreeMap::new();
    for l in r.series() {
        if l.get("job").map(String::as_str) != Some(job) {
            continue;
        }
        let values: BTreeSet<u64> = r
            .samples(&l)
            .into_iter()
            .filter(|(_, v)| !is_stale(*v))
            .map(|(_, v)| v.to_bits())
            .collect();
        out.entry(normalize(l))
            .or_insert_with(BTreeSet::new)
            .extend(values);
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_scrapes_store_what_prometheus_stores_from_text() {
    let (_node, node) = node_exporter().await;
    // What the exporter answers to promshard's Accept: protobuf, so the node job below really
    // reads protobuf.
    let resp = reqwest::Client::new()
        .get(format!("http://{node}/metrics"))
        .header(
            "accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4",
        )
        .send()
        .await
        .unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/vnd.google.protobuf"),
        "node exporter answered {ct}"
    );

    let sim = TargetSimulator::start(2).await;
    let (proto_twin, text_twin) = (sim.target(0), sim.target(1));
    // Prometheus's remote write never forwards samples older than its queue's start: the
    // timestamp is set once it runs (below).
    proto_twin.set_content_type(PROTO_CT);
    text_twin.set_content_type(TEXT_CT);
    proto_twin.set_body_bytes(twin_protobuf(now_ms()).into());
    text_twin.set_body(twin_text(now_ms()));

    let prom_rx = RecordingReceiver::start().await;
    let ours_rx = RecordingReceiver::start().await;
    let config = |twin: &str, protocols: &str, rw: &str| {
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
{protocols}    static_configs: [{{targets: ['{node}']}}]
  - job_name: twin
{protocols}    static_configs: [{{targets: ['{twin}']}}]
    relabel_configs: [{{target_label: instance, replacement: twin}}]
remote_write:
  - url: {rw}
    queue_config: {{batch_send_deadline: 200ms}}
"#
        )
    };
    let _prom =
        PrometheusServer::start_agent(&config(&text_twin.address(), "", &prom_rx.url())).await;
    let ts = now_ms();
    proto_twin.set_body_bytes(twin_protobuf(ts).into());
    text_twin.set_body(twin_text(ts));

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        config(
            &proto_twin.address(),
            "    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n",
            &ours_rx.url(),
        ),
    )
    .unwrap();
    let master = start_master(&config_path, &[]).await;
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let up_ones = |r: &RecordingReceiver, job: &str| -> usize {
        r.find("up", &[("job", job)])
            .iter()
            .flat_map(|(_, s)| s)
            .filter(|(_, v)| *v == 1.0)
            .count()
    };
    eventually(
        Duration::from_secs(30),
        "three successful scrapes of both jobs by both",
        || async {
            for (who, r) in [("prometheus", &prom_rx), ("promshard", &ours_rx)] {
                for job in ["node", "twin"] {
                    let n = up_ones(r, job);
                    if n < 3 {
                        return Err(format!("{who}: {n} up=1 samples for job {job}"));
                    }
                }
            }
            Ok(())
        },
    )
    .await;
    // The proto twin was asked for protobuf first.
    let accept = proto_twin.scrapes()[0]
        .header("accept")
        .unwrap_or_default()
        .to_string();
    assert!(
        accept.starts_with(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
        ),
        "{accept}"
    );

    // The twins: the same series and values (the report series' timings aside).
    let timing = |l: &Labels| {
        l.get("__name__")
            .is_some_and(|n| n == "scrape_duration_seconds")
    };
    let (theirs, ours) = (stored(&prom_rx, "twin"), stored(&ours_rx, "twin"));
    let data = |m: &BTreeMap<Labels, BTreeSet<u64>>| -> BTreeMap<Labels, BTreeSet<u64>> {
        m.iter()
            .filter(|(l, _)| !timing(l))
            .map(|(l, v)| (l.clone(), v.clone()))
            .collect()
    };
    let twin_series = ours
        .keys()
        .filter(|l| l["__name__"].starts_with("twin_"))
        .count();
    assert_eq!(twin_series, 13, "{:?}", ours.keys());
    assert_eq!(data(&ours), data(&theirs));

    // The node exporter: the same series.
    let (theirs, ours) = (stored(&prom_rx, "node"), stored(&ours_rx, "node"));
    let keys = |m: &BTreeMap<Labels, BTreeSet<u64>>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert!(ours.len() > 20, "{} node series", ours.len());
    assert_eq!(keys(&ours), keys(&theirs));
    // Values that do not change are equal.
    for name in ["node_uname_info", "node_os_info"] {
        let pick = |m: &BTreeMap<Labels, BTreeSet<u64>>| {
            m.iter()
                .filter(|(l, _)| l["__name__"] == name)
                .map(|(l, v)| (l.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(&ours), pick(&theirs), "{name}");
        assert!(!pick(&ours).is_empty(), "{name}");
    }
}

/// A target with native histograms: an integer one (schema 3, three buckets, classic buckets
/// too) and a float gauge histogram, plus a counter.
fn native_body(with_histograms: bool) -> Vec<u8> {
    let span = |offset, length| pb::BucketSpan { offset, length };
    let mut families = vec![pb::MetricFamily {
        name: "nh_requests_total".into(),
        r#type: pb::MetricType::Counter as i32,
        metric: vec![pb::Metric {
            counter: Some(pb::Counter {
                value: 9.0,
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }];
    if with_histograms {
        families.push(pb::MetricFamily {
            name: "nh_int_seconds".into(),
            r#type: pb::MetricType::Histogram as i32,
            metric: vec![pb::Metric {
                histogram: Some(pb::Histogram {
                    sample_count: 5,
                    sample_sum: 7.5,
                    schema: 3,
                    zero_threshold: 0.001,
                    zero_count: 1,
                    positive_span: vec![span(0, 2), span(2, 1)],
                    positive_delta: vec![1, 1, -1],
                    bucket: vec![pb::Bucket {
                        upper_bound: 1.0,
                        cumulative_count: 3,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        families.push(pb::MetricFamily {
            name: "nh_float_seconds".into(),
            r#type: pb::MetricType::GaugeHistogram as i32,
            metric: vec![pb::Metric {
                histogram: Some(pb::Histogram {
                    sample_count_float: 3.5,
                    sample_sum: 1.25,
                    schema: 0,
                    positive_span: vec![span(1, 1)],
                    positive_count: vec![3.5],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    let mut out = Vec::new();
    for f in &families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

/// Native histograms end to end: scraped from protobuf, limited to 2 buckets
/// (`native_histogram_bucket_limit`), through the WAL, to a 1.0 and a 2.0 recording receiver
/// with `send_native_histograms` (and not to one without it), and into a real Prometheus 2.42
/// started with `--enable-feature=native-histograms`; then staleness when they vanish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histograms_reach_both_protocols_and_a_real_prometheus() {
    use promshard_proto::prometheus::histogram::{Count, ResetHint, ZeroCount};

    let sim = TargetSimulator::start(1).await;
    let target = sim.target(0);
    target.set_content_type(PROTO_CT);
    target.set_body_bytes(native_body(true).into());
    let v1 = RecordingReceiver::start().await;
    let v2 = RecordingReceiver::start().await;
    let without = RecordingReceiver::start().await;
    let prom = PrometheusServer::start_server(
        "scrape_configs: []\n",
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: native
    scrape_native_histograms: true
    native_histogram_bucket_limit: 2
    static_configs: [{{targets: ['{target}']}}]
remote_write:
  - {{url: '{v1}', name: v1, send_native_histograms: true, queue_config: {{batch_send_deadline: 200ms}}}}
  - {{url: '{v2}', name: v2, send_native_histograms: true, protobuf_message: io.prometheus.write.v2.Request, queue_config: {{batch_send_deadline: 200ms}}}}
  - {{url: '{without}', name: without, queue_config: {{batch_send_deadline: 200ms}}}}
  - {{url: '{prom}', name: prometheus, send_native_histograms: true, queue_config: {{batch_send_deadline: 200ms}}}}
"#,
            target = target.address(),
            v1 = v1.url(),
            v2 = v2.url(),
            without = without.url(),
            prom = prom.remote_write_url(),
        ),
    )
    .unwrap();
    let master = start_master(&config_path, &[]).await;
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let labels = |name: &str| -> Labels {
        [
            ("__name__", name),
            ("instance", target.address().as_str()),
            ("job", "native"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let (int, float) = (labels("nh_int_seconds"), labels("nh_float_seconds"));
    eventually(
        Duration::from_secs(30),
        "histograms in both recording receivers",
        || async {
            for (who, r) in [("1.0", &v1), ("2.0", &v2)] {
                for l in [&int, &float] {
                    if r.histograms(l).len() < 2 {
                        return Err(format!("{who}: {:?}", r.histogram_series()));
                    }
                }
            }
            Ok(())
        },
    )
    .await;
    // The target asked for protobuf first (the default with native histograms on).
    let accept = target.scrapes()[0]
        .header("accept")
        .unwrap_or_default()
        .to_string();
    assert!(
        accept.starts_with("application/vnd.google.protobuf;"),
        "{accept}"
    );
    for (who, r) in [("1.0", &v1), ("2.0", &v2)] {
        let h = &r.histograms(&int)[0];
        // Schema 3 buckets at indexes 0, 1 and 4 are three at schema 2 and two at schema 1.
        assert_eq!(h.schema, 1, "{who}");
        assert_eq!(h.count, Some(Count::CountInt(5)), "{who}");
        assert_eq!(h.zero_count, Some(ZeroCount::ZeroCountInt(1)), "{who}");
        assert_eq!(h.sum, 7.5, "{who}");
        assert_eq!(h.positive_deltas, [1, 2], "{who}");
        assert_eq!(
            h.positive_spans
                .iter()
                .map(|s| (s.offset, s.length))
                .collect::<Vec<_>>(),
            [(0, 2)],
            "{who}"
        );
        assert!(h.timestamp > 0, "{who}");
        let f = &r.histograms(&float)[0];
        assert_eq!(f.count, Some(Count::CountFloat(3.5)), "{who}");
        assert_eq!(f.positive_counts, [3.5], "{who}");
        assert_eq!(f.reset_hint, ResetHint::Gauge as i32, "{who}");
        // Native histograms only: no classic series of them.
        assert!(
            r.series()
                .iter()
                .all(|l| !l["__name__"].starts_with("nh_int_seconds_")),
            "{who}"
        );
        assert!(r.violations().is_empty(), "{who}: {:?}", r.violations());
    }
    // No send_native_histograms: the counter, no histograms.
    assert!(without.histogram_series().is_empty());
    assert!(!without.samples(&labels("nh_requests_total")).is_empty());

    eventually(
        Duration::from_secs(30),
        "Prometheus 2.42 stores the histograms",
        || async {
            let c = prom.try_query("histogram_count(nh_int_seconds)").await?;
            let s = prom.try_query("histogram_sum(nh_int_seconds)").await?;
            let f = prom.try_query("histogram_count(nh_float_seconds)").await?;
            let got = |v: &[(Labels, f64)]| v.first().map(|(_, x)| *x);
            if (got(&c), got(&s), got(&f)) == (Some(5.0), Some(7.5), Some(3.5)) {
                Ok(())
            } else {
                Err(format!("{c:?} {s:?} {f:?}"))
            }
        },
    )
    .await;

    // The histograms vanish: stale markers, and Prometheus stops returning them.
    target.set_body_bytes(native_body(false).into());
    eventually(
        Duration::from_secs(30),
        "stale markers for both histograms",
        || async {
            for (who, r) in [("1.0", &v1), ("2.0", &v2)] {
                for l in [&int, &float] {
                    let as_float = r.samples(l).iter().any(|(_, v)| is_stale(*v));
                    let as_histogram = r.histograms(l).iter().any(|h| is_stale(h.sum));
                    if !(as_float || as_histogram) {
                        return Err(format!("{who}: no stale marker for {l:?}"));
                    }
                }
            }
            Ok(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "Prometheus sees the histograms stale",
        || async {
            let c = prom.try_query("histogram_count(nh_int_seconds)").await?;
            if c.is_empty() {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        },
    )
    .await;
}
