//! Per-series timestamp order at the receivers, across workers: what a real TSDB (Prometheus
//! 2.42 with `--web.enable-remote-write-receiver`, out-of-order window 0) accepts through joins,
//! a SIGTERM drain, a rebalance after a load change, an old owner with a slow upstream, an old
//! owner killed mid-handoff, and a worker cut off from the master. The recording receiver judges
//! alongside it in strict mode (it refuses a request with an out-of-order sample whole, as the
//! TSDB does) and records every sample that went back in time, across connections.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promshard_integration_tests::cluster::{
    api, metric, metric_sum, owners, slot_report, start_master, start_worker,
};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::prometheus::PrometheusServer;
use promshard_integration_tests::proxy::TcpProxy;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;

const INTERVAL_MS: i64 = 1_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `remote_write` entries: (name, url).
fn write_config(dir: &Path, sim: &TargetSimulator, endpoints: &[(&str, String)]) -> PathBuf {
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let mut config = format!(
        "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: 500ms\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n\
         remote_write:\n",
        targets.join(", "),
    );
    for (name, url) in endpoints {
        config.push_str(&format!(
            "  - url: {url}\n    name: {name}\n    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}\n"
        ));
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Every target owned by one of `workers`, no handoff in flight and no fence waiting: the
/// owners.
async fn settled(http: &str, n: usize, workers: &[&str]) -> BTreeMap<String, String> {
    let want: BTreeSet<&str> = workers.iter().copied().collect();
    eventually(
        Duration::from_secs(60),
        &format!("placement on {workers:?}, no handoff or fence pending"),
        || async {
            let o = owners(http).await?;
            let got: BTreeSet<&str> = o.values().map(String::as_str).collect();
            if o.len() != n || got != want {
                return Err(format!("owners: {o:?}"));
            }
            for m in [
                "promshard_master_handoffs_in_flight",
                "promshard_master_handoff_fences_waiting",
            ] {
                let v = metric(http, m).await?;
                if v != 0.0 {
                    return Err(format!("{m} = {v}"));
                }
            }
            let last = metric(http, "promshard_master_handoff_last_instant_seconds").await?;
            if now_ms() as f64 / 1000.0 <= last {
                return Err("a handoff instant is ahead".into());
            }
            if owners(http).await? != o {
                return Err("owners changed between reads".into());
            }
            Ok(o)
        },
    )
    .await
}

async fn fences(http: &str, outcome: &str) -> f64 {
    metric(
        http,
        &format!("promshard_master_handoff_fences_total{{outcome=\"{outcome}\"}}"),
    )
    .await
    .unwrap()
}

/// Waits until the recorder has `up` of every target scraped at or after `at_ms`.
async fn caught_up(recorder: &RecordingReceiver, sim: &TargetSimulator, at_ms: i64) {
    eventually(
        Duration::from_secs(60),
        "every target's samples at the receiver",
        || async {
            let behind: Vec<String> = sim
                .addresses()
                .into_iter()
                .filter(|a| {
                    !recorder
                        .find("up", &[("instance", a.as_str())])
                        .iter()
                        .any(|(_, s)| s.iter().any(|(t, _)| *t >= at_ms))
                })
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("behind: {behind:?}"))
            }
        },
    )
    .await;
}

/// Targets whose `up` series has a missed or doubled slot at the recorder.
fn bad_slots(recorder: &RecordingReceiver, addrs: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    for addr in addrs {
        let series = recorder.find("up", &[("instance", addr.as_str())]);
        let Some((_, samples)) = series.first() else {
            bad.push(format!("{addr}: no up series"));
            continue;
        };
        let r = slot_report(samples, INTERVAL_MS);
        if r.missed != 0 || r.doubled != 0 {
            bad.push(format!("{addr}: {r:?}"));
        }
    }
    bad
}

