//! The control plane exactly as the Helm chart configures it, with running processes: the
//! master and workers get the command lines `helm template` renders for the default values, and
//! the generated Secrets (token, TLS certificate and CA, admin token) and the ConfigMap written
//! out the way the kubelet mounts them. Only what a loopback test must change is changed: the
//! listen addresses, the worker's dial address (the rendered --master.server-name still names
//! the master's Service, which the chart's certificate must carry), its id and data directory,
//! and the mount paths (moved under a temporary directory). The master runs the chart's own
//! prometheus.yml against the API-server double, which holds one node: four kubelet targets.
//!
//! Also: the Secrets the chart generates are kept across an upgrade (`lookup`), checked by
//! rendering against the API-server double with `--dry-run=server`.

use std::path::Path;
use std::time::Duration;

use promshard_integration_tests::apiserver::ApiServerDouble;
use promshard_integration_tests::chart::{
    Chart, FULLNAME, NAMESPACE, RELEASE, flag, remove_flag, set_flag,
};
use promshard_integration_tests::cluster::metric;
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const MASTER: &str = "ps-promshard-master";
const WORKERS: &str = "ps-promshard-workers";

fn node() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
    })
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The rendered worker command line, adapted to run on loopback as worker `id`.
fn worker_args(rendered: &[String], id: &str, grpc_port: u16, dir: &Path) -> Vec<String> {
    let mut args = rendered.to_vec();
    set_flag(
        &mut args,
        "--master",
        &format!("https://127.0.0.1:{grpc_port}"),
    );
    set_flag(&mut args, "--id", id);
    set_flag(&mut args, "--listen-http", "127.0.0.1:0");
    set_flag(&mut args, "--data-dir", &dir.join(id).display().to_string());
    args
}

