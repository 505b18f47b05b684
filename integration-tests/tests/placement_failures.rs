//! Survival of failures: a worker killed with SIGKILL, the master killed for a minute (with a
//! worker restarting meanwhile), and a master restart that must not move any target. While the
//! master is away, workers keep scraping but hold back what they scrape after their lease ran
//! out (they cannot tell a dead master from a partition): it arrives, in order, once a master
//! is back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promshard_integration_tests::cluster::{
    metric, owners, slot_report, start_master, start_worker,
};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;

const INTERVAL_MS: i64 = 1_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn write_config(dir: &std::path::Path, sim: &TargetSimulator, rw: &str) -> std::path::PathBuf {
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: 500ms\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n\
         remote_write:\n  - url: {rw}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        targets.join(", "),
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Every target owned by one of `workers`, no handoff in flight, all instants passed.
async fn placed(http: &str, n: usize, workers: &[&str]) -> BTreeMap<String, String> {
    eventually(Duration::from_secs(60), "a settled placement", || async {
        let o = owners(http).await?;
        if o.len() != n || !o.values().all(|w| workers.contains(&w.as_str())) {
            return Err(format!("owners: {o:?}"));
        }
        if metric(http, "promshard_master_handoffs_in_flight").await? != 0.0 {
            return Err("handoffs in flight".into());
        }
        let last = metric(http, "promshard_master_handoff_last_instant_seconds").await?;
        if now_ms() as f64 / 1000.0 <= last {
            return Err("a handoff instant is ahead".into());
        }
        Ok(o)
    })
    .await
}

/// The most recent scrape of `addr` that the simulator saw, in Unix ms.
fn last_scrape_ms(sim: &TargetSimulator, addr: &str) -> i64 {
    sim.targets()
        .iter()
        .find(|t| t.address() == addr)
        .and_then(|t| t.last_scrape())
        .map_or(0, |s| s.at_millis())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_targets_come_back_within_grace_and_nothing_else_moves() {
    const N: usize = 30;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &recorder.url());
    let grace = Duration::from_secs(2);
    let master = start_master(&config, &["--worker-grace-period", "2s"]).await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let mut w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let _w2 = start_worker("w2", &grpc, dir.path(), &[]).await;
    let _w3 = start_worker("w3", &grpc, dir.path(), &[]).await;
    let before = placed(&http, N, &["w1", "w2", "w3"]).await;
    let orphans: Vec<String> = before
        .iter()
        .filter(|(_, w)| *w == "w1")
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!orphans.is_empty(), "w1 got no targets: {before:?}");

    w1.kill().await;
    let killed_at = now_ms();
    // Within grace + one interval (plus the handoff lead a new owner waits for when the old
    // one is alive, which here it is not), every orphan is scraped again.
    let bound = grace + Duration::from_millis(INTERVAL_MS as u64) + Duration::from_secs(3);
    eventually(bound, "w1's targets scraped again", || async {
        let waiting: Vec<&String> = orphans
            .iter()
            .filter(|a| last_scrape_ms(&sim, a) <= killed_at + grace.as_millis() as i64)
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("not scraped yet: {waiting:?}"))
        }
    })
    .await;
    let after = placed(&http, N, &["w2", "w3"]).await;
    for (t, w) in &before {
        if w != "w1" {
            assert_eq!(
                &after[t], w,
                "{t} moved from {w} though its worker is alive"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_down_for_a_minute_misses_nothing_and_its_restart_moves_nothing() {
    const N: usize = 20;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &recorder.url());
    let args = ["--worker-grace-period", "3s"];
    let mut master = start_master(&config, &args).await;
    let grpc = master.url("grpc");
    let http = master.url("http");
    let mut w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let _w2 = start_worker("w2", &grpc, dir.path(), &[]).await;
    let before = placed(&http, N, &["w1", "w2"]).await;

    master.kill().await;
    let down_at = now_ms();
    // While the master is away, w1 is killed and restarted with its data dir: it resumes its
    // persisted assignment without any master.
    w1.kill().await;
    let w1_targets: Vec<String> = before
        .iter()
        .filter(|(_, w)| *w == "w1")
        .map(|(t, _)| t.clone())
        .collect();
    let _w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let restarted_at = now_ms();
    eventually(
        Duration::from_secs(10),
        "restarted w1 scraping its targets",
        || async {
            let idle: Vec<&String> = w1_targets
                .iter()
                .filter(|a| last_scrape_ms(&sim, a) <= restarted_at)
                .collect();
            if idle.is_empty() {
                Ok(())
            } else {
                Err(format!("not scraped: {idle:?}"))
            }
        },
    )
    .await;
    // The rest of the minute: every target keeps being scraped by someone.
    let until = down_at + 60_000;
    eventually(
        Duration::from_secs(75),
        "a minute without the master",
        || async {
            if now_ms() >= until {
                Ok(())
            } else {
                Err("the minute is not over".into())
            }
        },
    )
    .await;

    // Nothing scraped after the workers' leases ran out (half the grace period after the kill)
    // was sent while the master was away: a partitioned worker must not race a new owner.
    let lease_ms = 1_500;
    let newest_sent = recorder
        .series()
        .iter()
        .flat_map(|l| recorder.samples(l))
        .map(|(t, _)| t)
        .max()
        .unwrap_or(0);
    assert!(
        newest_sent <= down_at + lease_ms + 1_000,
        "sent a sample scraped at {newest_sent}, {} ms after the master died",
        newest_sent - down_at
    );

    // Same ports, so the workers find it again.
    let grpc_addr = grpc.trim_start_matches("http://").to_string();
    let http_addr = http.trim_start_matches("http://").to_string();
    let master = Process::spawn(
        "master-restarted",
        &[
            "master",
            "--config",
            config.to_str().unwrap(),
            "--listen-grpc",
            &grpc_addr,
            "--listen-http",
            &http_addr,
            args[0],
            args[1],
        ],
    )
    .await;
    let http = master.url("http");
    let after = placed(&http, N, &["w1", "w2"]).await;
    assert_eq!(after, before, "a master restart moved targets");
    // The minute held back arrives now, late, then the live samples.
    let back_at = now_ms();
    eventually(
        Duration::from_secs(30),
        "every target's samples past the master's return",
        || async {
            let behind: Vec<String> = sim
                .addresses()
                .into_iter()
                .filter(|a| {
                    !recorder
                        .find("up", &[("instance", a.as_str())])
                        .iter()
                        .any(|(_, s)| s.iter().any(|(t, _)| *t >= back_at))
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
    for o in ["completed", "late", "cancelled"] {
        let series = format!("promshard_master_handoffs_total{{outcome=\"{o}\"}}");
        assert_eq!(
            metric(&http, &series).await.unwrap(),
            0.0,
            "{o} handoffs after restart"
        );
    }

    // Per target, over the whole run: no slot missed except, for w1's targets, the slots of
    // w1's own kill and restart (a process that is dead cannot scrape); none doubled.
    let mut bad = Vec::new();
    for addr in sim.addresses() {
        let series = recorder.find("up", &[("instance", addr.as_str())]);
        assert_eq!(series.len(), 1, "one up series for {addr}");
        let r = slot_report(&series[0].1, INTERVAL_MS);
        let allowed = if w1_targets.contains(&addr) { 3 } else { 0 };
        if r.missed > allowed || r.doubled != 0 {
            bad.push(format!("{addr} (on {}): {r:?}", before[&addr]));
        }
    }
    assert!(
        bad.is_empty(),
        "slots missed or doubled:\n{}",
        bad.join("\n")
    );
}
