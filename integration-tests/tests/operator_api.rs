//! The operator surface end to end, with real processes: config changes through the master's
//! API (PUT, If-Match, reload, history), bearer tokens on the HTTP API, explain, and a secured
//! control plane (mTLS and a shared token) that keeps unknown workers out.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::simulator::TargetSimulator;
use reqwest::StatusCode;
use serde_json::Value;

const ADMIN: &str = "admin-token-7";
const READ: &str = "read-token-7";
const WAIT: Duration = Duration::from_secs(30);

fn config(targets: &[String], extra: &str) -> String {
    let list: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n{extra}",
        list.join(", ")
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

async fn start_master(dir: &Path, config_text: &str, extra: &[&str]) -> (Process, PathBuf) {
    let cfg = write(dir, "prometheus.yml", config_text);
    let mut args = vec![
        "master",
        "--config",
        cfg.to_str().unwrap(),
        "--listen-grpc",
        "127.0.0.1:0",
        "--listen-http",
        "127.0.0.1:0",
        "--worker-grace-period",
        "2s",
    ];
    args.extend_from_slice(extra);
    (Process::spawn("master", &args).await, cfg)
}

async fn start_worker(id: &str, master: &str, dir: &Path, extra: &[&str]) -> Process {
    let data = dir.join(format!("data-{id}")).display().to_string();
    let mut args = vec![
        "worker",
        "--master",
        master,
        "--id",
        id,
        "--listen-http",
        "127.0.0.1:0",
        "--data-dir",
        &data,
    ];
    args.extend_from_slice(extra);
    Process::spawn(id, &args).await
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET with an optional bearer token; returns status and body.
async fn get(url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn put_config(
    http: &str,
    body: &str,
    token: Option<&str>,
    if_match: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = client()
        .put(format!("{http}/api/v1/config"))
        .header("content-type", "application/yaml")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(m) = if_match {
        req = req.header("if-match", m);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (status, etag, resp.json().await.unwrap_or(Value::Null))
}

async fn data(url: &str) -> Result<Value, String> {
    let (status, body) = get(url, None).await;
    if status != StatusCode::OK || body["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["data"].clone())
}

/// Addresses of the active targets, and their owners.
async fn active(http: &str) -> Result<Vec<(String, String)>, String> {
    let d = data(&format!("{http}/api/v1/targets?state=active")).await?;
    let mut out: Vec<(String, String)> = d["activeTargets"]
        .as_array()
        .ok_or("no activeTargets")?
        .iter()
        .map(|t| {
            (
                t["discoveredLabels"]["__address__"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                t["worker"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

/// (sentGeneration, ackedGeneration) of a connected worker.
async fn worker_generations(http: &str, id: &str) -> Result<(u64, u64), String> {
    let d = data(&format!("{http}/api/v1/workers")).await?;
    let w = d
        .as_array()
        .and_then(|a| a.iter().find(|w| w["id"] == id && w["connected"] == true))
        .ok_or_else(|| format!("{id} not connected: {d}"))?;
    Ok((
        w["sentGeneration"].as_u64().unwrap_or(0),
        w["ackedGeneration"].as_u64().unwrap_or(0),
    ))
}

/// Waits until `id` is connected, owns `addrs` and has acked what it was sent.
async fn wait_settled(http: &str, id: &str, addrs: &[String]) {
    let want: Vec<(String, String)> = addrs.iter().map(|a| (a.clone(), id.to_string())).collect();
    eventually(WAIT, &format!("{id} owning {addrs:?}, acked"), || async {
        let got = active(http).await?;
        let (sent, acked) = worker_generations(http, id).await?;
        if got != want || sent == 0 || sent != acked {
            return Err(format!("targets {got:?}, generations {sent}/{acked}"));
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_put_changes_what_workers_scrape_and_is_persisted() {
    let sim = TargetSimulator::start(2).await;
    let (t0, t1) = (sim.target(0), sim.target(1));
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "admin", &format!("{ADMIN}\n"));
    let (master, cfg_path) = start_master(
        dir.path(),
        &config(&[t0.address()], ""),
        &["--web.admin-token-file", token.to_str().unwrap()],
    )
    .await;
    let http = master.url("http");
    let _w1 = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;
    wait_settled(&http, "w1", &[t0.address()]).await;
    eventually(WAIT, "t0 scraped", || async {
        (t0.scrape_count() > 0)
            .then_some(())
            .ok_or("no scrape".into())
    })
    .await;

    let (status, body) = get(&format!("{http}/api/v1/status/config"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["version"], 1);
    assert!(
        body["data"]["yaml"]
            .as_str()
            .unwrap()
            .contains(&t0.address())
    );

    // The new config moves the job to t1 and adds a URL parameter, so the worker must have the
    // new target *and* the new job settings.
    let new = config(&[t1.address()], "    params:\n      probe: ['v2']\n");
    let (sent_before, _) = worker_generations(&http, "w1").await.unwrap();
    let (status, etag, body) = put_config(&http, &new, Some(ADMIN), Some("\"1\"")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(body["data"]["version"], 2);
    assert_eq!(body["data"]["source"], "api");
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), new);

    let put_at = SystemTime::now();
    eventually(WAIT, "w1 scraping t1 with ?probe=v2", || async {
        match t1.last_scrape() {
            Some(r) if r.at > put_at && r.query.as_deref() == Some("probe=v2") => Ok(()),
            other => Err(format!("last scrape of t1: {other:?}")),
        }
    })
    .await;
    wait_settled(&http, "w1", &[t1.address()]).await;
    let (sent_after, _) = worker_generations(&http, "w1").await.unwrap();
    assert!(sent_after > sent_before, "a new assignment was pushed");
    // t0 left the worker's assignment: while t1 is scraped three more times, t0 gets at most
    // the one scrape that may have been in flight when the assignment changed.
    let t0_count = t0.scrape_count();
    let t1_count = t1.scrape_count();
    eventually(WAIT, "three more scrapes of t1", || async {
        (t1.scrape_count() >= t1_count + 3)
            .then_some(())
            .ok_or(format!("{} scrapes", t1.scrape_count()))
    })
    .await;
    assert!(t0.scrape_count() <= t0_count + 1, "t0 still scraped");

    // Reload: the file edited by hand and reloaded through the API.
    let back = config(&[t0.address()], "");
    std::fs::write(&cfg_path, &back).unwrap();
    let resp = client()
        .post(format!("{http}/-/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    wait_settled(&http, "w1", &[t0.address()]).await;

    let history = data(&format!("{http}/api/v1/config/history"))
        .await
        .unwrap();
    let got: Vec<(u64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["version"].as_u64().unwrap(),
                h["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(3, "reload"), (2, "api"), (1, "file")]);
    assert!(history[0]["time"].as_str().unwrap().ends_with('Z'));

    // SIGHUP reloads the file too, as it does for Prometheus.
    std::fs::write(&cfg_path, config(&[t1.address()], "")).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &master.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_settled(&http, "w1", &[t1.address()]).await;
    let history = data(&format!("{http}/api/v1/config/history"))
        .await
        .unwrap();
    assert_eq!(history[0]["version"], 4);
    assert_eq!(history[0]["source"], "reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_put_is_refused_naming_the_field_and_changes_nothing() {
    let sim = TargetSimulator::start(1).await;
    let t0 = sim.target(0);
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "admin", ADMIN);
    let original = config(&[t0.address()], "");
    let (master, cfg_path) = start_master(
        dir.path(),
        &original,
        &["--web.admin-token-file", token.to_str().unwrap()],
    )
    .await;
    let http = master.url("http");
    let _w1 = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;
    wait_settled(&http, "w1", &[t0.address()]).await;
    let generations = worker_generations(&http, "w1").await.unwrap();

    let bad = config(&[t0.address()], "    scrape_interval: 0s\n");
    let (status, _, body) = put_config(&http, &bad, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("scrape_configs[0] (job \"sim\")") && msg.contains("scrape_interval"),
        "the error names the job and the field: {msg}"
    );
    let not_yaml = "scrape_configs: [\n";
    let (status, _, _) = put_config(&http, not_yaml, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing changed: the file, the running version, what the worker was sent, the targets.
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), original);
    let cfg = data(&format!("{http}/api/v1/status/config")).await.unwrap();
    assert_eq!(cfg["version"], 1);
    assert_eq!(worker_generations(&http, "w1").await.unwrap(), generations);
    assert_eq!(
        active(&http).await.unwrap(),
        vec![(t0.address(), "w1".to_string())]
    );
    let before = t0.scrape_count();
    eventually(WAIT, "t0 still scraped", || async {
        (t0.scrape_count() > before + 1)
            .then_some(())
            .ok_or("no new scrape".into())
    })
    .await;
    let history = data(&format!("{http}/api/v1/config/history"))
        .await
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_are_serialized_by_if_match() {
    let sim = TargetSimulator::start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "admin", ADMIN);
    let (master, cfg_path) = start_master(
        dir.path(),
        &config(&[sim.target(0).address()], ""),
        &["--web.admin-token-file", token.to_str().unwrap()],
    )
    .await;
    let http = master.url("http");
    let a = config(&[sim.target(1).address()], "");
    let b = config(&[sim.target(2).address()], "");
    // Both read version 1, both try to replace it.
    let (ra, rb) = tokio::join!(
        put_config(&http, &a, Some(ADMIN), Some("\"1\"")),
        put_config(&http, &b, Some(ADMIN), Some("\"1\"")),
    );
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{} / {}",
        ra.2,
        rb.2
    );
    let (winner, loser) = if ra.0 == StatusCode::OK {
        (&a, &rb)
    } else {
        (&b, &ra)
    };
    assert_eq!(loser.2["errorType"], "precondition_failed");
    assert_eq!(
        loser.1.as_deref(),
        Some("\"2\""),
        "the 412 tells the current version"
    );
    assert_eq!(&std::fs::read_to_string(&cfg_path).unwrap(), winner);

    // The loser retries on the version it was told, and wins.
    let retry = if winner == &a { &b } else { &a };
    let (status, etag, _) = put_config(&http, retry, Some(ADMIN), loser.1.as_deref()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag.as_deref(), Some("\"3\""));
    assert_eq!(&std::fs::read_to_string(&cfg_path).unwrap(), retry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_guard_changes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let admin = write(dir.path(), "admin", ADMIN);
    let read = write(dir.path(), "read", READ);
    let original = config(&["127.0.0.1:1".to_string()], "");
    let (master, cfg_path) = start_master(
        dir.path(),
        &original,
        &[
            "--web.admin-token-file",
            admin.to_str().unwrap(),
            "--web.read-token-file",
            read.to_str().unwrap(),
        ],
    )
    .await;
    let http = master.url("http");
    let changed = config(&["127.0.0.1:2".to_string()], "");
    for token in [None, Some("wrong"), Some(READ)] {
        let (status, _, body) = put_config(&http, &changed, token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "token {token:?}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "unauthorized");
    }
    let reload = client()
        .post(format!("{http}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), original);

    let targets = format!("{http}/api/v1/targets");
    assert_eq!(get(&targets, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&targets, Some(READ)).await.0, StatusCode::OK);
    assert_eq!(get(&targets, Some(ADMIN)).await.0, StatusCode::OK);
    // Probes and the UI's static files stay open.
    assert_eq!(
        get(&format!("{http}/-/ready"), None).await.0,
        StatusCode::OK
    );
    let ui = client().get(format!("{http}/ui/")).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    // Unknown paths and bad queries answer in the error envelope too.
    let (status, body) = get(&format!("{http}/api/v1/nope"), Some(READ)).await;
    assert_eq!(
        (status, &body["errorType"]),
        (StatusCode::NOT_FOUND, &Value::from("not_found"))
    );
    let (status, body) = get(&format!("{http}/api/v1/targets?state=bogus"), Some(READ)).await;
    assert_eq!(
        (status, &body["errorType"]),
        (StatusCode::BAD_REQUEST, &Value::from("bad_data"))
    );

    let huge = "#".repeat(17 << 20);
    let (status, _, body) = put_config(&http, &huge, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["errorType"], "bad_data");

    let (status, _, body) = put_config(&http, &changed, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Without --web.admin-token-file, changing the config over HTTP is off altogether.
    let other = tempfile::tempdir().unwrap();
    let (open_master, _) = start_master(other.path(), &original, &[]).await;
    let (status, _, body) = put_config(&open_master.url("http"), &changed, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_rule_that_dropped_a_target() {
    let sim = TargetSimulator::start(2).await;
    let (t0, t1) = (sim.target(0), sim.target(1));
    let dir = tempfile::tempdir().unwrap();
    let port1 = t1.addr().port();
    let relabel = format!(
        "    relabel_configs:\n\
         \x20     - source_labels: [__address__]\n        target_label: zone\n        replacement: z1\n\
         \x20     - source_labels: [__address__]\n        regex: '.*:{port1}'\n        action: drop\n"
    );
    let (master, _) = start_master(
        dir.path(),
        &config(&[t0.address(), t1.address()], &relabel),
        &[],
    )
    .await;
    let http = master.url("http");
    let _w1 = start_worker(
        "w1",
        &master.url("grpc"),
        dir.path(),
        &["--max-series", "100000"],
    )
    .await;
    wait_settled(&http, "w1", &[t0.address()]).await;
    let workers = data(&format!("{http}/api/v1/workers")).await.unwrap();
    assert_eq!(workers[0]["capacitySeries"], 100000);

    let url = format!(
        "{http}/api/v1/targets/explain?job=sim&instance={}",
        t1.address()
    );
    let out = data(&url).await.unwrap();
    let e = &out[0];
    assert_eq!(e["state"], "dropped");
    assert_eq!(e["relabel"]["result"], "dropped");
    assert_eq!(e["relabel"]["droppedBy"]["index"], 1);
    assert_eq!(e["relabel"]["droppedBy"]["action"], "drop");
    assert_eq!(
        e["relabel"]["droppedBy"]["rule"]["regex"],
        format!(".*:{port1}")
    );
    assert_eq!(e["relabel"]["steps"][0]["changes"]["added"]["zone"], "z1");
    assert_eq!(e["discoveredLabels"]["__address__"], t1.address());

    // The kept one: owner, why, and what the worker reported.
    let out = eventually(WAIT, "t0's load report", || async {
        let url = format!(
            "{http}/api/v1/targets/explain?job=sim&instance={}",
            t0.address()
        );
        let out = data(&url).await?;
        if out[0]["health"] != "up" {
            return Err(format!("{}", out[0]));
        }
        Ok(out)
    })
    .await;
    let e = &out[0];
    assert_eq!(e["state"], "active");
    assert_eq!(e["labels"]["zone"], "z1");
    assert_eq!(e["owner"]["worker"], "w1");
    assert_eq!(e["owner"]["strategy"], "bounded-rendezvous");
    assert!(e["owner"]["reason"].as_str().unwrap().contains("w1"));
    assert!(e["series"].as_u64().unwrap() > 0);
    assert_eq!(e["lastError"], "");
    let by_id = data(&format!(
        "{http}/api/v1/targets/explain?id={}",
        e["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(by_id[0]["id"], e["id"]);
    let (status, body) = get(&format!("{http}/api/v1/targets/explain?job=sim"), None).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::NOT_FOUND, &Value::from("error"))
    );
}

/// A CA, a master certificate for 127.0.0.1 and worker certificates, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "promshard test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca,
        };
        write(dir, "ca.pem", &pki.ca.pem());
        pki
    }

    /// Writes `<name>.pem` and `<name>-key.pem`, signed by this CA (or self-signed).
    fn issue(&self, name: &str, cn: &str, sans: &[&str], self_signed: bool) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = if self_signed {
            params.self_signed(&key).unwrap()
        } else {
            params.signed_by(&key, &self.ca).unwrap()
        };
        write(&self.dir, &format!("{name}.pem"), &cert.pem());
        write(&self.dir, &format!("{name}-key.pem"), &key.serialize_pem());
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

/// Connected workers' ids.
async fn connected(http: &str) -> Result<Vec<String>, String> {
    let d = data(&format!("{http}/api/v1/workers")).await?;
    let mut ids: Vec<String> = d
        .as_array()
        .ok_or("not an array")?
        .iter()
        .filter(|w| w["connected"] == true)
        .map(|w| w["id"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    Ok(ids)
}

async fn wait_log(p: &Process, needle: &str) {
    eventually(WAIT, &format!("{} to log {needle:?}", p.name()), || async {
        p.log_contents()
            .contains(needle)
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_without_the_right_certificate_cannot_register() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    pki.issue(
        "master",
        "promshard-master",
        &["127.0.0.1", "localhost"],
        false,
    );
    pki.issue("w1", "w1", &["w1.workers.test"], false);
    pki.issue("rogue", "w2", &[], true);
    let (master, _) = start_master(
        dir.path(),
        &config(&["127.0.0.1:1".to_string()], ""),
        &[
            "--grpc.tls-cert-file",
            &pki.path("master.pem"),
            "--grpc.tls-key-file",
            &pki.path("master-key.pem"),
            "--grpc.client-ca-file",
            &pki.path("ca.pem"),
        ],
    )
    .await;
    let http = master.url("http");
    let grpc = format!("https://{}", master.addr("grpc"));
    let ca = pki.path("ca.pem");
    let tls = |name: &str| {
        vec![
            "--master.ca-file".to_string(),
            ca.clone(),
            "--master.cert-file".to_string(),
            pki.path(&format!("{name}.pem")),
            "--master.key-file".to_string(),
            pki.path(&format!("{name}-key.pem")),
        ]
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let w1_args = tls("w1");
    let rogue_args = tls("rogue");
    let _w1 = start_worker("w1", &grpc, dir.path(), &args(&w1_args)).await;
    // Self-signed certificate: the TLS handshake fails.
    let w2 = start_worker("w2", &grpc, dir.path(), &args(&rogue_args)).await;
    // A valid certificate for w1, used to register as w3: refused by name.
    let w3 = start_worker("w3", &grpc, dir.path(), &args(&w1_args)).await;
    // No client certificate at all.
    let w4 = start_worker("w4", &grpc, dir.path(), &["--master.ca-file", &ca]).await;
    // Plaintext to a TLS listener.
    let w5 = start_worker("w5", &master.url("grpc"), dir.path(), &[]).await;

    eventually(WAIT, "w1 connected over mTLS", || async {
        let c = connected(&http).await?;
        (c == ["w1"]).then_some(()).ok_or(format!("{c:?}"))
    })
    .await;
    for w in [&w2, &w3, &w4, &w5] {
        wait_log(w, "control stream failed").await;
    }
    wait_log(&w3, "the client certificate names").await;
    assert_eq!(connected(&http).await.unwrap(), ["w1"]);
    let all = data(&format!("{http}/api/v1/workers")).await.unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "no trace of the refused workers: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_without_the_token_cannot_register() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "grpc-token", "grpc-secret\n");
    let wrong = write(dir.path(), "wrong-token", "guess\n");
    let (master, _) = start_master(
        dir.path(),
        &config(&["127.0.0.1:1".to_string()], ""),
        &["--grpc.token-file", token.to_str().unwrap()],
    )
    .await;
    let http = master.url("http");
    let grpc = master.url("grpc");
    let _w1 = start_worker(
        "w1",
        &grpc,
        dir.path(),
        &["--master.token-file", token.to_str().unwrap()],
    )
    .await;
    let w2 = start_worker(
        "w2",
        &grpc,
        dir.path(),
        &["--master.token-file", wrong.to_str().unwrap()],
    )
    .await;
    let w3 = start_worker("w3", &grpc, dir.path(), &[]).await;
    eventually(WAIT, "w1 connected with the token", || async {
        let c = connected(&http).await?;
        (c == ["w1"]).then_some(()).ok_or(format!("{c:?}"))
    })
    .await;
    for w in [&w2, &w3] {
        wait_log(w, "missing or wrong bearer token").await;
    }
    assert_eq!(connected(&http).await.unwrap(), ["w1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_that_drops_a_discovery_section_drops_its_targets() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "admin", ADMIN);
    let sd = write(
        dir.path(),
        "targets.json",
        r#"[{"targets": ["127.0.0.1:2"]}]"#,
    );
    let file_sd = format!(
        "    file_sd_configs:\n      - files: ['{}']\n",
        sd.display()
    );
    let (master, _) = start_master(
        dir.path(),
        &config(&["127.0.0.1:1".to_string()], &file_sd),
        &["--web.admin-token-file", token.to_str().unwrap()],
    )
    .await;
    let http = master.url("http");
    let addrs = |v: Vec<(String, String)>| v.into_iter().map(|(a, _)| a).collect::<Vec<_>>();
    eventually(WAIT, "static and file targets", || async {
        let got = addrs(active(&http).await?);
        (got == ["127.0.0.1:1", "127.0.0.1:2"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    })
    .await;
    // The same job without its static_configs: the static target must go, not linger.
    let only_file = format!(
        "scrape_configs:\n  - job_name: sim\n    scrape_interval: 1s\n    scrape_timeout: 1s\n{file_sd}"
    );
    let (status, _, body) = put_config(&http, &only_file, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(WAIT, "only the file target", || async {
        let got = addrs(active(&http).await?);
        (got == ["127.0.0.1:2"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    })
    .await;

    // A change to relabeling only keeps discovery running and relabels what it has.
    let relabeled = format!(
        "{only_file}    relabel_configs:\n      - target_label: team\n        replacement: infra\n"
    );
    let (status, _, body) = put_config(&http, &relabeled, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = data(&format!("{http}/api/v1/targets?state=active"))
        .await
        .unwrap();
    let t = &d["activeTargets"];
    assert_eq!(t.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        t[0]["labels"]["team"], "infra",
        "the PUT answers once the change is live"
    );
    assert_eq!(t[0]["discoveredLabels"]["__address__"], "127.0.0.1:2");
}
