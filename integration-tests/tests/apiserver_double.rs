//! The API server double against plain HTTP, against the real kube client and watcher, and
//! against kubectl: if these pass, tests that count the master's requests on the double are
//! counting what a real API server would see.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use promshard_integration_tests::apiserver::{ApiServerDouble, Config, Verb};
use promshard_integration_tests::eventually::eventually;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);
const TEST_UA: &str = "apiserver-double-test/1";

fn pod(namespace: &str, name: &str, app: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    })
}

fn fast_bookmarks() -> Config {
    Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(TEST_UA)
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn send(method: reqwest::Method, url: &str, body: &Value) -> (u16, Value) {
    let response = http().request(method, url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A watch response read as newline-delimited JSON events.
struct WatchLines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl WatchLines {
    async fn open(url: &str) -> WatchLines {
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        WatchLines {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("a watch event within the deadline")
                .unwrap()?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next event that is not a bookmark.
    async fn next_change(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }
}

#[tokio::test]
async fn list_paginates_consistently_and_selects() {
    let double = ApiServerDouble::start().await;
    let url = double.url();
    for (ns, name, app, node) in [
        ("a", "p1", "web", "n1"),
        ("a", "p2", "db", "n2"),
        ("b", "p3", "web", "n1"),
        ("b", "p4", "web", "n2"),
        ("c", "p5", "cache", "n1"),
    ] {
        double.apply(pod(ns, name, app, node));
    }

    let (status, first) = get(&format!("{url}/api/v1/pods?limit=2")).await;
    assert_eq!(status, 200);
    assert_eq!(first["kind"], "PodList");
    assert_eq!(first["apiVersion"], "v1");
    assert_eq!(names(&first["items"]), ["p1", "p2"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rv, double.resource_version().to_string());
    // A change between pages does not show up: later pages are served at the first one's
    // resourceVersion, as etcd does.
    double.apply(pod("a", "p0", "web", "n1"));
    let token = first["metadata"]["continue"].as_str().unwrap();
    let (_, second) = get(&format!("{url}/api/v1/pods?limit=2&continue={token}")).await;
    assert_eq!(names(&second["items"]), ["p3", "p4"]);
    assert_eq!(second["metadata"]["resourceVersion"], rv.as_str());
    let token = second["metadata"]["continue"].as_str().unwrap();
    let (_, third) = get(&format!("{url}/api/v1/pods?limit=2&continue={token}")).await;
    assert_eq!(names(&third["items"]), ["p5"]);
    assert_eq!(third["metadata"].get("continue"), None);

    // Unpaginated, from the cache, per namespace, and with selectors.
    let (_, all) = get(&format!("{url}/api/v1/pods?resourceVersion=0")).await;
    assert_eq!(names(&all["items"]), ["p0", "p1", "p2", "p3", "p4", "p5"]);
    let (_, in_a) = get(&format!("{url}/api/v1/namespaces/a/pods")).await;
    assert_eq!(names(&in_a["items"]), ["p0", "p1", "p2"]);
    let cases = [
        ("labelSelector=app%3Dweb", vec!["p0", "p1", "p3", "p4"]),
        ("labelSelector=app%21%3Dweb", vec!["p2", "p5"]),
        ("labelSelector=app+in+%28db%2Ccache%29", vec!["p2", "p5"]),
        ("labelSelector=%21app", vec![]),
        ("fieldSelector=spec.nodeName%3Dn2", vec!["p2", "p4"]),
        ("fieldSelector=metadata.namespace%3Db", vec!["p3", "p4"]),
        ("fieldSelector=metadata.name%3Dp5", vec!["p5"]),
        (
            "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1",
            vec!["p0", "p1", "p3"],
        ),
    ];
    for (query, expected) in cases {
        let (status, list) = get(&format!("{url}/api/v1/pods?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(names(&list["items"]), expected, "{query}");
    }
    let (status, bad) = get(&format!("{url}/api/v1/pods?labelSelector=app+in+%28x")).await;
    assert_eq!((status, bad["kind"].as_str()), (400, Some("Status")));

    // Every request was counted, with its user agent.
    assert_eq!(double.count(Verb::List, "pods"), 14);
    assert_eq!(double.count_from(TEST_UA, Verb::List, "Pod"), 14);
    assert_eq!(double.count_from("kube", Verb::List, "pods"), 0);
    assert_eq!(double.count(Verb::Watch, "pods"), 0);
    let last = double.requests().pop().unwrap();
    assert_eq!(last.user_agent, TEST_UA);
    assert_eq!(last.namespace, None);
    assert_eq!(last.status, 400);
}

#[tokio::test]
async fn watch_streams_events_bookmarks_and_410() {
    let double = ApiServerDouble::start_with(fast_bookmarks()).await;
    let url = double.url();
    double.apply(pod("a", "p1", "web", "n1"));
    double.apply(pod("b", "p2", "web", "n1"));
    let (_, list) = get(&format!("{url}/api/v1/pods")).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Changes made after the LIST, before the WATCH starts, are replayed from the history.
    double.apply(pod("a", "p3", "web", "n1"));
    let mut watch = WatchLines::open(&format!(
        "{url}/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=290"
    ))
    .await;
    let added = watch.next_change().await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "p3");
    assert_eq!(added["object"]["kind"], "Pod");

    let mut modified = pod("a", "p1", "web", "n2");
    modified["metadata"]["labels"]["extra"] = json!("yes");
    double.apply(modified);
    let event = watch.next_change().await.unwrap();
    assert_eq!(event["type"], "MODIFIED");
    assert_eq!(event["object"]["spec"]["nodeName"], "n2");
    let deleted_rv = double.delete("pods", "b", "p2").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = watch.next_change().await.unwrap();
    assert_eq!(event["type"], "DELETED");
    assert_eq!(event["object"]["metadata"]["name"], "p2");
    assert_eq!(
        event["object"]["metadata"]["resourceVersion"],
        deleted_rv.as_str()
    );

    // Bookmarks carry only the type and the resourceVersion to resume from.
    let bookmark = loop {
        let event = watch.next().await.unwrap();
        if event["type"] == "BOOKMARK" {
            break event;
        }
    };
    assert_eq!(
        bookmark["object"],
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": deleted_rv}})
    );

    // A namespaced watch with a selector sees objects entering and leaving the selection.
    let mut selected = WatchLines::open(&format!(
        "{url}/api/v1/namespaces/a/pods?watch=1&labelSelector=app%3Dweb"
    ))
    .await;
    let initial: BTreeSet<String> = [
        selected.next().await.unwrap(),
        selected.next().await.unwrap(),
    ]
    .iter()
    .map(|e| {
        assert_eq!(e["type"], "ADDED");
        e["object"]["metadata"]["name"].as_str().unwrap().to_owned()
    })
    .collect();
    assert_eq!(initial, BTreeSet::from(["p1".to_owned(), "p3".to_owned()]));
    double.apply(pod("a", "p1", "db", "n2"));
    double.apply(pod("b", "p4", "web", "n1"));
    double.apply(pod("a", "p1", "web", "n2"));
    let left = selected.next().await.unwrap();
    let back = selected.next().await.unwrap();
    assert_eq!(
        (&left["type"], &back["type"]),
        (&json!("DELETED"), &json!("ADDED"))
    );
    assert_eq!(double.open_watches("pods"), 2);

    // close_watches() ends every stream cleanly.
    double.close_watches();
    while watch.next().await.is_some() {}
    while selected.next().await.is_some() {}
    eventually(DEADLINE, "the watches to be closed", || async {
        match double.open_watches("pods") {
            0 => Ok(()),
            n => Err(format!("{n} open")),
        }
    })
    .await;

    // After a compaction, resuming from any earlier resourceVersion is 410 Gone, sent as an
    // ERROR event on a 200 response, and the stream ends.
    let token_list = get(&format!("{url}/api/v1/pods?limit=1")).await.1;
    let token = token_list["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_owned();
    double.compact();
    let current = double.resource_version();
    let mut expired = WatchLines::open(&format!(
        "{url}/api/v1/pods?watch=true&resourceVersion={deleted_rv}&allowWatchBookmarks=true"
    ))
    .await;
    let error = expired.next().await.unwrap();
    assert_eq!(
        error,
        json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": "Expired", "code": 410,
            "message": format!("too old resource version: {deleted_rv} ({current})"),
        }})
    );
    assert_eq!(expired.next().await, None);
    // So is an old continue token, as an HTTP error.
    let (status, gone) = get(&format!("{url}/api/v1/pods?limit=1&continue={token}")).await;
    assert_eq!((status, gone["reason"].as_str()), (410, Some("Expired")));
    // A fresh LIST's resourceVersion is watchable again.
    let (_, list) = get(&format!("{url}/api/v1/pods")).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rv, current.to_string());
    let mut fresh = WatchLines::open(&format!(
        "{url}/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await;
    double.apply(pod("c", "p9", "web", "n1"));
    assert_eq!(fresh.next().await.unwrap()["type"], "ADDED");
    // timeoutSeconds ends the stream.
    assert_eq!(fresh.next().await, None);

    assert_eq!(double.count(Verb::Watch, "pods"), 4);
    let watches: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::Watch)
        .collect();
    assert_eq!(watches[1].namespace.as_deref(), Some("a"));
    assert_eq!(
        watches[1].param("labelSelector").as_deref(),
        Some("app=web")
    );
}

#[tokio::test]
async fn single_objects_leases_discovery_and_unavailability() {
    let double = ApiServerDouble::start().await;
    let url = double.url();
    double.apply(pod("a", "p1", "web", "n1"));
    double.apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));

    let (status, p1) = get(&format!("{url}/api/v1/namespaces/a/pods/p1")).await;
    assert_eq!(status, 200);
    assert_eq!(p1["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        p1["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let (status, missing) = get(&format!("{url}/api/v1/namespaces/a/pods/nope")).await;
    assert_eq!(
        (status, missing["reason"].as_str()),
        (404, Some("NotFound"))
    );
    let (status, n1) = get(&format!("{url}/api/v1/nodes/n1")).await;
    assert_eq!((status, n1["metadata"].get("namespace")), (200, None));
    let (status, _) = get(&format!("{url}/api/v1/pods/p1")).await;
    assert_eq!(
        status, 404,
        "namespaced objects are only reachable in their namespace"
    );

    // Leases: create, conflict on create, conflict on a stale update, update.
    let leases = format!("{url}/apis/coordination.k8s.io/v1/namespaces/promshard/leases");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "master"}, "spec": {"holderIdentity": "m1"},
    });
    let (status, created) = send(reqwest::Method::POST, &leases, &lease).await;
    assert_eq!(status, 201);
    assert_eq!(created["metadata"]["namespace"], "promshard");
    let (status, exists) = send(reqwest::Method::POST, &leases, &lease).await;
    assert_eq!(
        (status, exists["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let mut update = created.clone();
    update["spec"]["holderIdentity"] = json!("m2");
    let (status, updated) = send(reqwest::Method::PUT, &format!("{leases}/master"), &update).await;
    assert_eq!(status, 200);
    assert_eq!(updated["spec"]["holderIdentity"], "m2");
    let (status, stale) = send(reqwest::Method::PUT, &format!("{leases}/master"), &update).await;
    assert_eq!((status, stale["reason"].as_str()), (409, Some("Conflict")));
    let (status, _) = send(reqwest::Method::PUT, &format!("{leases}/other"), &update).await;
    assert_eq!(status, 400, "the name in the body must match the URL");
    assert_eq!(
        double.get("Lease", "promshard", "master").unwrap()["spec"]["holderIdentity"],
        "m2"
    );
    let (status, deleted) = send(
        reqwest::Method::DELETE,
        &format!("{leases}/master"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, deleted["metadata"]["name"].as_str()),
        (200, Some("master"))
    );
    assert!(double.objects("leases").is_empty());
    let verbs: Vec<Verb> = double
        .requests()
        .iter()
        .filter(|r| r.resource == "leases")
        .map(|r| r.verb)
        .collect();
    assert_eq!(
        verbs,
        [
            Verb::Create,
            Verb::Create,
            Verb::Update,
            Verb::Update,
            Verb::Update,
            Verb::Delete
        ]
    );

    // Discovery.
    let (_, api) = get(&format!("{url}/api")).await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core) = get(&format!("{url}/api/v1")).await;
    let core_resources: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        core_resources,
        [
            "pods",
            "services",
            "endpoints",
            "nodes",
            "namespaces",
            "secrets",
            "configmaps",
            "serviceaccounts"
        ]
    );
    let (_, groups) = get(&format!("{url}/apis")).await;
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        group_names,
        [
            "discovery.k8s.io",
            "networking.k8s.io",
            "coordination.k8s.io",
            "apps",
            "policy",
            "autoscaling",
            "rbac.authorization.k8s.io",
            "monitoring.coreos.com"
        ]
    );
    let monitoring = groups["groups"].as_array().unwrap().last().unwrap();
    assert_eq!(
        monitoring["versions"],
        json!([
            {"groupVersion": "monitoring.coreos.com/v1", "version": "v1"},
            {"groupVersion": "monitoring.coreos.com/v1alpha1", "version": "v1alpha1"}
        ]),
        "one group, two versions (ScrapeConfig is v1alpha1)"
    );
    let (_, slices) = get(&format!("{url}/apis/discovery.k8s.io/v1")).await;
    assert_eq!(slices["resources"][0]["kind"], "EndpointSlice");
    let (status, _) = get(&format!("{url}/apis/batch/v1")).await;
    assert_eq!(status, 404);
    let (_, version) = get(&format!("{url}/version")).await;
    assert_eq!(version["major"], "1");

    // Unavailable: 503 for everything, still counted.
    double.set_unavailable(true);
    let (status, unavailable) = get(&format!("{url}/api/v1/pods")).await;
    assert_eq!((status, unavailable["code"].as_u64()), (503, Some(503)));
    double.set_unavailable(false);
    assert_eq!(get(&format!("{url}/api/v1/pods")).await.0, 200);
    assert_eq!(double.count(Verb::List, "pods"), 2);

    // Down: connections refused, then back on the same port with the same objects.
    double.set_down().await;
    assert!(http().get(format!("{url}/api")).send().await.is_err());
    double.set_up().await;
    let (status, list) = get(&format!("{url}/api/v1/pods")).await;
    assert_eq!(
        (status, names(&list["items"])),
        (200, vec!["p1".to_owned()])
    );
}

type PodEvents =
    std::pin::Pin<Box<dyn Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Send>>;

/// The next watcher event, which must come within the deadline.
async fn next(events: &mut PodEvents) -> Result<watcher::Event<Pod>, watcher::Error> {
    tokio::time::timeout(DEADLINE, events.next())
        .await
        .expect("a watcher event within the deadline")
        .expect("the watcher stream does not end")
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Init, InitApply for each pod, InitDone: returns the names.
async fn initial_list(events: &mut PodEvents) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    loop {
        match next(events).await {
            Ok(watcher::Event::Init) => names.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                names.insert(pod_name(&pod));
            }
            Ok(watcher::Event::InitDone) => return names,
            other => panic!("unexpected during the initial list: {other:?}"),
        }
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn kube_client(double: &ApiServerDouble) -> kube::Client {
    // One rustls provider (aws-lc-rs) in the whole workspace: rustls picks it by itself.
    let config = kube::Config::new(double.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn kube_watcher_lists_once_watches_once_and_relists_once_after_410() {
    let double = ApiServerDouble::start_with(fast_bookmarks()).await;
    for name in ["p1", "p2", "p3"] {
        double.apply(pod("a", name, "web", "n1"));
    }
    let api: Api<Pod> = Api::all(kube_client(&double));
    let mut config = watcher::Config::default().any_semantic();
    // kube drops resourceVersion=0 when a page size is set.
    config.page_size = None;
    let mut events: PodEvents = watcher(api, config).boxed();

    assert_eq!(initial_list(&mut events).await, set(&["p1", "p2", "p3"]));
    double.apply(pod("a", "p4", "web", "n1"));
    match next(&mut events).await {
        Ok(watcher::Event::Apply(pod)) => assert_eq!(pod_name(&pod), "p4"),
        other => panic!("expected Apply(p4), got {other:?}"),
    }
    double.apply(pod("a", "p1", "web", "n2"));
    match next(&mut events).await {
        Ok(watcher::Event::Apply(pod)) => {
            assert_eq!(pod_name(&pod), "p1");
            assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("n2"));
        }
        other => panic!("expected Apply(p1), got {other:?}"),
    }
    double.delete("Pod", "a", "p2");
    match next(&mut events).await {
        Ok(watcher::Event::Delete(pod)) => assert_eq!(pod_name(&pod), "p2"),
        other => panic!("expected Delete(p2), got {other:?}"),
    }

    // Ten bookmark intervals: the watcher takes the bookmarks without an error or a reconnect.
    let quiet = tokio::time::timeout(Duration::from_secs(1), events.next()).await;
    assert!(quiet.is_err(), "nothing but bookmarks was sent: {quiet:?}");

    let requests = double.requests();
    let pods: Vec<_> = requests.iter().filter(|r| r.resource == "pods").collect();
    assert_eq!(pods.len(), 2, "{pods:#?}");
    let (list, watch) = (pods[0], pods[1]);
    assert_eq!(list.verb, Verb::List);
    assert_eq!(list.param("resourceVersion").as_deref(), Some("0"));
    assert_eq!(
        list.param("resourceVersionMatch").as_deref(),
        Some("NotOlderThan")
    );
    assert_eq!(list.param("limit"), None);
    assert_eq!(watch.verb, Verb::Watch);
    assert_eq!(watch.param("allowWatchBookmarks").as_deref(), Some("true"));
    assert_eq!(watch.param("timeoutSeconds").as_deref(), Some("290"));
    assert_eq!(watch.param("sendInitialEvents"), None);
    // kube 5 sends no User-Agent unless the client's config adds one.
    assert_eq!(list.user_agent, "");
    println!("kube LIST:  {list}\nkube WATCH: {watch}");
    assert_eq!(double.count(Verb::List, "pods"), 1);
    assert_eq!(double.count(Verb::Watch, "pods"), 1);

    // A forced 410: the watcher re-lists exactly once and carries on.
    double.compact();
    double.close_watches();
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected the 410 as an error, got {other:?}"),
    }
    assert_eq!(initial_list(&mut events).await, set(&["p1", "p3", "p4"]));
    double.apply(pod("b", "p5", "web", "n1"));
    match next(&mut events).await {
        Ok(watcher::Event::Apply(pod)) => assert_eq!(pod_name(&pod), "p5"),
        other => panic!("expected Apply(p5), got {other:?}"),
    }
    assert_eq!(double.count(Verb::List, "pods"), 2);
    // The first watch and the one after the re-list; plus, when the close reached the watcher
    // before the compaction's 410 event did, the resumed watch that got the 410 as its answer.
    // Either way exactly one re-LIST, which is what this test is about.
    let watches = double.count(Verb::Watch, "pods");
    assert!(
        watches == 2 || watches == 3,
        "{watches} watches: {:#?}",
        double.requests()
    );
    assert_eq!(double.open_watches("pods"), 1);
}

#[tokio::test]
async fn kube_watcher_resumes_from_the_last_bookmark() {
    let double = ApiServerDouble::start_with(fast_bookmarks()).await;
    double.apply(pod("a", "web-1", "web", "n1"));
    let api: Api<Pod> = Api::all(kube_client(&double));
    let mut config = watcher::Config::default().any_semantic().labels("app=web");
    config.page_size = None;
    let mut events: PodEvents = watcher(api, config).boxed();
    assert_eq!(initial_list(&mut events).await, set(&["web-1"]));

    // A change the selector hides moves the watch on; only a bookmark can tell the client.
    let hidden = double.apply(pod("a", "db-1", "db", "n1"));
    let hidden_rv = hidden["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let quiet = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
    assert!(
        quiet.is_err(),
        "the hidden change is not an event: {quiet:?}"
    );
    double.close_watches();
    // The watcher only re-watches while it is polled; resuming yields no event.
    let resumed = eventually(DEADLINE, "the watcher to resume", || async {
        match double.count(Verb::Watch, "pods") {
            2 => Ok(()),
            n => Err(format!("{n} watches")),
        }
    });
    tokio::select! {
        () = resumed => {}
        event = events.next() => panic!("resuming is not an event: {event:?}"),
    }
    let resumed = double.requests().pop().unwrap();
    assert_eq!(resumed.verb, Verb::Watch);
    assert_eq!(resumed.param("resourceVersion"), Some(hidden_rv));
    assert_eq!(resumed.param("labelSelector").as_deref(), Some("app=web"));
    assert_eq!(double.count(Verb::List, "pods"), 1);
}

#[tokio::test]
async fn kube_client_creates_replaces_patches_and_deletes_leases() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

    let double = ApiServerDouble::start().await;
    let leases: Api<Lease> = Api::namespaced(kube_client(&double), "promshard");
    let api_status = |result: Result<Lease, kube::Error>| match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    };
    assert_eq!(
        api_status(leases.get("master").await),
        (404, "NotFound".to_owned())
    );
    let mut lease = Lease::default();
    lease.metadata.name = Some("master".to_owned());
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("promshard"));
    let rv = created.metadata.resource_version.clone().unwrap();
    assert_eq!(
        api_status(leases.create(&PostParams::default(), &lease).await),
        (409, "AlreadyExists".to_owned())
    );

    let mut mine = created.clone();
    mine.spec = Some(LeaseSpec {
        holder_identity: Some("m1".to_owned()),
        lease_duration_seconds: Some(15),
        ..LeaseSpec::default()
    });
    let replaced = leases
        .replace("master", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // A second master still holding the old version loses.
    let mut theirs = created.clone();
    theirs.spec = Some(LeaseSpec {
        holder_identity: Some("m2".to_owned()),
        ..LeaseSpec::default()
    });
    assert_eq!(
        api_status(
            leases
                .replace("master", &PostParams::default(), &theirs)
                .await
        ),
        (409, "Conflict".to_owned())
    );

    let renew = json!({"spec": {"leaseDurationSeconds": 30}});
    let patched = leases
        .patch("master", &PatchParams::default(), &Patch::Strategic(&renew))
        .await
        .unwrap();
    let spec = patched.spec.unwrap();
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_duration_seconds),
        (Some("m1"), Some(30))
    );
    let apply = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "other"}, "spec": {"holderIdentity": "m3"},
    });
    let applied = leases
        .patch("other", &PatchParams::apply("m3"), &Patch::Apply(&apply))
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().holder_identity.as_deref(), Some("m3"));
    leases
        .delete("master", &DeleteParams::default())
        .await
        .unwrap();
    let names: Vec<String> = leases
        .list(&Default::default())
        .await
        .unwrap()
        .iter()
        .map(|l| l.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["other"]);
    let verbs: Vec<Verb> = double.requests().iter().map(|r| r.verb).collect();
    assert_eq!(
        verbs,
        [
            Verb::Get,
            Verb::Create,
            Verb::Create,
            Verb::Update,
            Verb::Update,
            Verb::Patch,
            Verb::Patch,
            Verb::Delete,
            Verb::List
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watcher_follows_ten_thousand_pods() {
    const PODS: usize = 10_000;
    let double = ApiServerDouble::start().await;
    for i in 0..PODS / 2 {
        double.apply(pod(&format!("ns{}", i % 10), &format!("p{i}"), "web", "n1"));
    }
    let api: Api<Pod> = Api::all(kube_client(&double));
    let mut config = watcher::Config::default().any_semantic();
    config.page_size = None;
    let mut events: PodEvents = watcher(api, config).boxed();
    let started = std::time::Instant::now();
    assert_eq!(initial_list(&mut events).await.len(), PODS / 2);
    let listed = started.elapsed();

    let started = std::time::Instant::now();
    let producer = async {
        for i in PODS / 2..PODS {
            double.apply(pod(&format!("ns{}", i % 10), &format!("p{i}"), "web", "n1"));
        }
        for i in 0..PODS {
            double.delete("pods", &format!("ns{}", i % 10), &format!("p{i}"));
        }
    };
    let consumer = async {
        let (mut applied, mut deleted) = (0, 0);
        while deleted < PODS {
            match next(&mut events).await {
                Ok(watcher::Event::Apply(_)) => applied += 1,
                Ok(watcher::Event::Delete(_)) => deleted += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        applied
    };
    let ((), applied) = tokio::join!(producer, consumer);
    assert_eq!(applied, PODS / 2);
    println!(
        "{} pods listed in {listed:?}; {} events watched in {:?}",
        PODS / 2,
        PODS / 2 + PODS,
        started.elapsed()
    );
    assert_eq!(double.count(Verb::List, "pods"), 1);
    assert_eq!(double.count(Verb::Watch, "pods"), 1);
}

#[tokio::test]
async fn kubectl_lists_and_gets_through_discovery() {
    let Some(kubectl) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|path| path.is_file())
    }) else {
        eprintln!("kubectl not found; skipping");
        return;
    };
    let double = ApiServerDouble::start().await;
    double.apply(pod("default", "web-1", "web", "n1"));
    double.apply(pod("other", "db-1", "db", "n2"));
    double.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv4", "endpoints": [],
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, double.kubeconfig()).unwrap();
    let run = async |args: &[&str]| {
        let output = tokio::process::Command::new(&kubectl)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kubectl {args:?}: {stdout}{stderr}"
        );
        stdout
    };
    let all = run(&["get", "pods", "-A", "-o", "json"]).await;
    let table = run(&["get", "pods"]).await;
    let slices = run(&["get", "endpointslices", "-o", "name"]).await;
    let node = run(&[
        "get",
        "pod",
        "db-1",
        "-n",
        "other",
        "-o",
        "jsonpath={.spec.nodeName}",
    ])
    .await;
    let resources = run(&["api-resources", "--no-headers", "-o", "name"]).await;
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(names(&all["items"]), ["web-1", "db-1"]);
    assert!(
        table.contains("web-1") && !table.contains("db-1"),
        "{table}"
    );
    assert_eq!(slices.trim(), "endpointslice.discovery.k8s.io/web-abc");
    assert_eq!(node, "n2");
    let resources: BTreeSet<&str> = resources.lines().collect();
    for expected in [
        "pods",
        "nodes",
        "endpointslices.discovery.k8s.io",
        "leases.coordination.k8s.io",
    ] {
        assert!(resources.contains(expected), "{expected} in {resources:?}");
    }
    let agents: BTreeSet<String> = double
        .requests()
        .into_iter()
        .map(|r| r.user_agent)
        .collect();
    assert!(
        agents.iter().all(|a| a.starts_with("kubectl")),
        "{agents:?}"
    );
}
