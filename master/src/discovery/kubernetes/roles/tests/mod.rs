//! Upstream's object → target-group cases (`discovery/kubernetes/*_test.go` in Prometheus),
//! ported as table-driven tests over the pure role builders.
//!
//! Common conventions of the ported cases:
//! - Upstream expectations may hold labels with empty values (`__meta_kubernetes_pod_phase:
//!   ""`); our `Labels` drops empty values, so the expected sets are built with
//!   `Labels::from_pairs`, which drops them too. Everything downstream treats missing and empty
//!   labels alike (see the `roles` module docs).
//! - Upstream runs the discoverer against a fake clientset and collects what it sends; the
//!   objects created before or after start become the objects passed to the builder, and the
//!   other objects of the fake clientset become the [`MapLookup`].
//! - Cases that only exercise informer/event plumbing (delete events, the order of updates,
//!   namespace filtering, re-sends on related-object changes) have no object → group mapping
//!   to port; each file lists the ones it skips and why.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use promshard_model::Labels;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Lookup;
use crate::discovery::TargetGroup;

mod endpoints;
mod endpointslice;
mod ingress;
mod node;
mod pod;
mod service;

/// Deserializes a fixture written as the API server's JSON.
pub(super) fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture must deserialize")
}

/// An in-memory [`Lookup`], filled from fixtures by their `kind`.
#[derive(Default)]
pub(super) struct MapLookup {
    pods: HashMap<(String, String), Arc<Pod>>,
    services: HashMap<(String, String), Arc<Service>>,
    nodes: HashMap<String, Arc<Node>>,
    namespaces: HashMap<String, Arc<Namespace>>,
}

impl MapLookup {
    pub(super) fn of(objects: impl IntoIterator<Item = Value>) -> Self {
        let mut l = MapLookup::default();
        for v in objects {
            let kind = v["kind"]
                .as_str()
                .expect("fixture needs a kind")
                .to_string();
            let ns = v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_string();
            match kind.as_str() {
                "Pod" => {
                    l.pods.insert((ns, name), Arc::new(obj(v)));
                }
                "Service" => {
                    l.services.insert((ns, name), Arc::new(obj(v)));
                }
                "Node" => {
                    l.nodes.insert(name, Arc::new(obj(v)));
                }
                "Namespace" => {
                    l.namespaces.insert(name, Arc::new(obj(v)));
                }
                k => panic!("MapLookup does not hold {k}"),
            }
        }
        l
    }
}

impl Lookup for MapLookup {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(name).cloned()
    }
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.get(name).cloned()
    }
}

/// A label set written as upstream's `model.LabelSet` literal; empty values drop out.
pub(super) fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Upstream's expected `targetgroup.Group`.
pub(super) fn group(source: &str, labels: Labels, targets: Vec<Labels>) -> TargetGroup {
    TargetGroup {
        targets,
        labels,
        source: source.to_string(),
    }
}

/// Asserts identical groups, reporting the first difference readably.
#[track_caller]
pub(super) fn assert_group(case: &str, got: &TargetGroup, want: &TargetGroup) {
    assert_eq!(got.source, want.source, "{case}: source");
    assert_eq!(
        got.labels, want.labels,
        "{case}: group labels of {}",
        want.source
    );
    for (i, (g, w)) in got.targets.iter().zip(&want.targets).enumerate() {
        assert_eq!(g, w, "{case}: target {i} of {}", want.source);
    }
    assert_eq!(
        got.targets.len(),
        want.targets.len(),
        "{case}: number of targets: {:#?}",
        got.targets
    );
}

/// `makeNamespace` of upstream's `kubernetes_test.go`.
pub(super) fn namespace(name: &str, labels: Value, annotations: Value) -> Value {
    serde_json::json!({
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
    })
}

#[test]
fn sanitize_label_name_replaces_each_invalid_character() {
    use super::sanitize_label_name;
    // strutil.SanitizeLabelName: [^a-zA-Z0-9_] -> "_", per character (Go regexps match runes).
    let cases = [
        ("app.kubernetes.io/name", "app_kubernetes_io_name"),
        ("test-label", "test_label"),
        ("Already_OK_09", "Already_OK_09"),
        ("ünïcödé", "_n_c_d_"),
        ("a b\tc", "a_b_c"),
        ("9starts-with-digit", "9starts_with_digit"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(sanitize_label_name(input), want, "{input:?}");
    }
}

#[test]
fn labels_colliding_after_sanitizing_are_deterministic() {
    // Upstream's winner depends on Go's random map order; ours is the later key in sorted
    // order, every time.
    let pod: Pod = obj(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a.b": "dot", "a_b": "underscore"}},
        "status": {"podIP": "10.0.0.1"},
    }));
    let got = super::pod_group(&pod, &super::RoleOptions::default(), &super::NoLookup);
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_label_a_b"),
        Some("underscore")
    );
}
