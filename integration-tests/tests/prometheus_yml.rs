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
