//! `prometheus_cr` end to end: the API-server double serves prometheus-operator resources, a
//! real master turns them into jobs over the shared watches, real workers scrape simulated
//! targets. A ServiceMonitor and a PodMonitor become scraped targets with the operator's
//! labels; edits and deletes follow; a monitor outside the selector is ignored; one that
//! cannot become a job is skipped with its reason without disturbing the others; and fifty
//! monitors with two, then four workers still cost one LIST and one WATCH per kind.

use std::collections::BTreeMap;
use std::time::Duration;

use promshard_integration_tests::apiserver::{ApiServerDouble, Verb};
use promshard_integration_tests::cluster::start_worker;
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::simulator::TargetSimulator;
use serde_json::{Value, json};

const CONFIG: &str = r#"
global: {scrape_interval: 1s, scrape_timeout: 500ms}
scrape_configs: []
prometheus_cr:
  enabled: true
  service_monitor_selector: {matchLabels: {release: kps}}
  pod_monitor_selector: {}
"#;

const CR_KINDS: [&str; 4] = ["servicemonitors", "podmonitors", "probes", "scrapeconfigs"];
const SHARED_KINDS: [&str; 3] = ["pods", "services", "endpointslices"];

fn pod(name: &str, app: &str, port_name: &str, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns1", "labels": {"app": app}},
        "spec": {"nodeName": "node-0", "containers": [{"name": "main", "image": "img",
            "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn service_monitor(name: &str, release: &str, extra: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": "web"}},
        "targetLabels": ["team"],
        "endpoints": [{"port": "metrics", "interval": "1s"}]
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": "ns1", "labels": {"release": release}},
        "spec": spec
    })
}

fn pod_monitor(spec: Value) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": "db", "namespace": "ns1"},
        "spec": spec
    })
}

fn seed(api: &ApiServerDouble, web_port: u16, db_port: u16) {
    api.apply(pod("web-0", "web", "metrics", web_port));
    api.apply(pod("db-0", "db", "prom", db_port));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns1", "labels": {"app": "web", "team": "a"}},
        "spec": {"ports": [{"name": "metrics", "port": 80, "targetPort": web_port}], "clusterIP": "127.0.2.1"}
    }));
    api.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "ns1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true},
            "targetRef": {"kind": "Pod", "namespace": "ns1", "name": "web-0"}, "nodeName": "node-0"}],
        "ports": [{"name": "metrics", "port": web_port, "protocol": "TCP"}]
    }));
}

