//! The master's LIST/WATCH loop (`discovery::kubernetes::reflector`) against the API-server
//! double, in every combination the API server may offer: protobuf or JSON, streaming lists or
//! not. Each must give the same store: the initial state, then changes; a closed watch resumes
//! from its resourceVersion without a re-sync, a 410 costs exactly one re-sync, and the first
//! refusal of a streaming list is the last.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store};
use promshard_integration_tests::apiserver::{ApiServerDouble, Config, RequestRecord, Verb};
use promshard_integration_tests::eventually::eventually;
use promshard_master::discovery::kubernetes::reflector::{Options, Output, RateLimiter, Reflector};
use serde_json::{Value, json};

fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i}"), "namespace": "ns", "labels": {"app": "a"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "img", "ports": [{"containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": format!("10.0.{}.{}", i / 250, i % 250 + 1)},
    })
}

fn is_sync(r: &RequestRecord) -> bool {
    r.resource == "pods"
        && r.status == 200
        && (r.verb == Verb::List
            || (r.verb == Verb::Watch && r.param("sendInitialEvents").as_deref() == Some("true")))
}

fn count(api: &ApiServerDouble, f: impl Fn(&RequestRecord) -> bool) -> usize {
    api.requests().iter().filter(|r| f(r)).count()
}

fn syncs(api: &ApiServerDouble) -> usize {
    count(api, is_sync)
}

fn watches(api: &ApiServerDouble) -> usize {
    count(api, |r| {
        r.resource == "pods" && r.verb == Verb::Watch && r.status == 200
    })
}

async fn store_has(store: &Store<Pod>, what: &str, f: impl Fn(&Store<Pod>) -> bool) {
    eventually(Duration::from_secs(20), what, || async {
        if f(store) {
            Ok(())
        } else {
            Err(format!("{} pods in the store", store.len()))
        }
    })
    .await;
}

fn label(store: &Store<Pod>, name: &str) -> Option<String> {
    let p = store.get(&ObjectRef::new(name).within("ns"))?;
    p.metadata.labels.as_ref()?.get("app").cloned()
}

/// Runs the whole life of one kind against a double offering `server`, the master asking with
/// `options`; `protobuf_served` and `streamed` say what the exchange must have been.
async fn life(server: Config, options: Options, protobuf_served: bool, streamed: bool) {
    let refusing = options.streaming_lists && !server.streaming_lists;
    let api = ApiServerDouble::start_with(server).await;
    for i in 0..50 {
        api.apply(pod(i));
    }
    let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
    let (store, mut writer) = reflector::store::<Pod>();
    let limiter = Arc::new(RateLimiter::new(50.0, 50));
    let r = Reflector::new::<Pod>(client, "pods", options, limiter);
    let task = tokio::spawn(r.run(move |out: Output<Pod>| {
        if let Output::Event(ev) = out {
            writer.apply_watcher_event(&ev);
        }
    }));

    store_has(&store, "the initial 50 pods", |s| s.len() == 50).await;
    let requests = api.requests();
    let sync = requests.iter().find(|r| is_sync(r)).unwrap();
    assert_eq!(sync.verb == Verb::Watch, streamed, "{sync}");
    let content_type = if !protobuf_served {
        "application/json"
    } else if streamed {
        "application/vnd.kubernetes.protobuf;stream=watch"
    } else {
        "application/vnd.kubernetes.protobuf"
    };
    assert_eq!(sync.content_type, content_type, "{sync}");
    if !streamed {
        assert_eq!(
            sync.param("resourceVersion").as_deref(),
            Some("0"),
            "{sync}"
        );
    }
    // Only what discovery reads is kept, whichever the encoding.
    let p0 = store.get(&ObjectRef::new("p0").within("ns")).unwrap();
    assert_eq!(p0.metadata.managed_fields, None);
    assert_eq!(p0.metadata.creation_timestamp, None);
    assert_eq!(
        p0.status.as_ref().unwrap().pod_ip.as_deref(),
        Some("10.0.0.1")
    );

    // Changes follow: added, modified, deleted.
    api.apply(pod(50));
    let mut p1 = pod(1);
    p1["metadata"]["labels"]["app"] = json!("b");
    api.apply(p1);
    api.delete("pods", "ns", "p2");
    store_has(&store, "added, modified and deleted", |s| {
        s.len() == 50 && label(s, "p50").is_some() && label(s, "p1").as_deref() == Some("b")
    })
    .await;
    assert_eq!(syncs(&api), 1);
    assert_eq!(watches(&api), 1);

    // A closed watch (a timeout, an API server restart) resumes without a re-sync.
    api.close_watches();
    eventually(Duration::from_secs(20), "resumed", || async {
        (watches(&api) == 2 && api.open_watches("pods") == 1)
            .then_some(())
            .ok_or(format!("{} watches", watches(&api)))
    })
    .await;
    api.apply(pod(51));
    store_has(&store, "followed after resuming", |s| {
        label(s, "p51").is_some()
    })
    .await;
    assert_eq!(syncs(&api), 1, "resumed without a re-sync");
    let resumed = api
        .requests()
        .into_iter()
        .filter(|r| r.resource == "pods" && r.verb == Verb::Watch && r.status == 200)
        .nth(1)
        .unwrap();
    assert!(
        resumed.param("resourceVersion").is_some_and(|rv| rv != "0"),
        "{resumed}"
    );

    // 410 Gone: exactly one re-sync, and the store is the same.
    api.compact();
    api.close_watches();
    eventually(Duration::from_secs(20), "re-synced after 410", || async {
        (syncs(&api) == 2 && api.open_watches("pods") == 1)
            .then_some(())
            .ok_or(format!("{} syncs", syncs(&api)))
    })
    .await;
    api.delete("pods", "ns", "p3");
    store_has(&store, "followed after the re-sync", |s| {
        s.len() == 50 && label(s, "p3").is_none() && label(s, "p1").as_deref() == Some("b")
    })
    .await;
    assert_eq!(syncs(&api), 2);
    let refused = count(&api, |r| r.resource == "pods" && r.status == 422);
    assert_eq!(refused, usize::from(refusing), "streaming lists tried once");
    task.abort();
}

