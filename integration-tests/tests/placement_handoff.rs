//! Placement as a control loop, end to end: scaling workers out and back in under load moves
//! targets make-before-break — no missed slot, no doubled sample, no stale marker for a series
//! that still exists — and moves about the ideal fraction.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use promshard_integration_tests::cluster::{
    metric, owners, slot_report, start_master, start_worker,
};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::receiver::{RecordingReceiver, is_stale};
use promshard_integration_tests::simulator::TargetSimulator;

const TARGETS: usize = 200;
const INTERVAL_MS: i64 = 2_000;

/// Waits until every target is owned by one of `workers` and no handoff is in flight; returns
/// the owners.
async fn settled(http: &str, workers: &[&str]) -> BTreeMap<String, String> {
    let want: BTreeSet<&str> = workers.iter().copied().collect();
    eventually(
        Duration::from_secs(60),
        &format!("placement on {workers:?} with no handoff in flight"),
        || async {
            let o = owners(http).await?;
            let got: BTreeSet<&str> = o.values().map(String::as_str).collect();
            if o.len() != TARGETS || got != want {
                return Err(format!("owners by worker: {:?}", count_by(&o)));
            }
            let in_flight = metric(http, "promshard_master_handoffs_in_flight").await?;
            if in_flight != 0.0 {
                return Err(format!("{in_flight} handoffs in flight"));
            }
            // Every scheduled handoff instant has passed: old owners have stopped.
            let last = metric(http, "promshard_master_handoff_last_instant_seconds").await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if now <= last {
                return Err(format!("handoffs until {last}, now {now}"));
            }
            // Stable across two reads: the coordinator is not mid-change.
            if owners(http).await? != o {
                return Err("owners changed between reads".into());
            }
            Ok(o)
        },
    )
    .await
}

fn count_by(o: &BTreeMap<String, String>) -> BTreeMap<&str, usize> {
    let mut c = BTreeMap::new();
    for w in o.values() {
        *c.entry(w.as_str()).or_default() += 1;
    }
    c
}

