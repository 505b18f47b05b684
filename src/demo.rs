//! `promshard demo`: the whole system on loopback, for a first look.
//!
//! Starts simulated targets and (unless `--remote-write` is given) a recording remote-write
//! receiver in this process, then a master and two workers as child processes of this same
//! binary — real processes, so `kill -9` on a worker shows its targets moving. Prints a live
//! summary until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WORKERS: usize = 2;

struct Proc {
    name: String,
    child: Child,
    addrs: BTreeMap<String, SocketAddr>,
}

/// Starts this binary with `args`, logs to `log`, and waits for its `listening` line.
async fn spawn(name: &str, args: &[String], log: &Path) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("locating the promshard binary")?;
    let log_file = std::fs::File::create(log)?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .with_context(|| format!("{name} did not start in 30s; see {}", log.display()))??
        .with_context(|| format!("{name} exited; see {}", log.display()))?;
    let Some(rest) = line.strip_prefix("listening ") else {
        bail!("{name}: unexpected first line {line:?}");
    };
    let mut addrs = BTreeMap::new();
    for kv in rest.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            addrs.insert(k.to_string(), v.parse()?);
        }
    }
    Ok(Proc {
        name: name.to_string(),
        child,
        addrs,
    })
}

pub async fn run(
    remote_write: Option<String>,
    targets: usize,
    duration: Option<Duration>,
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("promshard-demo-")
        .tempdir()?;
    let sim = TargetSimulator::start(targets).await;
    let receiver = match remote_write {
        Some(_) => None,
        None => Some(RecordingReceiver::start().await),
    };
    let rw_url = match (&remote_write, &receiver) {
        (Some(u), _) => u.clone(),
        (None, Some(r)) => r.url(),
        (None, None) => unreachable!("one of them is set"),
    };
    let targets_yaml: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 5s\n  external_labels: {{demo: promshard}}\n\
         scrape_configs:\n  - job_name: simulated\n    static_configs:\n      - targets: [{}]\n        labels: {{env: demo}}\n\
         remote_write:\n  - url: {rw_url}\n    queue_config: {{batch_send_deadline: 1s}}\n",
        targets_yaml.join(", ")
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config)?;

    let master = spawn(
        "master",
        &[
            "master".into(),
            "--config".into(),
            config_path.display().to_string(),
            "--listen-grpc".into(),
            "127.0.0.1:0".into(),
            "--listen-http".into(),
            "127.0.0.1:0".into(),
            "--worker-grace-period".into(),
            "5s".into(),
        ],
        &dir.path().join("master.log"),
    )
    .await?;
    let grpc = master.addrs.get("grpc").context("master gRPC address")?;
    let http = *master.addrs.get("http").context("master HTTP address")?;
    let mut workers = Vec::new();
    for i in 1..=WORKERS {
        let id = format!("worker-{i}");
        let w = spawn(
            &id,
            &[
                "worker".into(),
                "--master".into(),
                format!("http://{grpc}"),
                "--id".into(),
                id.clone(),
                "--listen-http".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                dir.path().join(&id).display().to_string(),
            ],
            &dir.path().join(format!("{id}.log")),
        )
        .await?;
        workers.push(w);
    }

    println!(
        "promshard demo — {targets} simulated targets, 1 master, {WORKERS} workers, scrape every 5s"
    );
    println!("  master API   http://{http}/api/v1/targets   http://{http}/api/v1/workers");
    for w in &workers {
        println!(
            "  {:<12} pid {:<7} metrics http://{}/metrics",
            w.name,
            w.child.id().unwrap_or(0),
            w.addrs
                .get("http")
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
    }
    println!("  remote write {rw_url}");
    println!("  logs         {}", dir.path().display());
    println!("  try: kill -9 <worker pid>, and watch its targets move after the 5s grace period");
    println!("Ctrl-C to stop.\n");

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut last = (
        Instant::now(),
        receiver.as_ref().map_or(0, |r| r.total_samples()),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::shutdown_signal() => break,
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        for w in workers.iter_mut() {
            if let Ok(Some(status)) = w.child.try_wait() {
                println!("  ! {} exited ({status})", w.name);
            }
        }
        let line = summary(&client, http, receiver.as_ref(), &mut last).await;
        println!("{line}");
    }
    println!("stopping");
    for mut p in workers.into_iter().chain([master]) {
        let _ = p.child.start_kill();
        let _ = p.child.wait().await;
    }
    Ok(())
}

async fn get(client: &reqwest::Client, url: String) -> Option<Value> {
    let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    v.get("data").cloned()
}

async fn summary(
    client: &reqwest::Client,
    http: SocketAddr,
    receiver: Option<&RecordingReceiver>,
    last: &mut (Instant, u64),
) -> String {
    let mut out = String::new();
    match get(client, format!("http://{http}/api/v1/workers")).await {
        Some(Value::Array(ws)) => {
            let parts: Vec<String> = ws
                .iter()
                .map(|w| {
                    format!(
                        "{}{}={}",
                        w["id"].as_str().unwrap_or("?"),
                        if w["connected"].as_bool().unwrap_or(false) {
                            ""
                        } else {
                            "(down)"
                        },
                        w["targets"]
                    )
                })
                .collect();
            out.push_str(&format!("workers[{}] ", parts.join(" ")));
        }
        _ => out.push_str("master unreachable "),
    }
    if let Some(data) = get(client, format!("http://{http}/api/v1/targets?state=active")).await {
        let mut health: BTreeMap<String, usize> = BTreeMap::new();
        for t in data["activeTargets"].as_array().into_iter().flatten() {
            *health
                .entry(t["health"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        let h: Vec<String> = health.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("targets[{}] ", h.join(" ")));
    }
    if let Some(r) = receiver {
        let total = r.total_samples();
        let rate = (total - last.1) as f64 / last.0.elapsed().as_secs_f64().max(0.001);
        *last = (Instant::now(), total);
        out.push_str(&format!(
            "received[{total} samples, {rate:.0}/s, {} series]",
            r.series().len()
        ));
    }
    out
}