/// Active targets: job → (labels, health) of each.
async fn targets(
    http: &str,
) -> Result<BTreeMap<String, Vec<(BTreeMap<String, String>, String)>>, String> {
    let v: Value = reqwest::get(format!("{http}/api/v1/targets?state=active"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for t in v["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(t["labels"].clone()).unwrap_or_default();
        out.entry(t["scrapePool"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((labels, t["health"].as_str().unwrap_or("").to_string()));
    }
    Ok(out)
}

async fn cr_status(http: &str) -> Value {
    let v: Value = reqwest::get(format!("{http}/api/v1/cr/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].clone()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn assert_one_list_one_watch(api: &ApiServerDouble, when: &str) {
    // Custom resources: kube-runtime's watcher, a LIST then a WATCH (no protobuf for CRDs).
    for kind in CR_KINDS {
        assert_eq!(api.count(Verb::List, kind), 1, "{when}: LISTs of {kind}");
        assert_eq!(api.count(Verb::Watch, kind), 1, "{when}: WATCHes of {kind}");
    }
    // Built-in kinds: one streaming list, which is the watch, and no LIST.
    for kind in SHARED_KINDS {
        assert_eq!(api.count(Verb::List, kind), 0, "{when}: LISTs of {kind}");
        assert_eq!(api.count(Verb::Watch, kind), 1, "{when}: WATCHes of {kind}");
    }
    for kind in ["secrets", "namespaces", "endpoints", "nodes"] {
        assert_eq!(
            api.count(Verb::List, kind) + api.count(Verb::Watch, kind),
            0,
            "{when}: no LIST or WATCH of {kind}"
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_become_scraped_jobs_over_one_watch_per_kind() {
    let sim = TargetSimulator::start(2).await;
    let (web_port, db_port) = (sim.target(0).addr().port(), sim.target(1).addr().port());
    let api = ApiServerDouble::start().await;
    seed(&api, web_port, db_port);
    api.apply(service_monitor("web", "kps", json!({})));
    api.apply(service_monitor("ignored", "other", json!({})));
    api.apply(service_monitor(
        "broken",
        "kps",
        json!({"endpoints": [{"port": "metrics", "basicAuth": {
            "username": {"name": "creds", "key": "user"}, "password": {"name": "creds", "key": "pass"}}}]}),
    ));
    api.apply(pod_monitor(json!({
        "selector": {"matchLabels": {"app": "db"}},
        "podMetricsEndpoints": [{"port": "prom", "interval": "1s"}]
    })));

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            config.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
            "--worker-grace-period",
            "2s",
        ],
    )
    .await;
    let (grpc, http) = (master.url("grpc"), master.url("http"));
    let mut workers = vec![
        start_worker("w1", &grpc, dir.path(), &[]).await,
        start_worker("w2", &grpc, dir.path(), &[]).await,
    ];

    let web = labels(&[
        ("container", "main"),
        ("endpoint", "metrics"),
        ("instance", &format!("127.0.0.1:{web_port}")),
        ("job", "web"),
        ("namespace", "ns1"),
        ("pod", "web-0"),
        ("service", "web"),
        ("team", "a"),
    ]);
    let db = |extra: &[(&str, &str)]| {
        let mut l = labels(&[
            ("container", "main"),
            ("endpoint", "prom"),
            ("instance", &format!("127.0.0.1:{db_port}")),
            ("job", "ns1/db"),
            ("namespace", "ns1"),
            ("pod", "db-0"),
        ]);
        l.extend(labels(extra));
        l
    };
    let want = |db_labels: BTreeMap<String, String>| {
        BTreeMap::from([
            (
                "podMonitor/ns1/db/0".to_string(),
                vec![(db_labels, "up".to_string())],
            ),
            (
                "serviceMonitor/ns1/web/0".to_string(),
                vec![(web.clone(), "up".to_string())],
            ),
        ])
    };
    eventually(
        Duration::from_secs(40),
        "the ServiceMonitor's and the PodMonitor's targets scraped with the operator's labels",
        || {
            let want = want(db(&[]));
            let http = http.clone();
            async move {
                let got = targets(&http).await?;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            }
        },
    )
    .await;

    // The monitor outside the selector made nothing; the broken one is skipped with its
    // reason (its Secret does not exist), read with a GET by name and never a Secret watch.
    let status = cr_status(&http).await;
    assert_eq!(status["enabled"], true);
    let resources = status["resources"].as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = resources
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("ServiceMonitor", "broken", "skipped"),
            ("ServiceMonitor", "web", "ok"),
            ("PodMonitor", "db", "ok"),
        ]
    );
    assert_eq!(
        resources[0]["reason"],
        "endpoints[0]: basicAuth.username: Secret ns1/creds key \"user\": not found"
    );
    assert_eq!(resources[1]["jobs"], json!(["serviceMonitor/ns1/web/0"]));
    assert!(
        api.count(Verb::Get, "secrets") >= 1,
        "the Secret was asked for by name"
    );
    let metrics = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "promshard_master_prometheus_cr_resources{kind=\"ServiceMonitor\",state=\"skipped\"} 1"
        ),
        "{metrics}"
    );
    assert_one_list_one_watch(&api, "2 workers");

    // Edit: the PodMonitor copies the pod's `app` label; delete: the ServiceMonitor's job goes.
    api.apply(pod_monitor(json!({
        "selector": {"matchLabels": {"app": "db"}},
        "podTargetLabels": ["app"],
        "podMetricsEndpoints": [{"port": "prom", "interval": "1s"}]
    })));
    eventually(
        Duration::from_secs(30),
        "the edited PodMonitor's labels",
        || {
            let want = want(db(&[("app", "db")]));
            let http = http.clone();
            async move {
                let got = targets(&http).await?;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            }
        },
    )
    .await;
    api.delete("ServiceMonitor", "ns1", "web");
    eventually(
        Duration::from_secs(30),
        "the deleted ServiceMonitor's job gone",
        || {
            let http = http.clone();
            let db = db(&[("app", "db")]);
            async move {
                let got = targets(&http).await?;
                let want = BTreeMap::from([(
                    "podMonitor/ns1/db/0".to_string(),
                    vec![(db, "up".to_string())],
                )]);
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            }
        },
    )
    .await;

    // Fifty monitors: fifty jobs, and still one LIST and one WATCH per kind.
    for i in 0..50 {
        api.apply(service_monitor(&format!("sm-{i:02}"), "kps", json!({})));
    }
    eventually(Duration::from_secs(60), "fifty ServiceMonitor jobs", || {
        let http = http.clone();
        async move {
            let got = targets(&http).await?;
            let n = got
                .iter()
                .filter(|(job, ts)| job.starts_with("serviceMonitor/ns1/sm-") && ts.len() == 1)
                .count();
            if n == 50 {
                Ok(())
            } else {
                Err(format!("{n} of 50"))
            }
        }
    })
    .await;
    assert_one_list_one_watch(&api, "50 monitors, 2 workers");

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
    eventually(
        Duration::from_secs(40),
        "51 jobs scraped by 4 workers",
        || {
            let http = http.clone();
            async move {
                let got = targets(&http).await?;
                let up = got.values().flatten().filter(|(_, h)| h == "up").count();
                if got.len() == 51 && up == 51 {
                    Ok(())
                } else {
                    Err(format!("{} jobs, {up} up", got.len()))
                }
            }
        },
    )
    .await;
    assert_one_list_one_watch(&api, "50 monitors, 4 workers");
    let from_workers = api
        .requests()
        .into_iter()
        .filter(|r| !r.resource.is_empty() && !r.user_agent.starts_with("promshard-master/"))
        .count();
    assert_eq!(from_workers, 0, "workers never talk to the API server");

    // The missing Secret appears and the monitor is touched: its references are read again
    // at once (by name) and it becomes a job.
    let secret_gets = api.count(Verb::Get, "secrets");
    api.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "ns1"},
        "data": {"user": "YWxpY2U=", "pass": "czNjcjN0LXB3"}
    }));
    let mut touched = service_monitor(
        "broken",
        "kps",
        json!({"endpoints": [{"port": "metrics", "interval": "1s", "basicAuth": {
            "username": {"name": "creds", "key": "user"}, "password": {"name": "creds", "key": "pass"}}}]}),
    );
    touched["metadata"]["annotations"] = json!({"touched": "1"});
    api.apply(touched);
    eventually(
        Duration::from_secs(30),
        "the fixed monitor becomes a job",
        || {
            let http = http.clone();
            async move {
                let status = cr_status(&http).await;
                let broken = status["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r["name"] == "broken")
                    .cloned()
                    .unwrap_or(Value::Null);
                if broken["state"] == "ok"
                    && broken["jobs"] == json!(["serviceMonitor/ns1/broken/0"])
                {
                    Ok(())
                } else {
                    Err(broken.to_string())
                }
            }
        },
    )
    .await;
    assert!(
        api.count(Verb::Get, "secrets") > secret_gets,
        "read again by name"
    );
    let shown: Value = reqwest::get(format!("{http}/api/v1/cr/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!shown.to_string().contains("s3cr3t-pw"));

    // The password reaches the worker that scrapes the monitor's target, and no other: each
    // worker's persisted assignment (what the master sent it) is checked.
    let owner = eventually(
        Duration::from_secs(30),
        "the fixed monitor's target owned",
        || {
            let http = http.clone();
            async move {
                let v: Value = reqwest::get(format!(
                    "{http}/api/v1/targets?scrapePool=serviceMonitor/ns1/broken/0"
                ))
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
                v["data"]["activeTargets"][0]["worker"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| v.to_string())
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "credentials only at the owner",
        || {
            let (dir, owner) = (dir.path().to_path_buf(), owner.clone());
            async move {
                let mut holders = Vec::new();
                for id in ["w1", "w2", "w3", "w4"] {
                    let bytes =
                        std::fs::read(dir.join(id).join("assignment.pb")).unwrap_or_default();
                    if bytes.windows(9).any(|w| w == b"s3cr3t-pw") {
                        holders.push(id.to_string());
                    }
                }
                if holders == vec![owner.clone()] {
                    Ok(())
                } else {
                    Err(format!("held by {holders:?}, owner {owner}"))
                }
            }
        },
    )
    .await;
    assert_one_list_one_watch(&api, "after the Secret appeared");

    // The owner dies: after the grace period the target moves, and its new owner is sent the
    // credentials with it; no other live worker holds them.
    let owner_at = ["w1", "w2", "w3", "w4"]
        .iter()
        .position(|w| *w == owner)
        .unwrap();
    let mut dead = workers.remove(owner_at);
    dead.kill().await;
    let new_owner = eventually(
        Duration::from_secs(40),
        "the target moved to a live worker",
        || {
            let (http, owner) = (http.clone(), owner.clone());
            async move {
                let v: Value = reqwest::get(format!(
                    "{http}/api/v1/targets?scrapePool=serviceMonitor/ns1/broken/0"
                ))
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
                let t = &v["data"]["activeTargets"][0];
                match t["worker"].as_str() {
                    Some(w) if w != owner && t["health"] == "up" => Ok(w.to_string()),
                    _ => Err(t.to_string()),
                }
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "credentials at the new owner only",
        || {
            let (dir, owner, new_owner) =
                (dir.path().to_path_buf(), owner.clone(), new_owner.clone());
            async move {
                let mut holders = Vec::new();
                for id in ["w1", "w2", "w3", "w4"].into_iter().filter(|w| *w != owner) {
                    let bytes =
                        std::fs::read(dir.join(id).join("assignment.pb")).unwrap_or_default();
                    if bytes.windows(9).any(|w| w == b"s3cr3t-pw") {
                        holders.push(id.to_string());
                    }
                }
                if holders == vec![new_owner.clone()] {
                    Ok(())
                } else {
                    Err(format!("held by {holders:?}, new owner {new_owner}"))
                }
            }
        },
    )
    .await;
    // The job loses its last target (the Service's endpoints go away) but stays: the worker
    // that scraped it is no longer sent its credentials.
    api.delete("EndpointSlice", "ns1", "web-abc");
    eventually(
        Duration::from_secs(60),
        "credentials taken back from the former owner",
        || {
            let (dir, owner) = (dir.path().to_path_buf(), owner.clone());
            async move {
                let mut holders = Vec::new();
                for id in ["w1", "w2", "w3", "w4"].into_iter().filter(|w| *w != owner) {
                    let bytes =
                        std::fs::read(dir.join(id).join("assignment.pb")).unwrap_or_default();
                    if bytes.windows(9).any(|w| w == b"s3cr3t-pw") {
                        holders.push(id.to_string());
                    }
                }
                if holders.is_empty() {
                    Ok(())
                } else {
                    Err(format!("held by {holders:?}"))
                }
            }
        },
    )
    .await;
    let status = cr_status(&http).await;
    assert!(
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "broken" && r["state"] == "ok"),
        "the job still exists: {status}"
    );
    drop(workers);
}
