//! The binary's command line: `check config` and the master both reject an invalid file with a
//! message naming the job and the field, and exit 1.

use std::process::Command;

fn promshard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_promshard"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const BAD: &str =
    "scrape_configs:\n  - job_name: node\n    scrape_interval: 10s\n    scrape_timeout: 20s\n";

#[test]
fn check_config_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "ok.yml",
        "global: {scrape_interval: 15s}\nscrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("SUCCESS:") && stdout.contains("1 scrape configs"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_job_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "bad.yml", BAD);
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"scrape_configs[0] (job "node").scrape_timeout: scrape_timeout 20s greater than scrape_interval 10s"#
        ),
        "{stderr}"
    );

    let f = write(
        &dir,
        "typo.yml",
        "scrape_configs: [{job_name: api, metric_path: /m}]\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"scrape_configs[0] (job "api").metric_path: unknown field, expected one of `job_name`"#
        ),
        "{stderr}"
    );
}

#[test]
fn check_config_accepts_server_sections_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "server.yml",
        "global: {evaluation_interval: 15s}\nrule_files: [a.rules]\nalerting: {alertmanagers: [{static_configs: [{targets: ['am:9093']}]}]}\nstorage: {tsdb: {retention: {time: 15d}}}\nscrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for section in [
        "global.evaluation_interval",
        "rule_files",
        "alerting",
        "storage",
    ] {
        assert!(stderr.contains(section), "{section}: {stderr}");
    }
    assert!(stderr.starts_with("WARNING: ignored"), "{stderr}");
}

/// A field selector on a field the API server does not support for the role loads (Prometheus
/// loads it too) with a warning naming where it is and what is selectable; a supported one
/// loads silently.
#[test]
fn check_config_warns_about_a_field_selector_that_selects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "sel.yml",
        "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n        selectors:\n          - {role: pod, field: 'metadata.status=Running'}\n  - job_name: ok\n    kubernetes_sd_configs:\n      - role: node\n        selectors:\n          - {role: node, field: 'spec.unschedulable=false'}\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "WARNING: scrape_configs[0] (job \"k\").kubernetes_sd_configs[0].selectors[0].field: \"metadata.status\" is not a selectable field of role pod"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("spec.nodeName"), "{stderr}");
}

#[test]
fn check_config_reports_a_missing_file() {
    let out = promshard()
        .args(["check", "config", "/nonexistent/prometheus.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/prometheus.yml"));
}

#[test]
fn master_refuses_to_start_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "bad.yml", BAD);
    let out = promshard()
        .args([
            "master",
            "--config",
            &f,
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "it must fail before listening");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"(job "node").scrape_timeout: scrape_timeout 20s"#),
        "{stderr}"
    );
}

#[test]
fn check_config_validates_the_prometheus_cr_block() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "cr.yml",
        "prometheus_cr:\n  enabled: true\n  service_monitor_selector: {matchLabels: {release: kps}}\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = write(
        &dir,
        "bad-cr.yml",
        "prometheus_cr:\n  enabled: true\n  pod_monitor_selector: {matchExpressions: [{key: app, operator: Like, values: [a]}]}\n",
    );
    let out = promshard().args(["check", "config", &f]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"prometheus_cr.pod_monitor_selector: matchExpressions key "app": unknown operator "Like""#
        ),
        "{stderr}"
    );
}