/// What the real Prometheus says about the writes it got: no out-of-order rejection in its
/// log, no 400 from its write handler, and every target's slots once each.
async fn prometheus_accepted_everything(prom: &PrometheusServer, addrs: &[String], since_ms: i64) {
    let log = prom.log_contents();
    let ooo: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Out of order sample") || l.contains("out of bounds"))
        .take(5)
        .collect();
    assert!(
        ooo.is_empty(),
        "Prometheus refused samples:\n{}",
        ooo.join("\n")
    );
    let refused = prom
        .self_metric("prometheus_http_requests_total{code=\"400\",handler=\"/api/v1/write\"}")
        .await
        .unwrap();
    assert_eq!(refused, 0.0, "Prometheus answered 400 to remote write");
    let range = Duration::from_millis((now_ms() - since_ms + 60_000) as u64);
    let series = prom.raw_samples("up", range).await.unwrap();
    let mut bad = Vec::new();
    for addr in addrs {
        let Some((_, samples)) = series
            .iter()
            .find(|(l, _)| l.get("instance").map(String::as_str) == Some(addr.as_str()))
        else {
            bad.push(format!("{addr}: no up series in Prometheus"));
            continue;
        };
        let r = slot_report(samples, INTERVAL_MS);
        if r.missed != 0 || r.doubled != 0 {
            bad.push(format!("{addr}: {r:?}"));
        }
    }
    assert!(bad.is_empty(), "slots in Prometheus:\n{}", bad.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_a_drain_and_a_rebalance_keep_every_series_in_order_at_a_real_prometheus() {
    const N: usize = 40;
    let sim = TargetSimulator::start(N).await;
    let prom = PrometheusServer::start_receiver().await;
    // The workers write to Prometheus through the recorder, which holds each worker's requests
    // for a different time: an old owner is often behind its successor, as with a backlog or a
    // slower path, and Prometheus gets exactly the stream the recorder judges.
    let recorder = RecordingReceiver::start().await;
    recorder.set_strict_order(true);
    recorder.forward_to(&prom.remote_write_url());
    for (id, ms) in [("w1", 1_500), ("w2", 700), ("w3", 1_000)] {
        recorder.delay_sender(&worker_agent(id), Duration::from_millis(ms));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &[("prometheus", recorder.url())]);
    let master = start_master(
        &config,
        &[
            "--worker-grace-period",
            "2s",
            "--placement.rebalance-interval",
            "2s",
            "--handoff.fence-timeout",
            "30s",
        ],
    )
    .await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let started = now_ms();
    let mut workers: BTreeMap<&str, Process> = BTreeMap::new();
    for id in ["w1", "w2"] {
        workers.insert(id, start_worker(id, &grpc, dir.path(), &[]).await);
    }
    settled(&http, N, &["w1", "w2"]).await;
    workers.insert("w3", start_worker("w3", &grpc, dir.path(), &[]).await);
    settled(&http, N, &["w1", "w2", "w3"]).await;
    workers.insert("w4", start_worker("w4", &grpc, dir.path(), &[]).await);
    let on4 = settled(&http, N, &["w1", "w2", "w3", "w4"]).await;

    // SIGTERM, as Kubernetes scales in: w3 hands everything off and exits by itself.
    let mut w3 = workers.remove("w3").unwrap();
    let status = w3.terminate().await;
    assert!(status.success(), "w3 exited with {status}");
    let on3 = settled(&http, N, &["w1", "w2", "w4"]).await;

    // A load change: ten of w1's targets grow to 300 series each; placement moves some away.
    let moved_before = fences(&http, "released").await;
    let heavy: Vec<usize> = sim
        .targets()
        .iter()
        .filter(|t| on3.get(&t.address()).map(String::as_str) == Some("w1"))
        .map(|t| t.index())
        .take(10)
        .collect();
    assert!(
        heavy.len() >= 5,
        "w1 holds {} targets: {on3:?}",
        heavy.len()
    );
    for &i in &heavy {
        let body: String = (0..300)
            .map(|k| format!("sim_heavy{{k=\"{k}\"}} {k}\n"))
            .collect();
        sim.targets()[i].set_body(body);
    }
    eventually(
        Duration::from_secs(60),
        "a rebalance after the load change",
        || async {
            let o = owners(&http).await?;
            let moved = heavy
                .iter()
                .filter(|&&i| o.get(&sim.target(i).address()).map(String::as_str) != Some("w1"))
                .count();
            if moved > 0 {
                Ok(())
            } else {
                Err("no heavy target moved".into())
            }
        },
    )
    .await;
    settled(&http, N, &["w1", "w2", "w4"]).await;
    let end = now_ms();
    caught_up(&recorder, &sim, end).await;

    // Fences opened and every one was released by its old owner's report, none timed out.
    let released = fences(&http, "released").await;
    assert!(
        released > moved_before && moved_before > 0.0,
        "fences released: {moved_before} before the rebalance, {released} after"
    );
    assert_eq!(fences(&http, "timed_out").await, 0.0);
    let moved: usize = on4.iter().filter(|(t, w)| on3.get(*t) != Some(w)).count();
    println!("moved by the drain: {moved}; fences released: {released}");

    let addrs = sim.addresses();
    recorder.assert_no_violations();
    assert!(
        recorder.duplicates().is_empty(),
        "{:?}",
        recorder.duplicates()
    );
    assert_eq!(recorder.out_of_order_refusals(), (0, 0));
    let bad = bad_slots(&recorder, &addrs);
    assert!(bad.is_empty(), "slots at the recorder:\n{}", bad.join("\n"));
    prometheus_accepted_everything(&prom, &addrs, started).await;
    for (id, w) in &workers {
        let held = metric_sum(&w.url("http"), "promshard_remote_write_held_samples")
            .await
            .unwrap();
        assert_eq!(held, 0.0, "{id} still holds samples");
    }
}

/// The workers' remote-write User-Agent names them: `promshard/x.y.z (worker w1)`.
fn worker_agent(id: &str) -> String {
    format!("(worker {id})")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_for_the_old_owner_holds_the_new_owner_until_it_has_delivered() {
    const N: usize = 12;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    recorder.set_strict_order(true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &[("recorder", recorder.url())]);
    let master = start_master(
        &config,
        &[
            "--worker-grace-period",
            "4s",
            "--handoff.fence-timeout",
            "40s",
        ],
    )
    .await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let _w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let on1 = settled(&http, N, &["w1"]).await;
    // From now on w1's requests take 2.5 s to be stored: its queue runs behind.
    recorder.delay_sender(&worker_agent("w1"), Duration::from_millis(2_500));
    let w2 = start_worker("w2", &grpc, dir.path(), &[]).await;
    // The fence holds w2's samples of the moved targets while w1's older ones are in flight.
    eventually(
        Duration::from_secs(30),
        "w2 holding samples for w1",
        || async {
            let held = metric_sum(&w2.url("http"), "promshard_remote_write_held_samples").await?;
            if held > 0.0 {
                Ok(())
            } else {
                Err("nothing held".into())
            }
        },
    )
    .await;
    let on2 = settled(&http, N, &["w1", "w2"]).await;
    let moved: Vec<String> = on2
        .iter()
        .filter(|(t, w)| on1.get(*t) != Some(*w))
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!moved.is_empty());
    assert!(
        fences(&http, "released").await >= moved.len() as f64,
        "every moved target's fence was released by w1's report"
    );
    assert_eq!(fences(&http, "timed_out").await, 0.0);
    // Explain shows it.
    let explained = api(&format!(
        "{http}/api/v1/targets/explain?job=sim&instance={}",
        moved[0]
    ))
    .await
    .unwrap();
    let fence = &explained[0]["fences"][0];
    assert_eq!(fence["state"], "released", "{explained}");
    assert_eq!(fence["from"], "w1");
    assert_eq!(fence["to"], "w2");
    assert_eq!(fence["released"][0], "recorder");

    caught_up(&recorder, &sim, now_ms()).await;
    recorder.assert_no_violations();
    assert!(
        recorder.duplicates().is_empty(),
        "{:?}",
        recorder.duplicates()
    );
    let bad = bad_slots(&recorder, &moved);
    assert!(bad.is_empty(), "moved targets' slots:\n{}", bad.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_owner_killed_mid_handoff_times_the_fence_out_and_loses_only_its_old_samples() {
    const N: usize = 12;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    recorder.set_strict_order(true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &[("recorder", recorder.url())]);
    // A long grace: w1's remaining targets wait for its restart instead of moving too.
    let master = start_master(
        &config,
        &[
            "--worker-grace-period",
            "30s",
            "--handoff.fence-timeout",
            "4s",
        ],
    )
    .await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let mut w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let on1 = settled(&http, N, &["w1"]).await;
    recorder.delay_sender(&worker_agent("w1"), Duration::from_secs(3));
    let w2 = start_worker("w2", &grpc, dir.path(), &[]).await;
    eventually(
        Duration::from_secs(30),
        "w2 holding samples for w1",
        || async {
            let held = metric_sum(&w2.url("http"), "promshard_remote_write_held_samples").await?;
            if held > 0.0 {
                Ok(())
            } else {
                Err("nothing held".into())
            }
        },
    )
    .await;
    // w1 dies with the moved targets' last samples unsent.
    w1.kill().await;
    let killed_at = now_ms();
    eventually(Duration::from_secs(30), "the fences timing out", || async {
        let t = fences(&http, "timed_out").await;
        if t > 0.0 {
            Ok(t)
        } else {
            Err("no fence timed out yet".into())
        }
    })
    .await;
    let timeouts = metric_sum(&w2.url("http"), "promshard_handoff_fence_timeouts_total")
        .await
        .unwrap();
    assert!(timeouts > 0.0, "w2 counted no fence timeout");
    let o = owners(&http).await.unwrap();
    let moved: Vec<String> = o
        .iter()
        .filter(|(t, w)| *w == "w2" && on1.get(*t).map(String::as_str) == Some("w1"))
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!moved.is_empty(), "{o:?}");
    // The moved targets' samples flow from w2 after the deadline.
    let after = killed_at + 5_000;
    eventually(
        Duration::from_secs(30),
        "the moved targets flowing",
        || async {
            let behind: Vec<&String> = moved
                .iter()
                .filter(|a| {
                    !recorder
                        .find("up", &[("instance", a.as_str())])
                        .iter()
                        .any(|(_, s)| s.iter().any(|(t, _)| *t >= after))
                })
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("{behind:?}"))
            }
        },
    )
    .await;

    // w1 comes back with its WAL: what it still had of the moved targets is older than what
    // w2 sent. A strict receiver refuses it; w1 splits the refused requests and loses only
    // those samples, counted.
    recorder.delay_sender(&worker_agent("w1"), Duration::ZERO);
    let w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let stayed: Vec<String> = on1.keys().filter(|t| !moved.contains(t)).cloned().collect();
    caught_up(&recorder, &sim, now_ms()).await;
    let lost = eventually(
        Duration::from_secs(30),
        "w1 counting what it lost",
        || async {
            let n = metric_sum(
                &w1.url("http"),
                "promshard_remote_write_out_of_order_samples_total",
            )
            .await?;
            if n > 0.0 {
                Ok(n)
            } else {
                Err("nothing counted yet".into())
            }
        },
    )
    .await;
    // Bounded: at most the moved targets' samples of the seconds w1 ran behind (9 series a
    // target, one scrape a second, 3 s of delay per request and the kill).
    let bound = (moved.len() * 9 * 30) as f64;
    assert!(lost <= bound, "w1 lost {lost} samples, more than {bound}");
    // The receiver refused requests (a strict TSDB would) but stored nothing out of order.
    let violations = recorder.violations();
    // A request w1 sent just before it died can still sit in the (delayed) receiver when w2's
    // fence times out: the same moved series then appear in two requests at once. That overlap is
    // the fence timeout's documented cost, and only for moved targets; the strict receiver still
    // refuses whatever would land out of order.
    let moved_overlap = |v: &String| {
        v.contains("is also in another request still in flight")
            && moved.iter().any(|a| v.contains(&format!("instance={a:?}")))
    };
    let unexpected: Vec<&String> = violations
        .iter()
        .filter(|v| !v.contains("refused as a TSDB would") && !moved_overlap(v))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(
        violations
            .iter()
            .any(|v| moved.iter().any(|a| v.contains(&format!("instance={a:?}")))),
        "no refusal of a moved target's old samples: {violations:#?}"
    );
    // The targets that stayed with w1 lost nothing but the slots it was dead for.
    let down_slots = ((now_ms() - killed_at) / INTERVAL_MS + 2) as usize;
    for addr in &stayed {
        let series = recorder.find("up", &[("instance", addr.as_str())]);
        let r = slot_report(&series[0].1, INTERVAL_MS);
        assert!(
            r.doubled == 0 && r.missed <= down_slots,
            "{addr}: {r:?} (w1 was down for at most {down_slots} slots)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_master_sends_nothing_twice_and_nothing_out_of_order() {
    const N: usize = 20;
    let sim = TargetSimulator::start(N).await;
    let prom = PrometheusServer::start_receiver().await;
    let recorder = RecordingReceiver::start().await;
    recorder.set_strict_order(true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        &[
            ("prometheus", prom.remote_write_url()),
            ("recorder", recorder.url()),
        ],
    );
    let master = start_master(
        &config,
        &[
            "--worker-grace-period",
            "2s",
            "--handoff.fence-timeout",
            "40s",
        ],
    )
    .await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let proxy = TcpProxy::start(master.addr("grpc")).await;
    let started = now_ms();
    let w1 = start_worker("w1", &proxy.url(), dir.path(), &[]).await;
    let _w2 = start_worker("w2", &grpc, dir.path(), &[]).await;
    let before = settled(&http, N, &["w1", "w2"]).await;
    let w1_targets: Vec<String> = before
        .iter()
        .filter(|(_, w)| *w == "w1")
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!w1_targets.is_empty());

    // Cut w1 off from the master, not from its targets or the receivers, for longer than the
    // grace period: the master gives w1's targets to w2; w1 keeps scraping, holding back what
    // comes after its lease.
    proxy.cut();
    let cut_at = now_ms();
    eventually(
        Duration::from_secs(30),
        "w1's targets given to w2",
        || async {
            let o = owners(&http).await?;
            if o.len() == N && o.values().all(|w| w == "w2") {
                Ok(())
            } else {
                Err(format!("{o:?}"))
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "eight seconds of partition",
        || async {
            if now_ms() >= cut_at + 8_000 {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    let held = metric_sum(&w1.url("http"), "promshard_remote_write_held_samples")
        .await
        .unwrap();
    assert!(held > 0.0, "w1 held nothing back while cut off");
    proxy.heal();
    // w1 comes back, learns where its targets went: it sends what it held from before the
    // new owner's boundary, drops the rest, and its report opens w2's fences.
    eventually(
        Duration::from_secs(60),
        "w2's fences released by w1",
        || async {
            let released = fences(&http, "released").await;
            let waiting = metric(&http, "promshard_master_handoff_fences_waiting").await?;
            if released >= w1_targets.len() as f64 && waiting == 0.0 {
                Ok(())
            } else {
                Err(format!("released {released}, waiting {waiting}"))
            }
        },
    )
    .await;
    let dropped = metric_sum(&w1.url("http"), "promshard_handoff_dropped_samples_total")
        .await
        .unwrap();
    assert!(dropped > 0.0, "w1 dropped none of the slots w2 covers");
    caught_up(&recorder, &sim, now_ms()).await;
    assert_eq!(fences(&http, "timed_out").await, 0.0);

    let addrs = sim.addresses();
    recorder.assert_no_violations();
    assert!(
        recorder.duplicates().is_empty(),
        "{:?}",
        recorder.duplicates()
    );
    let bad = bad_slots(&recorder, &addrs);
    assert!(bad.is_empty(), "slots at the recorder:\n{}", bad.join("\n"));
    prometheus_accepted_everything(&prom, &addrs, started).await;
}
