//! Shared set-up for the `remote_write_*` tests: a master, one worker scraping simulated
//! targets every second, remote-writing to a [`RecordingReceiver`], and helpers that read the
//! worker's self-metrics and match scrapes the targets served against samples received.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;

/// Every scrape of a simulated target yields its 4 series plus the 5 report series (`up`,
/// `scrape_duration_seconds`, ...).
pub(crate) const SAMPLES_PER_SCRAPE: usize = 9;

pub(crate) struct Cluster {
    pub(crate) sim: TargetSimulator,
    pub(crate) receiver: RecordingReceiver,
    pub(crate) master: Process,
    pub(crate) worker: Process,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) worker_args: Vec<String>,
}

/// `remote_write` YAML for the receiver, with `queue_yaml` as its `queue_config` flow map
/// (e.g. `batch_send_deadline: 200ms`) and `extra` further keys at endpoint level.
pub(crate) fn remote_write_yaml(url: &str, queue_yaml: &str, extra: &str) -> String {
    format!(
        "remote_write:\n  - url: {url}\n    name: rec\n    queue_config: {{{queue_yaml}}}\n{extra}"
    )
}

impl Cluster {
    /// Starts `targets` simulated targets, a master whose config scrapes them every second and
    /// remote-writes to a recording receiver (endpoint `rec`, `queue_config: {queue}`, `extra`
    /// endpoint keys), and one worker with `worker_args`.
    pub(crate) async fn start(
        targets: usize,
        queue: &str,
        extra: &str,
        worker_args: &[&str],
    ) -> Cluster {
        let sim = TargetSimulator::start(targets).await;
        let receiver = RecordingReceiver::start().await;
        let rw = remote_write_yaml(&receiver.url(), queue, extra);
        Cluster::start_with(sim, receiver, &rw, worker_args).await
    }

    pub(crate) async fn start_with(
        sim: TargetSimulator,
        receiver: RecordingReceiver,
        remote_write: &str,
        worker_args: &[&str],
    ) -> Cluster {
        Cluster::start_full(sim, receiver, "", remote_write, worker_args).await
    }

    /// [`Cluster::start_with`] with extra `global:` lines (indented), e.g. external labels.
    pub(crate) async fn start_full(
        sim: TargetSimulator,
        receiver: RecordingReceiver,
        global: &str,
        remote_write: &str,
        worker_args: &[&str],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n{global}\
             scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n\
             {remote_write}",
            targets.join(", "),
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
        let worker_args: Vec<String> = worker_args.iter().map(|s| s.to_string()).collect();
        let worker = spawn_worker(&master, dir.path(), &worker_args).await;
        Cluster {
            sim,
            receiver,
            master,
            worker,
            dir,
            worker_args,
        }
    }

    /// Kills the worker with SIGKILL and starts it again with the same id and data dir.
    pub(crate) async fn crash_and_restart_worker(&mut self) {
        self.worker.kill().await;
        self.worker = spawn_worker(&self.master, self.dir.path(), &self.worker_args).await;
    }

    pub(crate) fn wal_dir(&self) -> PathBuf {
        self.dir.path().join("w1").join("wal").join("rec")
    }

    /// Waits until every target's `up` has reached the receiver.
    pub(crate) async fn wait_for_first_samples(&self) {
        let n = self.sim.len();
        eventually(
            Duration::from_secs(30),
            "up for every target at the receiver",
            || async {
                let up = self.receiver.find::<&str>("up", &[]);
                if up.len() == n && up.iter().all(|(_, s)| !s.is_empty()) {
                    Ok(())
                } else {
                    Err(format!("{} of {n} targets", up.len()))
                }
            },
        )
        .await;
    }

    /// A counter or gauge from the worker's `/metrics` for the `rec` endpoint (0 if absent).
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        worker_metric(&self.worker, name).await.unwrap_or(0.0)
    }

    /// Up samples of the target at `addr`, `(timestamp, value)`.
    pub(crate) fn up_of(&self, addr: &str) -> Vec<(i64, f64)> {
        self.receiver
            .find("up", &[("instance", addr)])
            .into_iter()
            .flat_map(|(_, s)| s)
            .collect()
    }

    /// Waits until every target has delivered a complete scrape (all its series) taken after
    /// `after_ms`. Because a series always goes through the same shard and shards send in WAL
    /// order, everything appended before such a scrape is then delivered or dropped.
    pub(crate) async fn wait_until_delivered_past(&self, after_ms: i64, deadline: Duration) {
        eventually(
            deadline,
            "a complete scrape after the mark from every target",
            || async {
                for addr in self.sim.addresses() {
                    let all: Vec<_> = self
                        .receiver
                        .series()
                        .into_iter()
                        .filter(|l| l.get("instance").map(String::as_str) == Some(addr.as_str()))
                        .collect();
                    let Some(up_ts) = self
                        .up_of(&addr)
                        .iter()
                        .map(|(t, _)| *t)
                        .find(|t| *t > after_ms)
                    else {
                        return Err(format!("{addr}: no up sample after {after_ms}"));
                    };
                    for l in &all {
                        if !self.receiver.samples(l).iter().any(|(t, _)| *t == up_ts) {
                            return Err(format!("{addr}: {l:?} lacks the scrape at {up_ts}"));
                        }
                    }
                }
                Ok(())
            },
        )
        .await;
    }
}

async fn spawn_worker(master: &Process, dir: &Path, extra: &[String]) -> Process {
    let data = dir.join("w1").display().to_string();
    let grpc = master.url("grpc");
    let mut args: Vec<&str> = vec![
        "worker",
        "--master",
        &grpc,
        "--id",
        "w1",
        "--listen-http",
        "127.0.0.1:0",
        "--data-dir",
        &data,
    ];
    args.extend(extra.iter().map(String::as_str));
    Process::spawn("w1", &args).await
}

/// The value of `name{remote_name="rec",...}` on the worker's `/metrics`.
pub(crate) async fn worker_metric(worker: &Process, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{}/metrics", worker.url("http")))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| !l.contains("remote_name=") || l.contains("remote_name=\"rec\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .next()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Pairs each scrape the target served (arrival time, ms) with the `up` sample of that scrape,
/// whose timestamp is when the worker started it: the newest `up` at or before the arrival
/// (plus clock slack) and less than half an interval before it.
pub(crate) fn match_scrapes(served: &[i64], up: &[(i64, f64)]) -> Vec<Option<i64>> {
    const SLACK_MS: i64 = 5;
    const HALF_INTERVAL_MS: i64 = 500;
    served
        .iter()
        .map(|&at| {
            up.iter()
                .map(|(t, _)| *t)
                .filter(|t| *t <= at + SLACK_MS && *t > at - HALF_INTERVAL_MS)
                .max()
        })
        .collect()
}

/// Total bytes of the files in `dir` (0 if it does not exist).
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
