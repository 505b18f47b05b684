//! The master's web UI in a real browser: headless Chromium (Debian's `chromium`) loads the
//! page from a running master with a worker and simulated targets, and the rendered DOM must
//! show the workers, every target with its owner and health, and the explain view of a dropped
//! target naming the rule that dropped it. Screenshots go under `target/operator-ui/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::simulator::TargetSimulator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";

async fn data(url: &str) -> Result<Value, String> {
    let v: Value = reqwest::get(url)
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{v}"));
    }
    Ok(v["data"].clone())
}

/// Runs headless Chromium on `url` with `extra` flags (`--dump-dom` or `--screenshot=...`);
/// returns stdout. Virtual time lets the page's fetches and rendering finish before the dump.
async fn chromium(profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("chromium ran longer than 60s")
        .expect("chromium starts (apt-get install chromium; scripts/test.sh does)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where screenshots go: `target/operator-ui/`, next to the build output, never in the source.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("operator-ui");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::canonicalize(&dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_shows_workers_targets_and_explain_in_chromium() {
    let sim = TargetSimulator::start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let addrs = sim.addresses();
    let dropped = &addrs[2];
    let port = sim.target(2).addr().port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: ['{}', '{}', '{dropped}']\n\
         \x20   relabel_configs:\n      - source_labels: [__address__]\n        regex: '.*:{port}'\n        action: drop\n",
        addrs[0], addrs[1]
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            cfg.to_str().unwrap(),
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
        ],
    )
    .await;
    let http = master.url("http");
    let data_dir = dir.path().join("w1").display().to_string();
    let _w1 = Process::spawn(
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
            &data_dir,
        ],
    )
    .await;
    // The page shows what the API says: wait until the API has owners and health for both.
    eventually(WAIT, "both targets up on w1", || async {
        let d = data(&format!("{http}/api/v1/targets?state=active")).await?;
        let t = d["activeTargets"].as_array().ok_or("no targets")?;
        let ok = t.len() == 2 && t.iter().all(|t| t["worker"] == "w1" && t["health"] == "up");
        ok.then_some(()).ok_or(format!("{d}"))
    })
    .await;

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &format!("{http}/ui/"), &["--dump-dom"]).await;
    assert!(
        dom.contains(r#"data-loaded="overview""#),
        "the page loaded its data: {dom}"
    );
    assert!(dom.contains(r#"<td class="worker-id">w1</td>"#), "{dom}");
    for a in &addrs[..2] {
        assert!(
            dom.contains(&format!(
                r#"data-instance="{a}" data-health="up" data-owner="w1""#
            )),
            "row for {a} with owner and health: {dom}"
        );
    }
    assert!(
        dom.contains(&format!(
            r#"data-instance="{dropped}" data-health="dropped" data-owner="""#
        )),
        "dropped target row: {dom}"
    );

    let explain = format!("{http}/ui/#/explain?job=sim&instance={dropped}");
    let dom = chromium(profile.path(), &explain, &["--dump-dom"]).await;
    assert!(dom.contains(r#"data-loaded="explain""#), "{dom}");
    assert!(
        dom.contains(
            r#"<p class="error" id="dropped-by">relabel_configs[0] (action drop) dropped the target</p>"#
        ),
        "the explain view names the dropping rule: {dom}"
    );

    let out = screenshot_dir();
    for (name, url) in [
        ("overview.png", format!("{http}/ui/")),
        ("explain-dropped.png", explain),
        ("config.png", format!("{http}/ui/#/config")),
    ] {
        let path = out.join(name);
        let _ = std::fs::remove_file(&path);
        chromium(
            profile.path(),
            &url,
            &[
                &format!("--screenshot={}", path.display()),
                "--window-size=1280,800",
            ],
        )
        .await;
        let png = std::fs::read(&path).unwrap();
        assert_eq!(
            &png[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is a PNG",
            path.display()
        );
        println!("screenshot: {}", path.display());
    }
}
