//! `apiserver-sync`: what a master restart costs, against the API-server double serving N pods,
//! in each wire encoding (protobuf, JSON) and initial-sync strategy (streaming list, LIST
//! `resourceVersion=0`) the API server may offer.
//!
//! Per combination: a fresh double seeded with N realistic pods (managedFields, env, volumes,
//! probes, as `kubectl get -o json` shows them), one `promshard master` with one `role: pod`
//! job, measured from `/proc` until its pod store holds N objects (`promshard_master_kube_objects`),
//! then again after a settling time. Figures: body bytes the double sent for pods, wall time
//! and master CPU to sync, the master's peak RSS (VmHWM) at the end of the sync, and its RSS
//! once settled (steady state: the store plus N targets).
//!
//! `cargo build --release --bin promshard && cargo run --release -p promshard-bench --bin
//! apiserver-sync -- --pods 50000` (the master is `$PROMSHARD_BIN`, else `promshard` next to this
//! executable, as for the integration tests).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use promshard_bench::procstat;
use promshard_integration_tests::apiserver::{ApiServerDouble, Config};
use promshard_integration_tests::launcher::Process;
use promshard_master::discovery::kubernetes::protobuf::{ProtobufKind as _, encode_object};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "apiserver-sync")]
struct Cli {
    /// Pods the double serves.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Time after the sync before the steady-state RSS is read.
    #[arg(long, default_value_t = 15)]
    settle_secs: u64,
}

#[derive(Clone, Copy)]
struct Mode {
    protobuf: bool,
    streaming: bool,
}

impl Mode {
    fn name(&self) -> String {
        format!(
            "{} / {}",
            if self.protobuf { "protobuf" } else { "JSON" },
            if self.streaming {
                "streaming list"
            } else {
                "LIST rv=0"
            }
        )
    }
}

struct Figures {
    bytes: u64,
    wall: Duration,
    cpu: Duration,
    peak_at_sync: u64,
    steady: u64,
    /// VmHWM at the end: the peak may come after the sync, when N targets are computed.
    peak: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let modes = [
        Mode {
            protobuf: false,
            streaming: false,
        },
        Mode {
            protobuf: false,
            streaming: true,
        },
        Mode {
            protobuf: true,
            streaming: false,
        },
        Mode {
            protobuf: true,
            streaming: true,
        },
    ];
    // The double's protobuf carries only the fields discovery reads (a real API server's
    // carries every field): compare the encodings on the same content, for one pod.
    let full: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(1))?;
    let trimmed = Pod::from_pb(full.to_pb());
    let json_full = serde_json::to_vec(&pod(1))?.len();
    let json_trimmed = serde_json::to_vec(&trimmed)?.len();
    let pb_trimmed = encode_object(&trimmed).len();
    println!(
        "one pod: JSON {json_full} B whole, {json_trimmed} B with only the fields discovery reads, \
         protobuf {pb_trimmed} B of those fields ({:.0} % of their JSON)\n",
        100.0 * pb_trimmed as f64 / json_trimmed as f64
    );
    println!(
        "| {} pods | bytes sent | sync wall | master CPU to sync | peak RSS at sync | steady RSS | peak at sync / steady | peak RSS of the run |",
        cli.pods
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for mode in modes {
        let f = rt.block_on(measure(
            mode,
            cli.pods,
            Duration::from_secs(cli.settle_secs),
        ))?;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        println!(
            "| {} | {:.1} MiB | {:.2} s | {:.2} s | {:.0} MiB | {:.0} MiB | {:.2} | {:.0} MiB |",
            mode.name(),
            mib(f.bytes),
            f.wall.as_secs_f64(),
            f.cpu.as_secs_f64(),
            mib(f.peak_at_sync),
            mib(f.steady),
            f.peak_at_sync as f64 / f.steady.max(1) as f64,
            mib(f.peak)
        );
    }
    Ok(())
}

