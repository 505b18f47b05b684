//! Kubernetes discovery against the API-server double: one initial sync (a streaming list, or a
//! LIST where the server refuses streaming lists) and one WATCH per kind whatever the jobs and
//! workers, in protobuf and in JSON; exactly one re-sync after a 410, nothing from workers,
//! churn followed, no target churn while the API server is unreachable, and a 429's
//! Retry-After honoured.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use promshard_integration_tests::apiserver::{ApiServerDouble, Config, RequestRecord, Verb};
use promshard_integration_tests::cluster::{start_master, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use serde_json::{Value, json};

const KINDS_USED: [&str; 4] = ["pods", "services", "endpointslices", "nodes"];
const KINDS_UNUSED: [&str; 3] = ["endpoints", "ingresses", "namespaces"];

fn pod(ns: &str, name: &str, app: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"nodeName": "node-0", "containers": [{"name": "c", "image": "img",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": "127.0.1.1",
            "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn node(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i}"), "labels": {"zone": "a"}},
        "status": {"addresses": [{"type": "InternalIP", "address": format!("127.0.1.{}", i + 1)}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
    })
}

/// A master discovering from `api`: the double's kubeconfig and `prometheus_yml` written into
/// `dir`, loopback ports, and `extra` flags.
async fn master_on(
    api: &ApiServerDouble,
    dir: &Path,
    prometheus_yml: &str,
    extra: &[&str],
) -> Process {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, prometheus_yml).unwrap();
    let mut args = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    args.extend_from_slice(extra);
    start_master(&config, &args).await
}

fn seed(api: &ApiServerDouble) {
    for i in 0..3 {
        api.apply(node(i));
    }
    api.apply(pod("ns1", "web-0", "web", "127.0.0.10"));
    api.apply(pod("ns1", "web-1", "web", "127.0.0.11"));
    api.apply(pod("ns1", "db-0", "db", "127.0.0.12"));
    api.apply(pod("ns2", "web-2", "web", "127.0.0.13"));
    api.apply(pod("ns2", "api-0", "api", "127.0.0.14"));
    api.apply(pod("ns2", "api-1", "api", "127.0.0.15"));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns1", "labels": {"tier": "front"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], "clusterIP": "127.0.2.1"}
    }));
    let ep = |n: &str, ip: &str| {
        json!({"addresses": [ip], "conditions": {"ready": true},
        "targetRef": {"kind": "Pod", "namespace": "ns1", "name": n}, "nodeName": "node-0"})
    };
    api.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "ns1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [ep("web-0", "127.0.0.10"), ep("web-1", "127.0.0.11")],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }));
}

const CONFIG: &str = r#"
global: {scrape_interval: 1s, scrape_timeout: 500ms}
scrape_configs:
  - job_name: pods-all
    kubernetes_sd_configs: [{role: pod}]
  - job_name: pods-ns1
    kubernetes_sd_configs: [{role: pod, namespaces: {names: [ns1]}}]
  - job_name: pods-web
    kubernetes_sd_configs: [{role: pod, selectors: [{role: pod, label: app=web}]}]
  - job_name: slices
    kubernetes_sd_configs: [{role: endpointslice}]
  - job_name: nodes
    kubernetes_sd_configs: [{role: node}]
"#;

