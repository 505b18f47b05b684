//! The per-endpoint `remote_write` settings as a receiver sees them: `external_labels` added
//! where a series lacks them, `write_relabel_configs` applied after them, custom `headers`,
//! `basic_auth` or `authorization` on every request, and two endpoints that progress
//! independently (one down for good, the other complete).

mod remote_write_common;

use std::time::Duration;

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::receiver::{ReceiverResponse, RecordingReceiver, labels};
use promshard_integration_tests::simulator::TargetSimulator;
use remote_write_common::{Cluster, match_scrapes, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_labels_relabeling_headers_and_basic_auth_reach_the_receiver() {
    let sim = TargetSimulator::start(1).await;
    let receiver = RecordingReceiver::start().await;
    // `job` is already on every series: an external label never overrides it.
    let global = "  external_labels: {cluster: eu-1, job: ignored}\n";
    let rw = format!(
        "remote_write:\n  - url: {}\n    name: rec\n    queue_config: {{batch_send_deadline: 200ms}}\n\
         \x20   headers: {{X-Scope-OrgID: tenant-a}}\n\
         \x20   basic_auth: {{username: promshard, password: s3cret}}\n\
         \x20   write_relabel_configs:\n\
         \x20     - source_labels: [__name__]\n        regex: sim_target_info\n        action: drop\n\
         \x20     - source_labels: [cluster]\n        target_label: region\n        regex: (.*)-1\n",
        receiver.url()
    );
    let c = Cluster::start_full(sim, receiver, global, &rw, &[]).await;
    c.wait_for_first_samples().await;
    let addr = c.sim.targets()[0].address();
    let up = c.receiver.series();
    let want = labels(&[
        ("__name__", "up"),
        ("cluster", "eu-1"),
        ("instance", &addr),
        ("job", "sim"),
        ("region", "eu"),
    ]);
    assert!(up.contains(&want), "{up:?}");
    assert!(
        c.receiver.find::<&str>("sim_target_info", &[]).is_empty(),
        "dropped by write_relabel_configs"
    );
    let log = c.receiver.request_log();
    for r in &log {
        assert_eq!(r.header("x-scope-orgid"), Some("tenant-a"));
        // base64("promshard:s3cret")
        assert_eq!(
            r.header("authorization"),
            Some("Basic cHJvbXNoYXJkOnMzY3JldA==")
        );
        assert!(
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("promshard/"))
        );
    }
    c.receiver.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_never_holds_back_a_healthy_one() {
    let sim = TargetSimulator::start(2).await;
    let healthy = RecordingReceiver::start().await;
    let dead = RecordingReceiver::start().await;
    dead.set_response(503);
    let rw = format!(
        "remote_write:\n\
         \x20 - url: {}\n    name: rec\n    queue_config: {{batch_send_deadline: 200ms}}\n\
         \x20 - url: {}\n    name: dead\n    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 200ms, capacity: 10, max_samples_per_send: 10}}\n\
         \x20   authorization: {{credentials: tok}}\n",
        healthy.url(),
        dead.url()
    );
    let c = Cluster::start_with(sim, healthy, &rw, &[]).await;
    c.wait_for_first_samples().await;
    let from = now_ms();
    // Long enough for the dead endpoint's small queue to fill many times over.
    eventually(
        Duration::from_secs(30),
        "the dead endpoint to be refused many times",
        || async {
            let n = dead.requests();
            if n >= 30 {
                Ok(())
            } else {
                Err(format!("{n} requests"))
            }
        },
    )
    .await;
    let to = now_ms();
    c.wait_until_delivered_past(to, Duration::from_secs(30))
        .await;
    for t in c.sim.targets() {
        let served: Vec<i64> = t
            .scrapes()
            .iter()
            .map(|s| s.at_millis())
            .filter(|at| (from..=to).contains(at))
            .collect();
        let matched = match_scrapes(&served, &c.up_of(&t.address()));
        assert!(
            matched.iter().all(Option::is_some),
            "{}: the healthy endpoint lost scrapes while the other was down",
            t.address()
        );
    }
    assert_eq!(
        dead.request_log()[0].header("authorization"),
        Some("Bearer tok")
    );
    assert!(dead.series().is_empty());
    c.receiver.assert_no_violations();
}

/// A slow upstream makes the reader wait on full shards: the shard count grows within
/// `max_shards`, requests go out concurrently, and still no series is ever in two requests at
/// once or out of order (the receiver flags both), and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gets_more_shards_without_breaking_per_series_order() {
    let sim = TargetSimulator::start(4).await;
    let receiver = RecordingReceiver::start().await;
    receiver
        .set_default_response(ReceiverResponse::status(204).with_delay(Duration::from_millis(400)));
    let rw = format!(
        "remote_write:\n  - url: {}\n    name: rec\n    queue_config: {{batch_send_deadline: 100ms, \
         max_samples_per_send: 10, capacity: 10, min_shards: 1, max_shards: 4}}\n",
        receiver.url()
    );
    let c = Cluster::start_with(sim, receiver, &rw, &[]).await;
    c.wait_for_first_samples().await;
    let from = now_ms();
    eventually(Duration::from_secs(60), "more than one shard", || async {
        let shards = c.metric("prometheus_remote_storage_shards").await;
        if shards >= 2.0 {
            Ok(())
        } else {
            Err(format!("{shards} shards"))
        }
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "two requests in flight at once",
        || async {
            let n = c.receiver.max_in_flight();
            if n >= 2 {
                Ok(())
            } else {
                Err(format!("at most {n} in flight"))
            }
        },
    )
    .await;
    c.receiver.set_response(204);
    let to = now_ms();
    c.wait_until_delivered_past(to, Duration::from_secs(60))
        .await;
    for t in c.sim.targets() {
        let served: Vec<i64> = t
            .scrapes()
            .iter()
            .map(|s| s.at_millis())
            .filter(|at| (from..=to).contains(at))
            .collect();
        let matched = match_scrapes(&served, &c.up_of(&t.address()));
        assert!(
            matched.iter().all(Option::is_some),
            "{}: lost scrapes",
            t.address()
        );
    }
    eprintln!(
        "shards: {} (max {} requests in flight)",
        c.metric("prometheus_remote_storage_shards").await,
        c.receiver.max_in_flight()
    );
    c.receiver.assert_no_violations();
    assert_eq!(c.receiver.duplicates(), []);
}