/// A pod as the API server returns it, ~4 KiB of JSON.
fn pod(i: usize) -> Value {
    let name = format!("app-{}-{i}", i % 500);
    let env: Vec<Value> = (0..10)
        .map(|e| json!({"name": format!("ENV_{e}"), "value": format!("value-{e}-{i}")}))
        .collect();
    let container = |n: &str, port: i32| {
        json!({
            "name": n, "image": format!("registry.example.com/team/{n}:v1.{}", i % 17),
            "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
            "env": env,
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
            "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
        })
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": format!("ns-{}", i % 50), "generateName": format!("app-{}-", i % 500),
            "labels": {"app": format!("app-{}", i % 500), "pod-template-hash": "5d4f8b7c9", "team": "payments",
                       "app.kubernetes.io/name": "app", "app.kubernetes.io/version": "1.2.3", "tier": "backend"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z", "checksum/config": "3f786850e387550fdab836ed7e6dc881de23001b"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{}-5d4f8b7c9", i % 500), "uid": "0b7f3c4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}, "f:ownerReferences": {}}, "f:spec": {"f:containers": {}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T10:00:05Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}},
            ],
        },
        "spec": {
            "containers": [container("app", 8080), container("sidecar", 9090)],
            "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                        {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}],
            "nodeName": format!("node-{}", i % 1000), "serviceAccountName": "app", "schedulerName": "default-scheduler",
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running", "hostIP": format!("10.1.{}.{}", (i / 250) % 250, i % 250 + 1),
            "podIP": format!("10.{}.{}.{}", 2 + i / 62_500, (i / 250) % 250, i % 250 + 1),
            "podIPs": [{"ip": format!("10.{}.{}.{}", 2 + i / 62_500, (i / 250) % 250, i % 250 + 1)}],
            "startTime": "2026-11-30T10:00:01Z", "qosClass": "Burstable",
            "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-30T10:00:01Z"},
                           {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"},
                           {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "image": "registry.example.com/team/app:v1", "imageID": "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "containerID": format!("containerd://{i:064x}"), "started": true, "state": {"running": {"startedAt": "2026-11-30T10:00:03Z"}}},
                {"name": "sidecar", "ready": true, "restartCount": 0, "image": "registry.example.com/team/sidecar:v1", "imageID": "registry.example.com/team/sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "containerID": format!("containerd://{:064x}", i + 1_000_000), "started": true, "state": {"running": {"startedAt": "2026-11-30T10:00:03Z"}}},
            ],
        },
    })
}

async fn pods_in_store(http: &str) -> Option<usize> {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("promshard_master_kube_objects{resource=\"pods\"}"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

async fn measure(mode: Mode, pods: usize, settle: Duration) -> anyhow::Result<Figures> {
    let api = ApiServerDouble::start_with(Config {
        protobuf: mode.protobuf,
        streaming_lists: mode.streaming,
        history_limit: 1000,
        ..Config::default()
    })
    .await;
    for i in 0..pods {
        api.apply(pod(i));
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig())?;
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{role: pod}]\n",
    )?;
    let ticks = procstat::ticks_per_second();
    let start = Instant::now();
    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            config.to_str().context("temp path")?,
            "--kubeconfig",
            kubeconfig.to_str().context("temp path")?,
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
        ],
    )
    .await;
    let http = master.url("http");
    let deadline = start + Duration::from_secs(600);
    let synced = loop {
        anyhow::ensure!(Instant::now() < deadline, "no sync within 10 minutes");
        if pods_in_store(&http).await == Some(pods) {
            break procstat::read(master.pid(), ticks)?;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = start.elapsed();
    let bytes = api.bytes_sent("pods");
    tokio::time::sleep(settle).await;
    let steady = procstat::read(master.pid(), ticks)?;
    Ok(Figures {
        bytes,
        wall,
        cpu: synced.cpu,
        peak_at_sync: synced.hwm,
        steady: steady.rss,
        peak: steady.hwm,
    })
}
