//! Master high availability: two masters elect a leader on a Lease in the API-server double;
//! the leader is killed with SIGKILL, the standby takes over, the workers (given both master
//! URLs) reconnect to it, and no target is lost or moved.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promshard_integration_tests::apiserver::{ApiServerDouble, Verb};
use promshard_integration_tests::cluster::{metric, owners, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::simulator::TargetSimulator;

const INTERVAL_MS: i64 = 1_000;
const NAMESPACE: &str = "promshard";
const LEASE: &str = "promshard-master";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Static targets from the simulator, plus a `kubernetes_sd_configs` job whose pods are all
/// dropped: it yields no target, but its pod watch shows which master runs discovery.
fn write_config(dir: &Path, sim: &TargetSimulator, rw: &str) -> std::path::PathBuf {
    let targets: Vec<String> = sim.addresses().iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: {INTERVAL_MS}ms\n  scrape_timeout: 500ms\n\
         scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: [{}]\n\
         \x20 - job_name: pods\n    kubernetes_sd_configs:\n      - role: pod\n\
         \x20   relabel_configs:\n      - action: drop\n        regex: .*\n\
         remote_write:\n  - url: {rw}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        targets.join(", "),
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// A master with leader election; `listen` gives the gRPC and HTTP addresses of a restart (the
/// workers know the first incarnation's URLs).
async fn start_candidate(
    config: &Path,
    kubeconfig: &Path,
    id: &str,
    listen: Option<(&str, &str)>,
) -> Process {
    let kubeconfig = kubeconfig.to_str().unwrap();
    let mut args = vec![
        "master",
        "--config",
        config.to_str().unwrap(),
        "--listen-grpc",
        listen.map_or("127.0.0.1:0", |l| l.0),
        "--listen-http",
        listen.map_or("127.0.0.1:0", |l| l.1),
    ];
    args.extend_from_slice(&[
        "--worker-grace-period",
        "2s",
        // Workers back off up to 5s between rounds of failed connects: a new leader waits
        // for them before it places anything, so it keeps their targets where they are.
        "--placement.settle",
        "8s",
        "--kubeconfig",
        kubeconfig,
        "--leader-election",
        "--leader-election-namespace",
        NAMESPACE,
        "--leader-election-lease-name",
        LEASE,
        "--leader-election-id",
        id,
        // A 1s grace is too little on a loaded 2-core machine: a renewal delayed by more than
        // the grace loses the lease (and the leader exits), which is correct but not this test.
        "--leader-election-lease-duration",
        "4s",
        "--leader-election-renew-grace",
        "2s",
        "--leader-election-retry-period",
        "250ms",
    ]);
    Process::spawn(id, &args).await
}

async fn ready_status(http: &str) -> Result<u16, String> {
    let resp = reqwest::get(format!("{http}/-/ready"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// Waits until `leader` is ready and reports `promshard_master_leader 1`, each of `standbys`
/// is healthy, not ready and reports 0, and the Lease names `leader_id` as its holder.
async fn one_leader(
    double: &ApiServerDouble,
    leader: &str,
    leader_id: &str,
    standbys: &[&str],
    deadline: Duration,
) {
    eventually(
        deadline,
        &format!("{leader_id} as the one leader"),
        || async {
            let holder = double
                .get("Lease", NAMESPACE, LEASE)
                .map(|l| l["spec"]["holderIdentity"].clone());
            if holder != Some(leader_id.into()) {
                return Err(format!("lease holder: {holder:?}"));
            }
            if ready_status(leader).await? != 200 {
                return Err(format!("{leader} not ready"));
            }
            if metric(leader, "promshard_master_leader").await? != 1.0 {
                return Err(format!("{leader} does not report itself leader"));
            }
            for s in standbys {
                let healthy = reqwest::get(format!("{s}/-/healthy"))
                    .await
                    .map_err(|e| e.to_string())?
                    .status();
                if !healthy.is_success() || ready_status(s).await? != 503 {
                    return Err(format!("standby {s}: healthy {healthy}, ready not 503"));
                }
                if metric(s, "promshard_master_leader").await? != 0.0 {
                    return Err(format!("standby {s} reports itself leader"));
                }
            }
            Ok(())
        },
    )
    .await;
}

async fn placed(http: &str, n: usize) -> BTreeMap<String, String> {
    eventually(Duration::from_secs(60), "every target placed", || async {
        let o = owners(http).await?;
        if o.len() != n || !o.values().all(|w| w == "w1" || w == "w2") {
            return Err(format!("owners: {o:?}"));
        }
        Ok(o)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_by_the_standby_and_no_target_is_lost() {
    const N: usize = 12;
    let double = ApiServerDouble::start().await;
    let sim = TargetSimulator::start(N).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &recorder.url());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, double.kubeconfig()).unwrap();

    // The first master leads alone before the second starts, so the roles are known.
    let mut a = start_candidate(&config, &kubeconfig, "master-a", None).await;
    let a_http = a.url("http");
    one_leader(&double, &a_http, "master-a", &[], Duration::from_secs(20)).await;
    let b = start_candidate(&config, &kubeconfig, "master-b", None).await;
    let b_http = b.url("http");
    one_leader(
        &double,
        &a_http,
        "master-a",
        &[&b_http],
        Duration::from_secs(20),
    )
    .await;

    // Workers know both masters and find the leader by themselves.
    let masters = format!("{},{}", b.url("grpc"), a.url("grpc"));
    let _w1 = start_worker("w1", &masters, dir.path(), &[]).await;
    let _w2 = start_worker("w2", &masters, dir.path(), &[]).await;
    let before = placed(&a_http, N).await;
    assert_eq!(
        reqwest::get(format!("{b_http}/api/v1/targets"))
            .await
            .unwrap()
            .status(),
        503,
        "a standby serves no targets API"
    );
    // Only the leader runs discovery: one pod watch, none from the standby.
    eventually(
        Duration::from_secs(10),
        "the leader's pod watch",
        || async {
            match double.open_watches("pods") {
                1 => Ok(()),
                n => Err(format!("{n} pod watches open")),
            }
        },
    )
    .await;
    // An initial sync is a LIST or a streaming list (a WATCH with sendInitialEvents).
    let pod_syncs = double
        .requests()
        .iter()
        .filter(|r| {
            use promshard_integration_tests::apiserver::Verb;
            r.resource == "pods"
                && (r.verb == Verb::List
                    || (r.verb == Verb::Watch
                        && r.param("sendInitialEvents").as_deref() == Some("true")))
        })
        .count();
    assert_eq!(pod_syncs, 1, "pods listed by more than the leader");

    a.kill().await;
    let killed_at = now_ms();
    // The lease (4s) expires, then the standby takes it within about a second.
    one_leader(&double, &b_http, "master-b", &[], Duration::from_secs(15)).await;
    let took_over_ms = now_ms() - killed_at;
    let after = placed(&b_http, N).await;
    assert_eq!(after, before, "the new leader moved targets");
    eventually(
        Duration::from_secs(10),
        "the new leader's pod watch",
        || async {
            match double.open_watches("pods") {
                1 => Ok(()),
                n => Err(format!("{n} pod watches open")),
            }
        },
    )
    .await;

    // No target is lost: each one has fresh samples scraped after the new leader placed it.
    let placed_at = now_ms();
    eventually(
        Duration::from_secs(15),
        "every target scraped after the failover",
        || async {
            let stale: Vec<String> = sim
                .addresses()
                .into_iter()
                .filter(|addr| {
                    let series = recorder.find("up", &[("instance", addr.as_str())]);
                    !series.iter().any(|(_, samples)| {
                        samples.iter().any(|(t, v)| *t > placed_at && *v == 1.0)
                    })
                })
                .collect();
            if stale.is_empty() {
                Ok(())
            } else {
                Err(format!("no sample since the failover: {stale:?}"))
            }
        },
    )
    .await;
    eprintln!("leader election: standby took over {took_over_ms} ms after the kill");

    // The killed master comes back (on its ports) as a standby; the leader stopped with SIGTERM
    // releases the lease on its way out, so the standby takes over without waiting for it to
    // expire.
    let a_addrs = (a.addr("grpc").to_string(), a.addr("http").to_string());
    let a = start_candidate(
        &config,
        &kubeconfig,
        "master-a",
        Some((&a_addrs.0, &a_addrs.1)),
    )
    .await;
    let a_http = a.url("http");
    one_leader(
        &double,
        &b_http,
        "master-b",
        &[&a_http],
        Duration::from_secs(20),
    )
    .await;
    let mut b = b;
    let status = b.terminate().await;
    assert!(status.success(), "the leader's graceful exit: {status}");
    let released = double
        .requests()
        .into_iter()
        .filter(|r| r.resource == "leases" && r.verb == Verb::Patch)
        .count();
    assert!(released > 0, "no lease patch at all");
    one_leader(&double, &a_http, "master-a", &[], Duration::from_secs(15)).await;
    let again = placed(&a_http, N).await;
    assert_eq!(again, before, "the handover on SIGTERM moved targets");
}

/// A leader that cannot reach the API server cannot renew its lease: it must stop leading (the
/// process exits) rather than keep placing targets while a standby may take over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_that_cannot_renew_its_lease_exits() {
    let double = ApiServerDouble::start().await;
    let sim = TargetSimulator::start(1).await;
    let recorder = RecordingReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &recorder.url());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, double.kubeconfig()).unwrap();
    let mut a = start_candidate(&config, &kubeconfig, "master-a", None).await;
    let a_http = a.url("http");
    one_leader(&double, &a_http, "master-a", &[], Duration::from_secs(20)).await;

    double.set_unavailable(true);
    let status = a.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success(), "exit status {status}");
    let log = a.log_contents();
    assert!(log.contains("lost the leader lease"), "{log}");
}