/// Ids of the workers the master knows, connected or not.
async fn known_workers(http: &str) -> Result<Vec<(String, bool)>, String> {
    let v: Value = reqwest::get(format!("{http}/api/v1/workers"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<(String, bool)> = v["data"]
        .as_array()
        .ok_or("no worker list")?
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap_or("").to_owned(),
                w["connected"] == true,
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

async fn wait_log(p: &Process, needle: &str) {
    eventually(WAIT, &format!("{} to log {needle:?}", p.name()), || async {
        let log = p.log_contents();
        log.contains(needle)
            .then_some(())
            .ok_or(format!("not yet; log: {log}"))
    })
    .await;
}

async fn reload(http: &str, token: Option<&str>) -> StatusCode {
    let mut req = reqwest::Client::new().post(format!("{http}/-/reload"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_control_plane_admits_only_workers_with_its_credential() {
    let chart = Chart::template(&[]).await;
    // Another install of the chart: a well-formed token the master has never seen.
    let other = Chart::template(&[]).await;
    let api = ApiServerDouble::start().await;
    api.apply(node());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();

    let mut master_args = chart.materialize("Deployment", MASTER, &dir.path().join("master"));
    for (f, file) in [
        ("--grpc.tls-cert-file", "tls.crt"),
        ("--grpc.tls-key-file", "tls.key"),
        ("--grpc.token-file", "grpc-token"),
        ("--web.admin-token-file", "admin-token"),
    ] {
        assert!(flag(&master_args, f).ends_with(file), "{f}");
    }
    set_flag(&mut master_args, "--listen-grpc", "127.0.0.1:0");
    set_flag(&mut master_args, "--listen-http", "127.0.0.1:0");
    let kubeconfig_env = kubeconfig.display().to_string();
    // In a pod the master finds the API server in-cluster; here KUBECONFIG points at the double.
    let master = Process::spawn_with_env(
        "master",
        &refs(&master_args),
        &[("KUBECONFIG", &kubeconfig_env)],
    )
    .await;
    let http = master.url("http");
    let grpc_port = master.addr("grpc").port();

    let rendered = chart.materialize("StatefulSet", WORKERS, &dir.path().join("worker"));
    assert_eq!(
        flag(&rendered, "--master"),
        format!("https://{MASTER}.{NAMESPACE}.svc:9400")
    );
    assert_eq!(
        flag(&rendered, "--master.server-name"),
        format!("{MASTER}.{NAMESPACE}.svc")
    );
    let good = Process::spawn(
        "w-good",
        &refs(&worker_args(&rendered, "w-good", grpc_port, dir.path())),
    )
    .await;
    let no_token = Process::spawn(
        "w-no-token",
        &refs(&worker_args(
            &remove_flag(&rendered, "--master.token-file"),
            "w-no-token",
            grpc_port,
            dir.path(),
        )),
    )
    .await;
    let other_token_file = dir.path().join("other-grpc-token");
    std::fs::write(
        &other_token_file,
        &other.secret_data(&format!("{FULLNAME}-auth"))["grpc-token"],
    )
    .unwrap();
    let mut other_args = worker_args(&rendered, "w-other-install", grpc_port, dir.path());
    set_flag(
        &mut other_args,
        "--master.token-file",
        &other_token_file.display().to_string(),
    );
    let wrong_token = Process::spawn("w-other-install", &refs(&other_args)).await;

    // The worker with the chart's credential connects over TLS and is assigned the node's four
    // kubelet targets; the others are refused before placement ever sees them.
    eventually(
        WAIT,
        "w-good connected and assigned four targets",
        || async {
            let workers = known_workers(&http).await?;
            let targets = metric(&good.url("http"), "promshard_worker_targets").await?;
            if workers == [("w-good".to_owned(), true)] && targets == 4.0 {
                Ok(())
            } else {
                Err(format!("workers {workers:?}, w-good targets {targets}"))
            }
        },
    )
    .await;
    for w in [&no_token, &wrong_token] {
        wait_log(w, "missing or wrong bearer token").await;
    }
    for w in [&no_token, &wrong_token] {
        let url = w.url("http");
        for series in [
            "promshard_worker_targets",
            "promshard_worker_assignment_generation",
            "promshard_worker_master_connected",
        ] {
            assert_eq!(
                metric(&url, series).await.unwrap(),
                0.0,
                "{} {series}",
                w.name()
            );
        }
    }
    assert_eq!(
        known_workers(&http).await.unwrap(),
        [("w-good".to_owned(), true)],
        "no trace of the refused workers"
    );
    assert!(
        !good.log_contents().contains("control stream failed"),
        "{}",
        good.log_contents()
    );

    // The admin API takes the chart's admin token, and nothing else.
    let admin = chart.secret_data(&format!("{FULLNAME}-auth"));
    let admin_token = String::from_utf8(admin["admin-token"].clone()).unwrap();
    let grpc_token = String::from_utf8(admin["grpc-token"].clone()).unwrap();
    assert_eq!(reload(&http, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reload(&http, Some(&grpc_token)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(reload(&http, Some(&admin_token)).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_credentials_are_kept_across_an_upgrade() {
    let api = ApiServerDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let kubeconfig = kubeconfig.display().to_string();
    let server = [
        "--dry-run=server",
        "--disable-openapi-validation",
        "--kubeconfig",
        kubeconfig.as_str(),
    ];
    let secrets = [format!("{FULLNAME}-auth"), format!("{MASTER}-tls")];

    // Install: nothing to look up, so the chart generates the tokens and the certificate.
    let install = Chart::template(&server).await;
    let install_secrets: Vec<Value> = secrets
        .iter()
        .map(|name| install.get("Secret", name).clone())
        .collect();
    // What `helm install` would have created: the objects, annotated as the release's.
    for secret in &install_secrets {
        let mut secret = secret.clone();
        secret["metadata"]["annotations"] = json!({
            "meta.helm.sh/release-name": RELEASE,
            "meta.helm.sh/release-namespace": NAMESPACE,
        });
        api.apply(secret);
    }
    let looked_up = api
        .requests()
        .iter()
        .any(|r| r.resource == "secrets" && r.name.as_deref() == Some(&format!("{FULLNAME}-auth")));
    assert!(looked_up, "helm looked the Secret up: {:?}", api.requests());

    // Upgrade: the same data, so workers and the master keep trusting each other.
    let upgrade = Chart::template(&server).await;
    for (name, before) in secrets.iter().zip(&install_secrets) {
        assert_eq!(
            upgrade.get("Secret", name)["data"],
            before["data"],
            "{name}"
        );
    }
    // Offline, every render makes new ones (hence auth.existingSecret for GitOps tools).
    let offline = Chart::template(&[]).await;
    for (name, before) in secrets.iter().zip(&install_secrets) {
        assert_ne!(
            offline.get("Secret", name)["data"],
            before["data"],
            "{name}"
        );
    }
}
