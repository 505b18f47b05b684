//! Churn benchmark: the delay from a Kubernetes watch event to the owning worker having applied
//! (and acknowledged) its new assignment, with N pods already discovered.
//!
//!     cargo build --release --bin promshard
//!     cargo bench -p promshard-integration-tests --bench churn [-- PODS WORKERS EVENTS]
//!
//! Defaults: 10,000 pods, 2 workers, 200 events. The API-server double serves the pods; a real
//! master (release binary) watches it; workers are real processes. A pod's address is a
//! loopback address with nothing listening, so scrapes fail at once and cost nothing.
//!
//! Measured per event, from the moment the double commits the change (which is when it writes
//! the watch event) to the moment the sum of the workers' `promshard_worker_targets` shows it
//! (a worker sets that gauge when it applies an assignment, right before its ack). Also printed:
//! the initial sync (master start → every pod's target applied on a worker).

use std::time::{Duration, Instant};

use promshard_integration_tests::apiserver::ApiServerDouble;
use promshard_integration_tests::cluster::{metric, start_master, start_worker};
use promshard_integration_tests::launcher::Process;
use serde_json::{Value, json};

fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": format!("ns-{}", i % 50),
            "labels": {"app": format!("app-{}", i % 100)}},
        "spec": {"nodeName": format!("node-{}", i % 100), "containers": [{"name": "c", "image": "img",
            "ports": [{"name": "metrics", "containerPort": 9, "protocol": "TCP"}]}]},
        "status": {"phase": "Running",
            "podIP": format!("127.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, 1 + i % 250),
            "hostIP": "127.0.1.1", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

async fn applied(workers: &[Process]) -> f64 {
    let mut sum = 0.0;
    for w in workers {
        sum += metric(&w.url("http"), "promshard_worker_targets")
            .await
            .unwrap_or(0.0);
    }
    sum
}

async fn wait_for(workers: &[Process], want: f64, deadline: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if applied(workers).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "workers did not reach {want} targets within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let pods: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let n_workers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let events: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);

    let api = ApiServerDouble::start().await;
    for i in 0..pods {
        api.apply(pod(i));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global: {{scrape_interval: 60s, scrape_timeout: 1s}}\n\
         scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{{role: pod, api_server: '{}'}}]\n",
        api.url()
    );
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, config).unwrap();

    let started = Instant::now();
    let master = start_master(&path, &["--placement.settle", "0s"]).await;
    let grpc = master.url("grpc");
    let mut workers = Vec::new();
    for i in 0..n_workers {
        workers.push(start_worker(&format!("w{i}"), &grpc, dir.path(), &[]).await);
    }
    wait_for(&workers, pods as f64, Duration::from_secs(600)).await;
    let initial = started.elapsed();

    let (mut add, mut del) = (Vec::new(), Vec::new());
    for e in 0..events {
        let i = pods + e;
        let t = Instant::now();
        api.apply(pod(i));
        wait_for(&workers, (pods + 1) as f64, Duration::from_secs(60)).await;
        add.push(t.elapsed());
        let t = Instant::now();
        api.delete("pods", &format!("ns-{}", i % 50), &format!("pod-{i}"));
        wait_for(&workers, pods as f64, Duration::from_secs(60)).await;
        del.push(t.elapsed());
    }
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!("churn: {pods} pods, {n_workers} workers, {events} creates and {events} deletes\n");
    println!("| | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, v) in [
        ("pod created → target applied", &mut add),
        ("pod deleted → target gone", &mut del),
    ] {
        let (p50, p99, max) = (pct(v, 0.5), pct(v, 0.99), pct(v, 1.0));
        println!("| {name} | {} | {} | {} |", ms(p50), ms(p99), ms(max));
    }
    println!(
        "\ninitial sync (master start → {pods} targets applied on {n_workers} workers): {:.2} s",
        initial.as_secs_f64()
    );
    let lists = api.count(promshard_integration_tests::apiserver::Verb::List, "pods");
    let watches = api.count(promshard_integration_tests::apiserver::Verb::Watch, "pods");
    let streaming = api
        .requests()
        .iter()
        .filter(|r| r.resource == "pods" && r.param("sendInitialEvents").as_deref() == Some("true"))
        .count();
    println!(
        "API-server requests for pods: {lists} LIST, {watches} WATCH ({streaming} of them a streaming list)"
    );
}
