//! Ported from Prometheus `discovery/kubernetes/node_test.go`.
//!
//! Ported: TestNodeDiscoveryBeforeStart, TestNodeDiscoveryAdd, TestNodeDiscoveryUpdate (the
//! updated object).
//!
//! Skipped: TestNodeDiscoveryDelete (a delete event sends an empty group for the source:
//! event plumbing, no object to build from).
//!
//! The newest `node_test.go` reachable here predates upstream's `providerID` argument to
//! `makeNode` (which other test files already use); its node fixtures have no provider ID, so
//! `__meta_kubernetes_node_provider_id` is empty and drops out. The provider ID, the address
//! preference and the no-address case of `node.go` are pinned by the cases after
//! `// Beyond upstream's tests`.

use serde_json::{Value, json};

use super::*;
use crate::discovery::kubernetes::roles::node_group;

/// `makeNode(name, address, providerID, labels, annotations)`.
pub(super) fn make_node(
    name: &str,
    address: &str,
    provider_id: &str,
    labels: Value,
    annotations: Value,
) -> Value {
    json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"providerID": provider_id},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    })
}

fn make_enumerated_node(i: u32) -> Value {
    make_node(&format!("test{i}"), "1.2.3.4", "", json!({}), json!({}))
}

fn node_target(name: &str) -> Labels {
    ls(&[
        ("__address__", "1.2.3.4:10250"),
        ("instance", name),
        ("__meta_kubernetes_node_address_InternalIP", "1.2.3.4"),
    ])
}

#[test]
fn upstream_node_cases() {
    let cases: Vec<(&str, Value, TargetGroup)> = vec![
        (
            "TestNodeDiscoveryBeforeStart",
            make_node(
                "test",
                "1.2.3.4",
                "",
                json!({"test-label": "testvalue"}),
                json!({"test-annotation": "testannotationvalue"}),
            ),
            group(
                "node/test",
                ls(&[
                    ("__meta_kubernetes_node_name", "test"),
                    ("__meta_kubernetes_node_label_test_label", "testvalue"),
                    ("__meta_kubernetes_node_labelpresent_test_label", "true"),
                    (
                        "__meta_kubernetes_node_annotation_test_annotation",
                        "testannotationvalue",
                    ),
                    (
                        "__meta_kubernetes_node_annotationpresent_test_annotation",
                        "true",
                    ),
                ]),
                vec![node_target("test")],
            ),
        ),
        (
            "TestNodeDiscoveryAdd",
            make_enumerated_node(1),
            group(
                "node/test1",
                ls(&[("__meta_kubernetes_node_name", "test1")]),
                vec![node_target("test1")],
            ),
        ),
        (
            "TestNodeDiscoveryUpdate",
            make_node(
                "test0",
                "1.2.3.4",
                "",
                json!({"Unschedulable": "true"}),
                json!({}),
            ),
            group(
                "node/test0",
                ls(&[
                    ("__meta_kubernetes_node_label_Unschedulable", "true"),
                    ("__meta_kubernetes_node_labelpresent_Unschedulable", "true"),
                    ("__meta_kubernetes_node_name", "test0"),
                ]),
                vec![node_target("test0")],
            ),
        ),
    ];
    for (name, node, want) in cases {
        let got = node_group(&obj(node)).expect("node has an address");
        assert_group(name, &got, &want);
    }
}

// Beyond upstream's tests: behaviour of node.go that its tests leave out.

#[test]
fn provider_id_and_every_address_type() {
    let mut node = make_node(
        "n",
        "10.0.0.1",
        "aws:///eu-west-1a/i-0123",
        json!({}),
        json!({}),
    );
    node["status"]["addresses"] = json!([
        {"type": "Hostname", "address": "n.example"},
        {"type": "ExternalIP", "address": "203.0.113.1"},
        {"type": "InternalIP", "address": "10.0.0.1"},
        {"type": "InternalIP", "address": "10.0.0.2"},
    ]);
    let got = node_group(&obj(node)).unwrap();
    assert_group(
        "all address types",
        &got,
        &group(
            "node/n",
            ls(&[
                ("__meta_kubernetes_node_name", "n"),
                (
                    "__meta_kubernetes_node_provider_id",
                    "aws:///eu-west-1a/i-0123",
                ),
            ]),
            vec![ls(&[
                ("__address__", "10.0.0.1:10250"),
                ("instance", "n"),
                ("__meta_kubernetes_node_address_Hostname", "n.example"),
                ("__meta_kubernetes_node_address_ExternalIP", "203.0.113.1"),
                ("__meta_kubernetes_node_address_InternalIP", "10.0.0.1"),
            ])],
        ),
    );
}

#[test]
fn address_preference() {
    // InternalIP, InternalDNS, ExternalIP, ExternalDNS, LegacyHostIP, Hostname.
    let order = [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "LegacyHostIP",
        "Hostname",
    ];
    for (i, want) in order.iter().enumerate() {
        let addresses: Vec<Value> = order[i..]
            .iter()
            .rev()
            .map(|t| json!({"type": t, "address": format!("{t}.addr")}))
            .collect();
        let mut node = make_node("n", "", "", json!({}), json!({}));
        node["status"]["addresses"] = json!(addresses);
        let got = node_group(&obj(node)).unwrap();
        assert_eq!(
            got.targets[0].get("__address__"),
            Some(format!("{want}.addr:10250").as_str()),
            "{want}"
        );
    }
}

#[test]
fn ipv6_address_and_missing_kubelet_port() {
    let mut node = make_node("n", "fd00::1", "", json!({}), json!({}));
    node["status"]["daemonEndpoints"] = json!({});
    let got = node_group(&obj(node)).unwrap();
    assert_eq!(got.targets[0].get("__address__"), Some("[fd00::1]:0"));
}

#[test]
fn node_without_address_sends_nothing() {
    let mut node = make_node("n", "", "", json!({}), json!({}));
    node["status"]["addresses"] = json!([]);
    assert_eq!(node_group(&obj(node)), None);
}
