//! prometheus.yml files as people run them, end to end with real processes: server-only
//! sections accepted with a warning and no effect, `external_labels` from the environment,
//! the targets API's discovered labels, `target_limit` and `keep_dropped_targets`.

use std::path::Path;
use std::time::Duration;

use promshard_integration_tests::cluster::{api, start_master, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const ADMIN: &str = "admin-token-16";

/// The master's warning about ignored settings (see `config_store::warn_ignored`).
const IGNORED_WARNING: &str = "settings only a Prometheus server uses; promshard ignores them";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn warnings(master: &Process) -> Vec<String> {
    master
        .log_contents()
        .lines()
        .filter(|l| l.contains(IGNORED_WARNING))
        .map(str::to_string)
        .collect()
}

async fn reload(http: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{http}/-/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.status());
    resp.json().await.unwrap()
}

/// `up` samples of a target at the receiver.
fn ups(receiver: &RecordingReceiver, instance: &str) -> usize {
    receiver
        .find("up", &[("instance", instance)])
        .iter()
        .map(|(_, s)| s.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_sections_are_warned_listed_and_change_nothing() {
    let sim = TargetSimulator::start(1).await;
    let receiver = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sim\n    static_configs: [{{targets: ['{}']}}]\n\
         remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        sim.target(0).address(),
        receiver.url(),
    );
    let with_server_sections = format!(
        "global:\n  evaluation_interval: 15s\n{base}\
         rule_files: ['rules/*.yml']\n\
         alerting:\n  alertmanagers: [{{static_configs: [{{targets: ['am:9093']}}]}}]\n\
         storage:\n  tsdb: {{retention: {{time: 15d}}}}\n"
    );
    let cfg = write(dir.path(), "prometheus.yml", &with_server_sections);
    let token = write(dir.path(), "admin.token", ADMIN);
    let master = start_master(&cfg, &["--web.admin-token-file", token.to_str().unwrap()]).await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    // One warning at startup, naming each ignored setting.
    let w = eventually(WAIT, "the startup warning", || async {
        let w = warnings(&master);
        (!w.is_empty())
            .then_some(w)
            .ok_or("no warning yet".to_string())
    })
    .await;
    assert_eq!(w.len(), 1, "{w:?}");
    for name in [
        "global.evaluation_interval",
        "rule_files",
        "alerting",
        "storage",
    ] {
        assert!(w[0].contains(name), "{name} missing from {}", w[0]);
    }

    // Listed in the status API, in document order; nothing of them in the running config.
    let status = api(&format!("{http}/api/v1/status/config")).await.unwrap();
    assert_eq!(
        status["ignored"],
        serde_json::json!([
            "global.evaluation_interval",
            "rule_files",
            "alerting",
            "storage"
        ])
    );
    let yaml = status["yaml"].as_str().unwrap();
    for section in ["alerting", "rule_files", "storage", "evaluation_interval"] {
        assert!(!yaml.contains(section), "{section} in {yaml}");
    }

    // No effect: the target is scraped and its samples arrive as without them.
    let instance = sim.target(0).address();
    eventually(WAIT, "samples from the target", || async {
        (ups(&receiver, &instance) >= 2)
            .then_some(())
            .ok_or("no samples yet".to_string())
    })
    .await;

    // A reload warns again, about what the new file has.
    let other = format!(
        "global:\n{base}tracing: {{endpoint: 'otel:4317'}}\notlp: {{promote_resource_attributes: [service.name]}}\n"
    );
    std::fs::write(&cfg, other).unwrap();
    reload(&http).await;
    let w = eventually(WAIT, "the reload warning", || async {
        let w = warnings(&master);
        (w.len() == 2)
            .then_some(w)
            .ok_or("one warning so far".to_string())
    })
    .await;
    assert!(
        w[1].contains("tracing") && w[1].contains("otlp") && !w[1].contains("alerting"),
        "{}",
        w[1]
    );
    let status = api(&format!("{http}/api/v1/status/config")).await.unwrap();
    assert_eq!(status["ignored"], serde_json::json!(["tracing", "otlp"]));

    // Every reload warns, even of an unchanged file.
    reload(&http).await;
    eventually(WAIT, "a third warning", || async {
        (warnings(&master).len() == 3)
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await;
    let before = ups(&receiver, &instance);
    eventually(WAIT, "scraping goes on", || async {
        (ups(&receiver, &instance) > before)
            .then_some(())
            .ok_or("no new samples".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_labels_are_expanded_from_the_masters_environment() {
    let sim = TargetSimulator::start(1).await;
    let receiver = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    cluster: ${{CLUSTER}}\n    region: eu-$REGION\n    literal: a$$b\n    unset: ${{PROMSHARD_TEST_UNSET}}\n\
         scrape_configs:\n  - job_name: sim\n    static_configs: [{{targets: ['{}']}}]\n\
         remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        sim.target(0).address(),
        receiver.url(),
    );
    let cfg = write(dir.path(), "prometheus.yml", &text);
    let args = [
        "master",
        "--config",
        cfg.to_str().unwrap(),
        "--listen-grpc",
        "127.0.0.1:0",
        "--listen-http",
        "127.0.0.1:0",
    ];
    let master = Process::spawn_with_env(
        "master",
        &args,
        &[("CLUSTER", "prod-7"), ("REGION", "west")],
    )
    .await;
    // The worker's own environment does not count: every worker sends the master's values.
    let data = dir.path().join("w1").display().to_string();
    let _worker = Process::spawn_with_env(
        "w1",
        &[
            "worker",
            "--master",
            &master.url("grpc"),
            "--id",
            "w1",
            "--listen-http",
            "127.0.0.1:0",
            "--data-dir",
            &data,
        ],
        &[("CLUSTER", "from-the-worker"), ("REGION", "east")],
    )
    .await;
    let instance = sim.target(0).address();
    let series = eventually(WAIT, "up with the external labels", || async {
        let found = receiver.find("up", &[("instance", instance.as_str())]);
        found
            .into_iter()
            .next()
            .map(|(labels, _)| labels)
            .ok_or("no up yet".to_string())
    })
    .await;
    assert_eq!(series.get("cluster").map(String::as_str), Some("prod-7"));
    assert_eq!(series.get("region").map(String::as_str), Some("eu-west"));
    assert_eq!(series.get("literal").map(String::as_str), Some("a$b"));
    // An unset variable expands to nothing, and an empty label is no label.
    assert!(!series.contains_key("unset"), "{series:?}");
    // The running config shows the expanded values.
    let status = api(&format!("{}/api/v1/status/config", master.url("http")))
        .await
        .unwrap();
    assert!(
        status["yaml"].as_str().unwrap().contains("cluster: prod-7"),
        "{status}"
    );
}

/// A job's active targets from the API: (instance, health, lastError).
async fn job_targets(http: &str, job: &str) -> Result<Vec<(String, String, String)>, String> {
    let data = api(&format!(
        "{http}/api/v1/targets?state=active&scrapePool={job}"
    ))
    .await?;
    let mut out: Vec<_> = data["activeTargets"]
        .as_array()
        .ok_or("no activeTargets")?
        .iter()
        .map(|t| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&t["labels"]["instance"]),
                s(&t["health"]),
                s(&t["lastError"]),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limit_fails_the_whole_job_until_it_fits() {
    let sim = TargetSimulator::start(3).await;
    let receiver = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let text = |limit: u32| {
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: limited\n    target_limit: {limit}\n    static_configs: [{{targets: [{}]}}]\n\
             remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
            targets.join(", "),
            receiver.url(),
        )
    };
    let cfg = write(dir.path(), "prometheus.yml", &text(2));
    let token = write(dir.path(), "admin.token", ADMIN);
    let master = start_master(&cfg, &["--web.admin-token-file", token.to_str().unwrap()]).await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    // Three targets over a limit of two: each is down with Prometheus's error, up = 0 is
    // written for each, and none is asked for its metrics.
    let want_error = "target_limit exceeded (number of targets: 3, limit: 2)";
    eventually(WAIT, "every target down with the limit error", || async {
        let t = job_targets(&http, "limited").await?;
        let ok = t.len() == 3 && t.iter().all(|(_, h, e)| h == "down" && e == want_error);
        ok.then_some(()).ok_or(format!("{t:?}"))
    })
    .await;
    eventually(WAIT, "up = 0 for each target", || async {
        let zeros = sim
            .addresses()
            .iter()
            .filter(|a| {
                receiver
                    .find("up", &[("instance", a.as_str()), ("job", "limited")])
                    .iter()
                    .any(|(_, s)| s.iter().any(|(_, v)| *v == 0.0))
            })
            .count();
        (zeros == 3).then_some(()).ok_or(format!("{zeros} of 3"))
    })
    .await;
    assert_eq!(sim.total_scrapes(), 0, "an over-limit job scrapes nothing");

    // Raised to fit: every target is scraped and up.
    std::fs::write(&cfg, text(3)).unwrap();
    reload(&http).await;
    eventually(WAIT, "every target up", || async {
        let t = job_targets(&http, "limited").await?;
        let ok = t.len() == 3 && t.iter().all(|(_, h, e)| h == "up" && e.is_empty());
        ok.then_some(()).ok_or(format!("{t:?}"))
    })
    .await;
    assert!(sim.total_scrapes() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_labels_and_keep_dropped_targets_in_the_targets_api() {
    let sim = TargetSimulator::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let kept = sim.target(0).address();
    let text = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: probe\n    params: {{module: [http_2xx]}}\n    keep_dropped_targets: 1\n\
         \x20   static_configs: [{{targets: ['{kept}', 'gone-1:9', 'gone-2:9'], labels: {{team: a}}}}]\n\
         \x20   relabel_configs: [{{source_labels: [__address__], regex: 'gone-.*', action: drop}}]\n"
    );
    let cfg = write(dir.path(), "prometheus.yml", &text);
    let master = start_master(&cfg, &[]).await;
    let http = master.url("http");
    let data = eventually(WAIT, "the job's targets", || async {
        let d = api(&format!("{http}/api/v1/targets")).await?;
        (d["activeTargets"].as_array().is_some_and(|a| a.len() == 1))
            .then_some(d.clone())
            .ok_or(format!("{d}"))
    })
    .await;
    // Prometheus's discoveredLabels: what discovery found plus the job's defaults and params.
    assert_eq!(
        data["activeTargets"][0]["discoveredLabels"],
        serde_json::json!({
            "__address__": kept,
            "__metrics_path__": "/metrics",
            "__param_module": "http_2xx",
            "__scheme__": "http",
            "__scrape_interval__": "2s",
            "__scrape_timeout__": "1s",
            "job": "probe",
            "team": "a",
        })
    );
    // Two dropped, one kept, both counted.
    let dropped = data["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{data}");
    assert_eq!(dropped[0]["discoveredLabels"]["__address__"], "gone-1:9");
    assert_eq!(dropped[0]["discoveredLabels"]["job"], "probe");
    assert_eq!(data["droppedTargetCounts"], serde_json::json!({"probe": 2}));
}
