//! The vertical slice, end to end with real processes: a master, two workers, 20 simulated
//! targets, real Prometheus and a recording receiver as remote-write upstreams.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use promshard_integration_tests::cluster::{api, owners, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::prometheus::PrometheusServer;
use promshard_integration_tests::receiver::{RecordingReceiver, labels};
use promshard_integration_tests::simulator::TargetSimulator;

const TARGETS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_two_workers_twenty_targets_into_real_prometheus() {
    let sim = TargetSimulator::start(TARGETS).await;
    let recorder = RecordingReceiver::start().await;
    let prom = PrometheusServer::start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n        labels: {{team: infra}}\n\
         remote_write:\n\
         \x20 - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n\
         \x20 - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        targets.join(", "),
        prom.remote_write_url(),
        recorder.url(),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();

    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            config_path.to_str().unwrap(),
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
            "--worker-grace-period",
            "2s",
        ],
    )
    .await;
    let grpc = master.url("grpc");
    let http = master.url("http");
    let mut w1 = start_worker("w1", &grpc, dir.path(), &[]).await;
    let _w2 = start_worker("w2", &grpc, dir.path(), &[]).await;

    // Every target is owned by exactly one connected worker, and both workers have some.
    let owned = eventually(
        Duration::from_secs(30),
        "all targets placed on both workers",
        || async {
            let o = owners(&http).await?;
            let workers: BTreeSet<&str> = o.values().map(String::as_str).collect();
            if o.len() != TARGETS || workers != BTreeSet::from(["w1", "w2"]) {
                return Err(format!("owners: {o:?}"));
            }
            Ok(o)
        },
    )
    .await;
    let workers_api = api(&format!("{http}/api/v1/workers")).await.unwrap();
    let total: u64 = workers_api
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["targets"].as_u64().unwrap())
        .sum();
    assert_eq!(total, TARGETS as u64, "{workers_api}");

    // Prometheus holds up == 1 for every target, with job and instance right.
    let want_instances: BTreeSet<String> = sim.addresses().into_iter().collect();
    eventually(
        Duration::from_secs(30),
        "up == 1 for all targets in Prometheus",
        || async {
            let up = prom.query("up").await;
            let got: BTreeSet<String> = up
                .iter()
                .filter(|(l, v)| *v == 1.0 && l.get("job").map(String::as_str) == Some("sim"))
                .filter(|(l, _)| l.get("team").map(String::as_str) == Some("infra"))
                .filter_map(|(l, _)| l.get("instance").cloned())
                .collect();
            if got == want_instances {
                Ok(())
            } else {
                Err(format!("up: {up:?}"))
            }
        },
    )
    .await;

    // Every simulated series, with its exact labels and value.
    for (i, addr) in sim.addresses().iter().enumerate() {
        let q = format!("{{instance=\"{addr}\", __name__=~\"sim_.*\"}}");
        let got = prom.query(&q).await;
        let mut got: Vec<(BTreeMap<String, String>, f64)> = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let base = [
            ("instance", addr.as_str()),
            ("job", "sim"),
            ("team", "infra"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut l: Vec<(&str, &str)> = base.to_vec();
            l.extend_from_slice(extra);
            labels(&l)
        };
        let idx = i.to_string();
        let mut want = vec![
            (
                with(&[("__name__", "sim_requests_total"), ("path", "/a")]),
                100.0 * (i as f64 + 1.0),
            ),
            (
                with(&[("__name__", "sim_requests_total"), ("path", "/b")]),
                i as f64,
            ),
            (
                with(&[("__name__", "sim_target_info"), ("index", &idx)]),
                1.0,
            ),
            (
                with(&[("__name__", "sim_temperature_celsius"), ("sensor", "s1")]),
                20.0 + i as f64 / 2.0,
            ),
        ];
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want, "series of target {i} ({addr}) in Prometheus");
    }

    // The recording receiver saw spec-conformant requests.
    recorder.assert_no_violations();
    let h = recorder.last_headers().expect("requests received");
    assert_eq!(h.get("content-encoding").unwrap(), "snappy");
    assert_eq!(h.get("content-type").unwrap(), "application/x-protobuf");
    assert_eq!(h.get("x-prometheus-remote-write-version").unwrap(), "0.1.0");
    assert!(
        h.get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("promshard/")
    );
    assert!(
        recorder.duplicates().is_empty(),
        "duplicates: {:?}",
        recorder.duplicates()
    );

    // Exactly one worker scrapes each target: two owners would scrape in the same slot.
    for t in sim.targets() {
        let times: Vec<i64> = t.scrapes().iter().map(|s| s.at_millis()).collect();
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= 500,
                "target {} scraped twice within {} ms",
                t.address(),
                w[1] - w[0]
            );
        }
    }

    // Kill -9 one worker: its targets move to the other, then get scraped and written again.
    let moved: Vec<String> = owned
        .iter()
        .filter(|(_, w)| *w == "w1")
        .map(|(a, _)| a.clone())
        .collect();
    assert!(!moved.is_empty());
    let killed_at = SystemTime::now();
    w1.kill().await;
    let killed_ms = killed_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Bounded: grace (2s) + one placement round + one interval, with slack for a busy machine.
    eventually(
        Duration::from_secs(20),
        "w1's targets owned by w2",
        || async {
            let o = owners(&http).await?;
            if o.len() == TARGETS && o.values().all(|w| w == "w2") {
                Ok(())
            } else {
                Err(format!("{o:?}"))
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "fresh up samples for w1's former targets",
        || async {
            for addr in &moved {
                let series = recorder.find("up", &[("instance", addr)]);
                let fresh = series
                    .iter()
                    .flat_map(|(_, s)| s)
                    .any(|(ts, v)| *ts > killed_ms && *v == 1.0);
                if !fresh {
                    return Err(format!("no up=1 after the kill for {addr}"));
                }
            }
            Ok(())
        },
    )
    .await;
    recorder.assert_no_violations();
}