/// Active targets per job, and how many have a connected owner.
async fn targets(http: &str) -> Result<(BTreeMap<String, usize>, usize, Vec<Value>), String> {
    let v: Value = reqwest::get(format!("{http}/api/v1/targets?state=active"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let list = v["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut per_job = BTreeMap::new();
    let mut owned = 0;
    for t in &list {
        *per_job
            .entry(t["scrapePool"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
        owned += usize::from(t["worker"].is_string());
    }
    Ok((per_job, owned, list))
}

fn expected(extra_pods_all: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([
        ("nodes".to_string(), 3),
        ("pods-all".to_string(), 6 + extra_pods_all),
        ("pods-ns1".to_string(), 3),
        ("pods-web".to_string(), 3),
        ("slices".to_string(), 2),
    ])
}

async fn connected_workers(http: &str) -> usize {
    let v: Value = match reqwest::get(format!("{http}/api/v1/workers")).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => return 0,
    };
    v["data"]
        .as_array()
        .map_or(0, |ws| ws.iter().filter(|w| w["connected"] == true).count())
}

/// An initial sync of a kind that succeeded: a LIST, or a streaming list (a WATCH with
/// `sendInitialEvents=true`).
fn is_sync(r: &RequestRecord) -> bool {
    r.status == 200
        && (r.verb == Verb::List
            || (r.verb == Verb::Watch && r.param("sendInitialEvents").as_deref() == Some("true")))
}

fn syncs(api: &ApiServerDouble, kind: &str) -> usize {
    let requests = api.requests();
    requests
        .iter()
        .filter(|r| r.resource == kind && is_sync(r))
        .count()
}

/// WATCH streams opened (a streaming list is one), not counting refused ones.
fn watches(api: &ApiServerDouble, kind: &str) -> usize {
    let requests = api.requests();
    requests
        .iter()
        .filter(|r| r.resource == kind && r.verb == Verb::Watch && r.status == 200)
        .count()
}

fn assert_one_sync_one_watch(api: &ApiServerDouble, mode: Mode, when: &str) {
    for kind in KINDS_USED {
        assert_eq!(syncs(api, kind), 1, "{when}: initial syncs of {kind}");
        let expected_watches = match mode {
            // The streaming list is the watch.
            Mode::ProtobufStreaming => 1,
            Mode::JsonList => 1,
        };
        assert_eq!(
            watches(api, kind),
            expected_watches,
            "{when}: WATCHes of {kind}"
        );
        let lists = api.count(Verb::List, kind);
        match mode {
            Mode::ProtobufStreaming => assert_eq!(lists, 0, "{when}: LISTs of {kind}"),
            Mode::JsonList => assert_eq!(lists, 1, "{when}: LISTs of {kind}"),
        }
        assert_refused_once(api, mode, kind);
    }
    for kind in KINDS_UNUSED {
        assert_eq!(
            api.count(Verb::List, kind) + api.count(Verb::Watch, kind),
            0,
            "{when}: {kind} is not used"
        );
    }
}

/// Where the server refuses streaming lists, each kind tries once, then lists for good.
fn assert_refused_once(api: &ApiServerDouble, mode: Mode, kind: &str) {
    let refused = api
        .requests()
        .iter()
        .filter(|r| r.resource == kind && r.verb == Verb::Watch && r.status == 422)
        .count();
    let expected = match mode {
        Mode::ProtobufStreaming => 0,
        Mode::JsonList => 1,
    };
    assert_eq!(refused, expected, "refused streaming lists of {kind}");
}

/// What the double offers, so the master's two paths are both exercised end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Protobuf and streaming lists, as a current kube-apiserver.
    ProtobufStreaming,
    /// JSON only and no streaming lists, as an older one (or a proxy that strips protobuf).
    JsonList,
}

impl Mode {
    fn config(self) -> Config {
        match self {
            Mode::ProtobufStreaming => Config::default(),
            Mode::JsonList => Config {
                protobuf: false,
                streaming_lists: false,
                ..Config::default()
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watch_per_kind_whatever_the_jobs_and_workers() {
    footprint(Mode::ProtobufStreaming).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watch_per_kind_in_json_without_streaming_lists() {
    footprint(Mode::JsonList).await;
}

async fn footprint(mode: Mode) {
    let api = ApiServerDouble::start_with(mode.config()).await;
    seed(&api);
    let dir = tempfile::tempdir().unwrap();
    let master = master_on(&api, dir.path(), CONFIG, &["--worker-grace-period", "2s"]).await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let mut workers = vec![
        start_worker("w1", &grpc, dir.path(), &[]).await,
        start_worker("w2", &grpc, dir.path(), &[]).await,
    ];

    // Every job's targets, each owned by a worker.
    eventually(
        Duration::from_secs(30),
        "targets of all five jobs placed",
        || async {
            let (per_job, owned, _) = targets(&http).await?;
            let total: usize = per_job.values().sum();
            if per_job == expected(0) && owned == total {
                Ok(())
            } else {
                Err(format!("{per_job:?}, owned {owned}"))
            }
        },
    )
    .await;
    // Five jobs on three roles: still one sync and one WATCH per kind, and only the master asks.
    assert_one_sync_one_watch(&api, mode, "2 workers");
    let all = api.requests();
    let resource_requests: Vec<_> = all.iter().filter(|r| !r.resource.is_empty()).collect();
    assert!(
        resource_requests
            .iter()
            .all(|r| r.user_agent.starts_with("promshard-master/")),
        "every request comes from the master: {:?}",
        resource_requests
            .iter()
            .map(|r| &r.user_agent)
            .collect::<Vec<_>>()
    );
    let sync_pods = all
        .iter()
        .find(|r| r.resource == "pods" && is_sync(r))
        .unwrap();
    match mode {
        Mode::ProtobufStreaming => {
            // Served from the watch cache, streamed, and in protobuf.
            assert_eq!(sync_pods.verb, Verb::Watch, "{sync_pods}");
            assert_eq!(
                sync_pods.param("resourceVersionMatch").as_deref(),
                Some("NotOlderThan")
            );
            assert_eq!(sync_pods.param("resourceVersion"), None);
        }
        Mode::JsonList => {
            assert_eq!(
                sync_pods.param("resourceVersion").as_deref(),
                Some("0"),
                "LIST served from the watch cache"
            );
            assert_eq!(
                sync_pods.param("limit"),
                None,
                "no limit: the whole list from the cache"
            );
        }
    }
    assert!(
        sync_pods
            .accept
            .starts_with("application/vnd.kubernetes.protobuf"),
        "the master asks for protobuf first: {:?}",
        sync_pods.accept
    );
    let served = match mode {
        Mode::ProtobufStreaming => "application/vnd.kubernetes.protobuf;stream=watch",
        Mode::JsonList => "application/json",
    };
    assert_eq!(sync_pods.content_type, served, "{sync_pods}");
    let watch_pods = all
        .iter()
        .rfind(|r| r.verb == Verb::Watch && r.resource == "pods" && r.status == 200)
        .unwrap();
    assert_eq!(
        watch_pods.param("allowWatchBookmarks").as_deref(),
        Some("true")
    );

    // Four workers: targets spread over them, and the API server sees nothing new.
    workers.push(start_worker("w3", &grpc, dir.path(), &[]).await);
    workers.push(start_worker("w4", &grpc, dir.path(), &[]).await);
    eventually(Duration::from_secs(30), "4 workers connected", || async {
        let n = connected_workers(&http).await;
        if n == 4 {
            Ok(())
        } else {
            Err(format!("{n} connected"))
        }
    })
    .await;
    assert_one_sync_one_watch(&api, mode, "4 workers");

    // Churn: a new pod appears on a worker; a deleted one vanishes.
    api.apply(pod("ns2", "api-2", "api", "127.0.0.16"));
    eventually(Duration::from_secs(20), "new pod placed", || async {
        let (per_job, owned, list) = targets(&http).await?;
        let placed = list.iter().any(|t| {
            t["discoveredLabels"]["__meta_kubernetes_pod_name"] == "api-2"
                && t["worker"].is_string()
        });
        if per_job == expected(1) && owned == per_job.values().sum::<usize>() && placed {
            Ok(())
        } else {
            Err(format!("{per_job:?}"))
        }
    })
    .await;
    api.delete("Pod", "ns2", "api-2");
    eventually(Duration::from_secs(20), "deleted pod gone", || async {
        let (per_job, _, _) = targets(&http).await?;
        if per_job == expected(0) {
            Ok(())
        } else {
            Err(format!("{per_job:?}"))
        }
    })
    .await;
    assert_one_sync_one_watch(&api, mode, "after churn");

    // A forced 410: every watch is cut and its resourceVersion compacted away, so each kind
    // resumes, gets 410 Gone, and re-syncs exactly once.
    api.compact();
    api.close_watches();
    eventually(
        Duration::from_secs(30),
        "each kind re-listed and watching again",
        || async {
            for kind in KINDS_USED {
                let (l, w, open) = (
                    syncs(&api, kind),
                    watches(&api, kind),
                    api.open_watches(kind),
                );
                if !(l >= 2 && w >= 3 && open == 1) {
                    return Err(format!("{kind}: {l} lists, {w} watches, {open} open"));
                }
            }
            Ok(())
        },
    )
    .await;
    for kind in KINDS_USED {
        assert_eq!(
            syncs(&api, kind),
            2,
            "exactly one re-sync of {kind} after 410"
        );
        assert_refused_once(&api, mode, kind);
    }
    let (per_job, _, _) = targets(&http).await.unwrap();
    assert_eq!(per_job, expected(0), "a re-list changes no target");

    // API server unreachable: targets stay, workers keep their assignments.
    let before: Vec<String> = {
        let (_, _, list) = targets(&http).await.unwrap();
        list.iter()
            .map(|t| format!("{}@{}", t["id"], t["worker"]))
            .collect()
    };
    let requests_before = api.requests().len();
    api.set_unavailable(true);
    eventually(
        Duration::from_secs(30),
        "the master to hit the unavailable API server",
        || async {
            let failed = api.requests()[requests_before..]
                .iter()
                .filter(|r| r.status == 503)
                .count();
            if failed >= KINDS_USED.len() {
                Ok(())
            } else {
                Err(format!("{failed} failed requests so far"))
            }
        },
    )
    .await;
    let during: Vec<String> = {
        let (_, _, list) = targets(&http).await.unwrap();
        list.iter()
            .map(|t| format!("{}@{}", t["id"], t["worker"]))
            .collect()
    };
    assert_eq!(
        during, before,
        "no target churn while the API server is unreachable"
    );
    api.set_unavailable(false);
    eventually(
        Duration::from_secs(60),
        "watches re-established",
        || async {
            let open: Vec<usize> = KINDS_USED.iter().map(|k| api.open_watches(k)).collect();
            if open.iter().all(|n| *n == 1) {
                Ok(())
            } else {
                Err(format!("open watches {open:?}"))
            }
        },
    )
    .await;
    for kind in KINDS_USED {
        assert_eq!(
            syncs(&api, kind),
            2,
            "{kind} resumed after the outage without a re-sync"
        );
    }
    let (per_job, _, list) = targets(&http).await.unwrap();
    assert_eq!(per_job, expected(0), "converged without duplicates");
    let after: Vec<String> = list
        .iter()
        .map(|t| format!("{}@{}", t["id"], t["worker"]))
        .collect();
    assert_eq!(
        after, before,
        "same targets on the same workers after reconnecting"
    );
    // Our own count matches what the API server saw, by verb, resource and code.
    let metrics = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let requests = api.requests();
    for kind in KINDS_USED {
        let seen = requests
            .iter()
            .filter(|r| r.resource == kind && r.verb == Verb::Watch && r.status == 200)
            .count();
        let line = format!(
            "promshard_master_apiserver_requests_total{{verb=\"watch\",resource=\"{kind}\",code=\"200\"}} {seen}"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    drop(workers);
}

/// API Priority and Fairness answers 429 with Retry-After when the master's flow is over its
/// share: the master waits at least that long before asking again (its own backoff would
/// retry within a second), then syncs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_is_honoured() {
    let api = ApiServerDouble::start().await;
    seed(&api);
    api.throttle(1, Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let master = master_on(
        &api,
        dir.path(),
        "global: {scrape_interval: 1s, scrape_timeout: 500ms}\n\
         scrape_configs:\n\
         \x20 - job_name: nodes\n    kubernetes_sd_configs: [{role: node}]\n",
        &[],
    )
    .await;
    wait_jobs(&master.url("http"), "nodes", 3).await;
    let nodes: Vec<RequestRecord> = api
        .requests()
        .into_iter()
        .filter(|r| r.resource == "nodes")
        .collect();
    assert_eq!(nodes[0].status, 429, "{}", nodes[0]);
    assert!(is_sync(&nodes[1]), "then the initial sync: {}", nodes[1]);
    let waited = nodes[1].at - nodes[0].at;
    assert!(
        waited >= Duration::from_secs(3),
        "asked again after {waited:?}, before Retry-After (3 s)"
    );
}

/// Field selectors on kind-specific fields are evaluated as the API server evaluates them (a
/// missing boolean is "false", a missing string ""): they used to read only `metadata.*` and
/// matched nothing for `spec.unschedulable`, `spec.hostNetwork` or `spec.clusterIP`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_on_kind_specific_fields_select_targets() {
    let api = ApiServerDouble::start().await;
    seed(&api);
    let dir = tempfile::tempdir().unwrap();
    let master = master_on(
        &api,
        dir.path(),
        "global: {scrape_interval: 1s, scrape_timeout: 500ms}\n\
         scrape_configs:\n\
         \x20 - job_name: schedulable-nodes\n    kubernetes_sd_configs:\n\
         \x20     - {role: node, selectors: [{role: node, field: 'spec.unschedulable=false'}]}\n\
         \x20 - job_name: pod-network-pods\n    kubernetes_sd_configs:\n\
         \x20     - {role: pod, selectors: [{role: pod, field: 'spec.hostNetwork=false,status.phase=Running'}]}\n\
         \x20 - job_name: one-service\n    kubernetes_sd_configs:\n\
         \x20     - {role: service, selectors: [{role: service, field: 'spec.clusterIP=127.0.2.1'}]}\n",
        &[],
    )
    .await;
    let http = master.url("http");
    let want = BTreeMap::from([
        ("schedulable-nodes".to_string(), 3),
        ("pod-network-pods".to_string(), 6),
        ("one-service".to_string(), 1),
    ]);
    eventually(Duration::from_secs(30), &format!("{want:?}"), || async {
        let (per_job, _, _) = targets(&http).await?;
        (per_job == want)
            .then_some(())
            .ok_or(format!("{per_job:?}"))
    })
    .await;
}

/// An operator can turn protobuf and streaming lists off (an API server or proxy that mishandles
/// them): against a server that offers both, the master then asks for JSON only and LISTs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_and_streaming_lists_can_be_turned_off() {
    let api = ApiServerDouble::start().await;
    seed(&api);
    let dir = tempfile::tempdir().unwrap();
    let master = master_on(
        &api,
        dir.path(),
        "global: {scrape_interval: 1s, scrape_timeout: 500ms}\n\
         scrape_configs:\n\
         \x20 - job_name: nodes\n    kubernetes_sd_configs: [{role: node}]\n",
        &[
            "--kubernetes.protobuf=false",
            "--kubernetes.streaming-lists=false",
        ],
    )
    .await;
    wait_jobs(&master.url("http"), "nodes", 3).await;
    let nodes: Vec<RequestRecord> = api
        .requests()
        .into_iter()
        .filter(|r| r.resource == "nodes")
        .collect();
    assert_eq!(api.count(Verb::List, "nodes"), 1, "{nodes:#?}");
    for r in &nodes {
        assert!(
            !r.accept.contains("protobuf"),
            "asked for protobuf though told not to: {r}"
        );
        assert_ne!(
            r.param("sendInitialEvents").as_deref(),
            Some("true"),
            "tried a streaming list though told not to: {r}"
        );
    }
    assert_eq!(nodes[0].verb, Verb::List, "{}", nodes[0]);
}

/// `api_server` without a scheme (http://, as client-go makes it without tls_config), with the
/// entry's own credentials: every request carries them, and two entries with different
/// credentials do not share a client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_without_a_scheme_with_the_entrys_credentials() {
    let api = ApiServerDouble::start().await;
    seed(&api);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "file-token\n").unwrap();
    let config = dir.path().join("prometheus.yml");
    let addr = api.addr();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}\n\
             scrape_configs:\n\
             \x20 - job_name: basic\n    kubernetes_sd_configs: [{{role: pod, api_server: '{addr}', basic_auth: {{username: prom, password: pw}}, namespaces: {{names: [ns1]}}}}]\n\
             \x20 - job_name: bearer\n    kubernetes_sd_configs: [{{role: node, api_server: '{addr}', authorization: {{credentials_file: {}}}}}]\n",
            token.display()
        ),
    )
    .unwrap();
    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            config.to_str().unwrap(),
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
        ],
    )
    .await;
    let http = master.url("http");
    eventually(Duration::from_secs(30), "both jobs' targets", || async {
        let (per_job, _, _) = targets(&http).await?;
        let want = BTreeMap::from([("basic".to_string(), 3), ("bearer".to_string(), 3)]);
        (per_job == want)
            .then_some(())
            .ok_or(format!("{per_job:?}"))
    })
    .await;
    let reqs = api.requests();
    let pods: Vec<_> = reqs.iter().filter(|r| r.resource == "pods").collect();
    let nodes: Vec<_> = reqs.iter().filter(|r| r.resource == "nodes").collect();
    assert!(!pods.is_empty() && !nodes.is_empty());
    // base64("prom:pw"), and the token file's content (kube reads the file itself).
    assert!(
        pods.iter().all(|r| r.authorization == "Basic cHJvbTpwdw=="),
        "{pods:?}"
    );
    assert!(
        nodes.iter().all(|r| r.authorization == "Bearer file-token"),
        "{nodes:?}"
    );
}

/// Prometheus 3.11: on the pod role with node metadata attached, node selectors choose the
/// nodes, and only pods on those nodes are targets; relabeling a node moves its pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selectors_on_the_pod_role_follow_node_labels() {
    let api = ApiServerDouble::start().await;
    seed(&api);
    let dir = tempfile::tempdir().unwrap();
    let master = master_on(
        &api,
        dir.path(),
        "global: {scrape_interval: 1s, scrape_timeout: 500ms}\n\
         scrape_configs:\n\
         \x20 - job_name: zone-a\n    kubernetes_sd_configs: [{role: pod, attach_metadata: {node: true}, selectors: [{role: node, label: zone=a}]}]\n\
         \x20 - job_name: zone-b\n    kubernetes_sd_configs: [{role: pod, attach_metadata: {node: true}, selectors: [{role: node, label: zone=b}]}]\n",
        &[],
    )
    .await;
    let http = master.url("http");
    // Every seeded pod runs on node-0, in zone a.
    wait_jobs(&http, "zone-a", 6).await;
    let mut n0 = node(0);
    n0["metadata"]["labels"]["zone"] = json!("b");
    api.apply(n0);
    wait_jobs(&http, "zone-b", 6).await;
}

/// Waits until `job` is the only job with targets, and has `n`.
async fn wait_jobs(http: &str, job: &str, n: usize) {
    let want = BTreeMap::from([(job.to_string(), n)]);
    eventually(Duration::from_secs(30), &format!("{want:?}"), || async {
        let (per_job, _, _) = targets(http).await?;
        (per_job == want)
            .then_some(())
            .ok_or(format!("{per_job:?}"))
    })
    .await;
}