const BOTH: Options = Options {
    protobuf: true,
    streaming_lists: true,
};

fn server(protobuf: bool, streaming_lists: bool) -> Config {
    Config {
        protobuf,
        streaming_lists,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_streaming_list() {
    life(server(true, true), BOTH, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_list_when_streaming_lists_are_refused() {
    life(server(true, false), BOTH, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_streaming_list_when_the_server_has_no_protobuf() {
    life(server(false, true), BOTH, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_list_when_the_server_has_neither() {
    life(server(false, false), BOTH, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_list_when_the_master_asks_for_neither() {
    let options = Options {
        protobuf: false,
        streaming_lists: false,
    };
    life(server(true, true), options, false, false).await;
}

/// A server that takes `sendInitialEvents=true` but never ends the initial events: the store
/// is not left waiting for ever; when the server closes the stream the kind lists instead, and
/// goes on listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_that_never_ends_its_initial_events_falls_back_to_list() {
    let api = ApiServerDouble::start_with(Config {
        initial_events_end_never: true,
        ..Config::default()
    })
    .await;
    for i in 0..5 {
        api.apply(pod(i));
    }
    let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
    let (store, mut writer) = reflector::store::<Pod>();
    let limiter = Arc::new(RateLimiter::new(50.0, 50));
    let r = Reflector::new::<Pod>(client, "pods", BOTH, limiter);
    let task = tokio::spawn(r.run(move |out: Output<Pod>| {
        if let Output::Event(ev) = out {
            writer.apply_watcher_event(&ev);
        }
    }));
    eventually(
        Duration::from_secs(20),
        "the streaming list open",
        || async {
            (api.open_watches("pods") == 1)
                .then_some(())
                .ok_or("no watch yet".to_string())
        },
    )
    .await;
    assert_eq!(
        store.len(),
        0,
        "nothing is committed without the end of the initial events"
    );
    // The server's watch timeout, in effect.
    api.close_watches();
    store_has(&store, "the 5 pods, listed", |s| s.len() == 5).await;
    assert_eq!(api.count(Verb::List, "pods"), 1);
    api.compact();
    api.close_watches();
    eventually(Duration::from_secs(20), "re-synced after 410", || async {
        (api.count(Verb::List, "pods") == 2 && api.open_watches("pods") == 1)
            .then_some(())
            .ok_or(format!("{} lists", api.count(Verb::List, "pods")))
    })
    .await;
    let streaming = count(&api, |r| {
        r.param("sendInitialEvents").as_deref() == Some("true")
    });
    assert_eq!(streaming, 1, "one streaming attempt, then LISTs");
    task.abort();
}
