//! Remote write 1.0 and 2.0 on the wire. Prometheus 2.42 (installed here) has no 2.0 receiver,
//! so 2.0 is checked against the recording receiver, which decodes it through its symbols
//! table; 1.0 goes into real Prometheus. A receiver that answers 415 to 2.0 gets the same
//! batch again as 1.0, and everything after it too.

mod remote_write_common;

use std::time::Duration;

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::prometheus::PrometheusServer;
use promshard_integration_tests::receiver::{RecordingReceiver, labels};
use promshard_integration_tests::simulator::TargetSimulator;
use remote_write_common::{Cluster, match_scrapes, now_ms, remote_write_yaml};

const QUEUE: &str = "batch_send_deadline: 200ms, min_backoff: 100ms, max_backoff: 1s";
const V2: &str = "    protobuf_message: io.prometheus.write.v2.Request\n";

/// Waits until the receiver has every simulated series of every target.
async fn wait_for_sim_series(c: &Cluster) {
    eventually(
        Duration::from_secs(30),
        "every target's sim_target_info",
        || async {
            let n = c.receiver.find::<&str>("sim_target_info", &[]).len();
            if n == c.sim.len() {
                Ok(())
            } else {
                Err(format!("{n} of {}", c.sim.len()))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_delivers_exact_samples_and_metadata_through_the_symbols_table() {
    let c = Cluster::start(2, QUEUE, V2, &[]).await;
    wait_for_sim_series(&c).await;
    c.wait_for_first_samples().await;

    let log = c.receiver.request_log();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.version, 2, "request #{} was not 2.0", r.number);
        assert_eq!(
            r.header("content-type"),
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")
        );
        assert_eq!(r.header("x-prometheus-remote-write-version"), Some("2.0.0"));
        assert_eq!(r.header("content-encoding"), Some("snappy"));
    }
    for (i, t) in c.sim.targets().iter().enumerate() {
        let addr = t.address();
        let series = labels(&[
            ("__name__", "sim_requests_total"),
            ("instance", &addr),
            ("job", "sim"),
            ("path", "/a"),
        ]);
        let samples = c.receiver.samples(&series);
        assert!(!samples.is_empty(), "{series:?} missing");
        assert!(samples.iter().all(|(_, v)| *v == 100.0 * (i + 1) as f64));
        let temp = labels(&[
            ("__name__", "sim_temperature_celsius"),
            ("instance", &addr),
            ("job", "sim"),
            ("sensor", "s1"),
        ]);
        assert!(
            c.receiver
                .samples(&temp)
                .iter()
                .all(|(_, v)| *v == 20.0 + i as f64 / 2.0)
        );
        // Metadata from the exposition's # TYPE and # HELP (2.0's MetricType numbers:
        // 1 counter, 2 gauge).
        assert_eq!(
            c.receiver.metadata(&series),
            Some((1, "Requests handled by the simulated target.".to_owned()))
        );
        assert_eq!(
            c.receiver.metadata(&temp),
            Some((
                2,
                "Temperature reported by the simulated sensor.".to_owned()
            ))
        );
    }
    assert_eq!(
        c.metric("promshard_remote_write_v2_fallbacks_total").await,
        0.0
    );
    c.receiver.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_415_to_v2_falls_back_to_v1_and_loses_nothing() {
    let sim = TargetSimulator::start(2).await;
    let receiver = RecordingReceiver::start().await;
    receiver.set_refuse_v2(true);
    let rw = remote_write_yaml(&receiver.url(), QUEUE, V2);
    let c = Cluster::start_with(sim, receiver, &rw, &[]).await;
    c.wait_for_first_samples().await;
    let mark = now_ms();
    c.wait_until_delivered_past(mark, Duration::from_secs(30))
        .await;

    let log = c.receiver.request_log();
    assert_eq!((log[0].version, log[0].status), (2, 415));
    // The refused batch comes again at once as 1.0, and everything after is 1.0.
    assert_eq!((log[1].version, log[1].status), (1, 204));
    assert_eq!(log[1].header("retry-attempt"), None);
    assert!(log[1..].iter().all(|r| r.version == 1), "{log:?}");
    assert_eq!(
        c.metric("promshard_remote_write_v2_fallbacks_total").await,
        1.0
    );
    // Every scrape so far arrived, the first (refused as 2.0) included.
    for t in c.sim.targets() {
        let served: Vec<i64> = t.scrapes().iter().map(|s| s.at_millis()).collect();
        let up = c.up_of(&t.address());
        let newest = up.iter().map(|(ts, _)| *ts).max().unwrap_or(0);
        let served: Vec<i64> = served.into_iter().filter(|at| *at <= newest).collect();
        let matched = match_scrapes(&served, &up);
        assert!(
            matched.iter().all(Option::is_some),
            "{}: lost scrapes: {served:?} vs {matched:?}",
            t.address()
        );
    }
    c.receiver.assert_no_violations();
    assert_eq!(c.receiver.duplicates(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_into_real_prometheus() {
    let prom = PrometheusServer::start_receiver().await;
    let sim = TargetSimulator::start(2).await;
    let receiver = RecordingReceiver::start().await;
    let rw = remote_write_yaml(&prom.remote_write_url(), QUEUE, "");
    let c = Cluster::start_with(sim, receiver, &rw, &[]).await;
    let want: Vec<(String, f64)> = c
        .sim
        .targets()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.address(), 100.0 * (i + 1) as f64))
        .collect();
    eventually(
        Duration::from_secs(30),
        "sim_requests_total{path=\"/a\"} in Prometheus",
        || async {
            let mut got: Vec<(String, f64)> = prom
                .try_query("sim_requests_total{path=\"/a\"}")
                .await?
                .into_iter()
                .filter_map(|(l, v)| Some((l.get("instance")?.clone(), v)))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want = want.clone();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
}

/// Prometheus 2.42 has no 2.0 receiver, and it does not answer 415 either: it decodes a 2.0
/// body as an empty 1.0 request and answers 204 having stored nothing. The missing
/// `X-Prometheus-Remote-Write-Samples-Written` header gives it away; the sender falls back and
/// the data arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_into_real_prometheus_2_42_falls_back_to_v1_instead_of_losing_data() {
    let prom = PrometheusServer::start_receiver().await;
    let sim = TargetSimulator::start(1).await;
    let receiver = RecordingReceiver::start().await;
    let rw = remote_write_yaml(&prom.remote_write_url(), QUEUE, V2);
    let c = Cluster::start_with(sim, receiver, &rw, &[]).await;
    let addr = c.sim.targets()[0].address();
    let first_scrape = eventually(Duration::from_secs(30), "a first scrape", || async {
        c.sim.targets()[0]
            .scrapes()
            .first()
            .map(|s| s.at_millis())
            .ok_or_else(|| "none yet".to_owned())
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "the first scrape's up in Prometheus",
        || async {
            // up at the first scrape's time: the batch Prometheus swallowed as 2.0 came again.
            let q = format!(
                "count_over_time(up{{instance=\"{addr}\"}}[1h] @ {})",
                (first_scrape + 1000) / 1000
            );
            let got = prom.try_query(&q).await?;
            if got.iter().any(|(_, v)| *v >= 1.0) {
                Ok(())
            } else {
                Err(format!("{q}: {got:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        c.metric("promshard_remote_write_v2_fallbacks_total").await,
        1.0
    );
}

/// An OpenMetrics target that exposes `_created`: the counter's 2.0 series carries it as its
/// created timestamp, with the family's metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_carries_created_timestamps_from_openmetrics() {
    let sim = TargetSimulator::start(1).await;
    sim.target(0)
        .set_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8");
    sim.target(0).set_body(
        "# TYPE rq counter\n# HELP rq Requests served.\n\
         rq_total{code=\"200\"} 5\nrq_created{code=\"200\"} 1700000000.5\n# EOF\n",
    );
    let receiver = RecordingReceiver::start().await;
    let rw = remote_write_yaml(&receiver.url(), QUEUE, V2);
    let c = Cluster::start_with(sim, receiver, &rw, &[]).await;
    let addr = c.sim.targets()[0].address();
    let total = labels(&[
        ("__name__", "rq_total"),
        ("code", "200"),
        ("instance", &addr),
        ("job", "sim"),
    ]);
    eventually(
        Duration::from_secs(30),
        "rq_total at the receiver",
        || async {
            if c.receiver.samples(&total).is_empty() {
                Err(format!("series: {:?}", c.receiver.series()))
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert_eq!(
        c.receiver.created_timestamp(&total),
        Some(1_700_000_000_500)
    );
    assert_eq!(
        c.receiver.metadata(&total),
        Some((1, "Requests served.".to_owned()))
    );
    c.receiver.assert_no_violations();
}