fn moved(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> f64 {
    a.iter().filter(|(t, w)| b.get(*t) != Some(w)).count() as f64 / a.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_and_in_without_gaps_duplicates_or_stale_markers() {
    let sim = TargetSimulator::start(TARGETS).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n\
         remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        targets.join(", "),
        recorder.url(),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let master = start_master(&config_path, &["--worker-grace-period", "2s"]).await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));

    let mut workers = BTreeMap::new();
    for id in ["w1", "w2"] {
        workers.insert(id, start_worker(id, &grpc, dir.path(), &[]).await);
    }
    let on2 = settled(&http, &["w1", "w2"]).await;

    workers.insert("w3", start_worker("w3", &grpc, dir.path(), &[]).await);
    let on3 = settled(&http, &["w1", "w2", "w3"]).await;
    let f = moved(&on2, &on3);
    assert!(
        f <= 1.2 / 3.0,
        "2 → 3 workers moved {f:.3} of targets, ideal 0.333"
    );

    for id in ["w4", "w5"] {
        workers.insert(id, start_worker(id, &grpc, dir.path(), &[]).await);
    }
    let on5 = settled(&http, &["w1", "w2", "w3", "w4", "w5"]).await;
    let f = moved(&on3, &on5);
    assert!(
        f <= 1.2 * 0.4,
        "3 → 5 workers moved {f:.3} of targets, ideal 0.4"
    );

    // Scale in as Kubernetes does: SIGTERM. Each worker drains (hands every target off) and
    // exits by itself.
    let mut leaving: Vec<_> = ["w3", "w4", "w5"]
        .iter()
        .map(|id| workers.remove(id).unwrap())
        .collect();
    let exits = futures::future::join_all(leaving.iter_mut().map(|p| p.terminate())).await;
    for (p, status) in leaving.iter().zip(exits) {
        assert!(status.success(), "{} exited with {status}", p.name());
    }
    let on2_again = settled(&http, &["w1", "w2"]).await;
    let f = moved(&on5, &on2_again);
    assert!(
        f <= 1.2 * 0.6,
        "5 → 2 workers moved {f:.3} of targets, ideal 0.6"
    );
    // Cancelled handoffs are normal here (w4 and w5 join 10 ms apart, three workers drain at
    // once: a move in flight is redirected). What must hold is below: no slot missed or doubled.
    let mut outcomes = Vec::new();
    for o in ["completed", "late", "cancelled"] {
        let series = format!("promshard_master_handoffs_total{{outcome=\"{o}\"}}");
        outcomes.push((o, metric(&http, &series).await.unwrap()));
    }
    println!("handoffs by outcome: {outcomes:?}");
    assert!(outcomes[0].1 > 0.0, "no handoff completed: {outcomes:?}");

    // Let the last handoffs' slots reach the receiver: two more intervals of samples for all.
    let until = std::time::SystemTime::now() + Duration::from_millis(2 * INTERVAL_MS as u64);
    let until_ms = until
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    eventually(
        Duration::from_secs(30),
        "samples past the last handoff",
        || async {
            let behind = sim
                .addresses()
                .into_iter()
                .filter(|a| {
                    let s = recorder.find("up", &[("instance", a.as_str())]);
                    !s.iter()
                        .any(|(_, samples)| samples.iter().any(|(t, _)| *t >= until_ms))
                })
                .count();
            if behind == 0 {
                Ok(())
            } else {
                Err(format!("{behind} targets behind"))
            }
        },
    )
    .await;

    // Per target: every slot from its first scrape to its last has exactly one sample.
    let mut bad = Vec::new();
    for addr in sim.addresses() {
        let series = recorder.find("up", &[("instance", addr.as_str())]);
        assert_eq!(series.len(), 1, "one up series for {addr}");
        let (_, samples) = &series[0];
        let r = slot_report(samples, INTERVAL_MS);
        if r.missed != 0 || r.doubled != 0 {
            let ts: Vec<i64> = samples.iter().map(|(t, _)| *t).collect();
            bad.push(format!("{addr}: {r:?} at {ts:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "targets with missed or doubled slots:\n{}",
        bad.join("\n")
    );
    let stale: Vec<_> = recorder
        .series()
        .into_iter()
        .filter(|l| recorder.samples(l).iter().any(|(_, v)| is_stale(*v)))
        .collect();
    assert!(stale.is_empty(), "stale markers for live series: {stale:?}");
    assert!(
        recorder.duplicates().is_empty(),
        "{:?}",
        recorder.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_factor_scrapes_each_target_on_distinct_workers_with_a_replica_label() {
    const N: usize = 5;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\n\
         scrape_configs:\n  - job_name: critical\n    replication_factor: 2\n\
         \x20   static_configs:\n      - targets: [{}]\n\
         remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        targets.join(", "),
        recorder.url(),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let master = start_master(&config_path, &[]).await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let mut workers = Vec::new();
    for id in ["w1", "w2", "w3"] {
        workers.push(start_worker(id, &grpc, dir.path(), &[]).await);
    }
    // Two active targets per address, on two different workers.
    eventually(
        Duration::from_secs(30),
        "replicas on distinct workers",
        || async {
            let data = promshard_integration_tests::cluster::api(&format!(
                "{http}/api/v1/targets?state=active"
            ))
            .await?;
            let mut by_addr: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
            for t in data["activeTargets"].as_array().ok_or("no activeTargets")? {
                let addr = t["discoveredLabels"]["__address__"].as_str().unwrap_or("");
                let replica = t["labels"]["promshard_replica"].as_str().unwrap_or("");
                let worker = t["worker"].as_str().unwrap_or("");
                by_addr
                    .entry(addr.to_string())
                    .or_default()
                    .push((replica.to_string(), worker.to_string()));
            }
            if by_addr.len() != N {
                return Err(format!("{by_addr:?}"));
            }
            for (addr, reps) in &by_addr {
                let workers: BTreeSet<&str> = reps.iter().map(|(_, w)| w.as_str()).collect();
                let replicas: BTreeSet<&str> = reps.iter().map(|(r, _)| r.as_str()).collect();
                if replicas != BTreeSet::from(["0", "1"])
                    || workers.len() != 2
                    || workers.contains("")
                {
                    return Err(format!("{addr}: {reps:?}"));
                }
            }
            Ok(())
        },
    )
    .await;
    // The receiver gets `up` for each replica: a label Thanos or Mimir can deduplicate on.
    eventually(
        Duration::from_secs(30),
        "up for both replicas of every target",
        || async {
            for addr in sim.addresses() {
                let got: BTreeSet<String> = recorder
                    .find("up", &[("instance", addr.as_str())])
                    .into_iter()
                    .filter_map(|(l, _)| l.get("promshard_replica").cloned())
                    .collect();
                if got != BTreeSet::from(["0".to_string(), "1".to_string()]) {
                    return Err(format!("{addr}: replicas {got:?}"));
                }
            }
            Ok(())
        },
    )
    .await;
}
