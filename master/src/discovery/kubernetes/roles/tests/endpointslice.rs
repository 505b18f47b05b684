//! Ported from Prometheus `discovery/kubernetes/endpointslice_test.go`.
//!
//! Ported: TestEndpointSliceDiscoveryBeforeRun, TestEndpointSliceDiscoveryAdd,
//! TestEndpointSliceDiscoveryUpdate (the updated object),
//! TestEndpointSliceDiscoveryEmptyEndpoints (the updated object),
//! TestEndpointSliceDiscoveryWithService, TestEndpointSliceDiscoveryWithServiceUpdate (the
//! updated service), TestEndpointsSlicesDiscoveryWithNodeMetadata,
//! TestEndpointSliceDiscoveryNamespaces, TestEndpointSliceDiscoveryOwnNamespace (the
//! own-namespace object; which namespaces are watched is the wiring's job),
//! TestEndpointSliceDiscoverySidecarContainer, TestEndpointsSlicesDiscoveryWithNamespaceMetadata,
//! TestEndpointsSlicesDiscoveryWithUpdatedNamespaceMetadata (the updated namespace).
//!
//! Skipped:
//! - TestEndpointSliceDiscoveryDelete: a delete event sends an empty group for the source
//!   (event plumbing, no object to build from).
//! - TestEndpointsSlicesDiscoveryWithUpdatedNodeMetadata: it asserts that the group keeps the
//!   node's *old* labels after the node changed, because upstream's node index skips endpoints
//!   whose target ref is not a Node or a Pod with a node name, so the group is never re-sent.
//!   That is which events trigger a re-send, not an object → group mapping.
//! - TestEndpointSliceDiscoveryEmptyPodStatus: it runs role *endpoints* over an EndpointSlice
//!   object and expects nothing; no object → group mapping of this role is involved.
//! - TestEndpointSliceInfIndexersCount: counts informer indexers (informer internals).

use serde_json::{Value, json};

use super::*;
use crate::discovery::kubernetes::roles::{NoLookup, RoleOptions, endpointslice_group};

fn make_endpoint_slice_v1(namespace: &str) -> Value {
    json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": "testendpoints", "namespace": namespace,
            "labels": {"kubernetes.io/service-name": "testendpoints"},
            "annotations": {"test.annotation": "test"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "testport", "port": 9000, "protocol": "TCP", "appProtocol": "http"}],
        "endpoints": [
            {
                "addresses": ["1.2.3.4"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "hostname": "testendpoint1",
                "targetRef": {},
                "nodeName": "foobar",
                "deprecatedTopology": {"topology": "value"},
                "zone": "us-east-1a",
            },
            {
                "addresses": ["2.3.4.5"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "zone": "us-east-1b",
            },
            {
                "addresses": ["3.4.5.6"],
                "conditions": {"ready": false, "serving": true, "terminating": true},
                "zone": "us-east-1c",
            },
            {
                "addresses": ["4.5.6.7"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Node", "name": "barbaz"},
                "zone": "us-east-1a",
            },
        ],
    })
}

const PORT_LABELS: [(&str, &str); 4] = [
    ("__meta_kubernetes_endpointslice_port", "9000"),
    ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
    ("__meta_kubernetes_endpointslice_port_name", "testport"),
    ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
];

fn target(pairs: &[(&str, &str)]) -> Labels {
    let mut all = pairs.to_vec();
    all.extend_from_slice(&PORT_LABELS);
    ls(&all)
}

/// The targets of `makeEndpointSliceV1` (the first `n`), with extra labels for the first and
/// the fourth.
fn slice_targets(n: usize, first: &[(&str, &str)], fourth: &[(&str, &str)]) -> Vec<Labels> {
    let mut t0 = vec![
        ("__address__", "1.2.3.4:9000"),
        ("__meta_kubernetes_endpointslice_address_target_kind", ""),
        ("__meta_kubernetes_endpointslice_address_target_name", ""),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
            "false",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_hostname",
            "testendpoint1",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            "foobar",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_present_topology",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_topology_topology",
            "value",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_zone",
            "us-east-1a",
        ),
    ];
    t0.extend_from_slice(first);
    let mut t3 = vec![
        ("__address__", "4.5.6.7:9000"),
        (
            "__meta_kubernetes_endpointslice_address_target_kind",
            "Node",
        ),
        (
            "__meta_kubernetes_endpointslice_address_target_name",
            "barbaz",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
            "false",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_zone",
            "us-east-1a",
        ),
    ];
    t3.extend_from_slice(fourth);
    let all = vec![
        target(&t0),
        target(&[
            ("__address__", "2.3.4.5:9000"),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                "true",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
                "true",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
                "false",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_zone",
                "us-east-1b",
            ),
        ]),
        target(&[
            ("__address__", "3.4.5.6:9000"),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                "false",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
                "true",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
                "true",
            ),
            (
                "__meta_kubernetes_endpointslice_endpoint_zone",
                "us-east-1c",
            ),
        ]),
        target(&t3),
    ];
    all.into_iter().take(n).collect()
}

/// The group of `makeEndpointSliceV1(ns)`, with extra group labels.
fn slice_group(ns: &str, extra: &[(&str, &str)], targets: Vec<Labels>) -> TargetGroup {
    let mut labels = vec![
        ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
        ("__meta_kubernetes_namespace", ns),
        ("__meta_kubernetes_endpointslice_name", "testendpoints"),
        (
            "__meta_kubernetes_endpointslice_label_kubernetes_io_service_name",
            "testendpoints",
        ),
        (
            "__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_annotation_test_annotation",
            "test",
        ),
        (
            "__meta_kubernetes_endpointslice_annotationpresent_test_annotation",
            "true",
        ),
    ];
    labels.extend_from_slice(extra);
    group(
        &format!("endpointslice/{ns}/testendpoints"),
        ls(&labels),
        targets,
    )
}

fn service(ns: &str, labels: Value) -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "testendpoints", "namespace": ns, "labels": labels},
    })
}

fn pod_labels(pairs: &[(&str, &str)], pod_ip: &str) -> Labels {
    let mut all = vec![
        ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
        ("__meta_kubernetes_pod_ip", pod_ip),
        ("__meta_kubernetes_pod_name", "testpod"),
        ("__meta_kubernetes_pod_node_name", "testnode"),
        ("__meta_kubernetes_pod_phase", ""),
        ("__meta_kubernetes_pod_ready", "unknown"),
        ("__meta_kubernetes_pod_uid", "deadbeef"),
    ];
    all.extend_from_slice(pairs);
    ls(&all)
}

fn one_port_slice(name: &str, ns: &str, ports: Value, endpoint: Value) -> Value {
    json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [endpoint],
    })
}

#[test]
fn upstream_endpointslice_cases() {
    let none = RoleOptions::default();
    let with_node = RoleOptions {
        attach_node: true,
        ..RoleOptions::default()
    };
    let with_ns = RoleOptions {
        attach_namespace: true,
        ..RoleOptions::default()
    };
    let app_test = [
        ("__meta_kubernetes_service_label_app_name", "test"),
        ("__meta_kubernetes_service_labelpresent_app_name", "true"),
        ("__meta_kubernetes_service_name", "testendpoints"),
    ];
    let testport = json!([{"name": "testport", "port": 9000, "protocol": "TCP"}]);
    let pod_ref = |ns: &str| json!({"kind": "Pod", "name": "testpod", "namespace": ns});
    let one_container_pod = |ns: &str, container: &str| {
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "testpod", "namespace": ns, "uid": "deadbeef"},
            "spec": {"nodeName": "testnode", "containers": [
                {"name": container, "image": format!("{container}:latest"), "ports": [
                    {"name": "mainport", "containerPort": 9000, "protocol": "TCP"}]},
            ]},
            "status": {"hostIP": "2.3.4.5", "podIP": "4.3.2.1"},
        })
    };
    let add_pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "testpod", "namespace": "default", "uid": "deadbeef"},
        "spec": {"nodeName": "testnode", "containers": [
            {"name": "c1", "image": "c1:latest", "ports": [
                {"name": "mainport", "containerPort": 9000, "protocol": "TCP"}]},
            {"name": "c2", "image": "c2:latest", "ports": [
                {"name": "sideport", "containerPort": 9001, "protocol": "TCP"}]},
        ]},
        "status": {"hostIP": "2.3.4.5", "podIP": "1.2.3.4"},
    });
    let sidecar_pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "testpod", "namespace": "default", "uid": "deadbeef"},
        "spec": {
            "nodeName": "testnode",
            "initContainers": [
                {"name": "ic1", "image": "ic1:latest", "ports": [
                    {"name": "initport", "containerPort": 1111, "protocol": "TCP"}]},
                {"name": "ic2", "image": "ic2:latest", "ports": [
                    {"name": "initport", "containerPort": 9111, "protocol": "TCP"}]},
            ],
            "containers": [
                {"name": "c1", "image": "c1:latest", "ports": [
                    {"name": "mainport", "containerPort": 9000, "protocol": "TCP"}]},
            ],
        },
        "status": {"hostIP": "2.3.4.5", "podIP": "4.3.2.1"},
    });

    let mut updated = make_endpoint_slice_v1("default");
    updated["metadata"]["labels"] = Value::Null;
    updated["metadata"]["annotations"] = Value::Null;
    updated["endpoints"].as_array_mut().unwrap().truncate(2);
    let mut empty = make_endpoint_slice_v1("default");
    empty["endpoints"] = json!([]);
    let mut ns1_slice = make_endpoint_slice_v1("default");
    ns1_slice["metadata"]["namespace"] = json!("ns1");
    let mut own_slice = make_endpoint_slice_v1("default");
    own_slice["metadata"]["namespace"] = json!("own-ns");

    let bare_labels = |ns: &str, name: &str| {
        ls(&[
            ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
            ("__meta_kubernetes_endpointslice_name", name),
            ("__meta_kubernetes_namespace", ns),
        ])
    };
    let mainport_c1 = [
        ("__meta_kubernetes_pod_container_name", "c1"),
        ("__meta_kubernetes_pod_container_image", "c1:latest"),
        ("__meta_kubernetes_pod_container_port_name", "mainport"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ];
    fn pod_endpoint(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut t = vec![
            ("__address__", "4.3.2.1:9000"),
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            (
                "__meta_kubernetes_endpointslice_address_target_name",
                "testpod",
            ),
            ("__meta_kubernetes_endpointslice_port", "9000"),
            ("__meta_kubernetes_endpointslice_port_name", "testport"),
            ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
        ];
        t.extend_from_slice(extra);
        t
    }

    // (upstream test, slice, options, lookup objects, expected group)
    let cases: Vec<(&str, Value, RoleOptions, Vec<Value>, TargetGroup)> = vec![
        (
            "TestEndpointSliceDiscoveryBeforeRun",
            make_endpoint_slice_v1("default"),
            none,
            vec![],
            slice_group("default", &[], slice_targets(4, &[], &[])),
        ),
        (
            "TestEndpointSliceDiscoveryAdd",
            one_port_slice(
                "testendpoints",
                "default",
                testport.clone(),
                json!({"addresses": ["4.3.2.1"], "targetRef": pod_ref("default"), "conditions": {"ready": false}}),
            ),
            none,
            vec![add_pod],
            group(
                "endpointslice/default/testendpoints",
                bare_labels("default", "testendpoints"),
                vec![
                    pod_labels(
                        &[
                            pod_endpoint(&[(
                                "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
                                "false",
                            )])
                            .as_slice(),
                            &mainport_c1,
                        ]
                        .concat(),
                        "1.2.3.4",
                    ),
                    pod_labels(
                        &[
                            ("__address__", "1.2.3.4:9001"),
                            ("__meta_kubernetes_pod_container_name", "c2"),
                            ("__meta_kubernetes_pod_container_image", "c2:latest"),
                            ("__meta_kubernetes_pod_container_port_name", "sideport"),
                            ("__meta_kubernetes_pod_container_port_number", "9001"),
                            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_init", "false"),
                        ],
                        "1.2.3.4",
                    ),
                ],
            ),
        ),
        (
            "TestEndpointSliceDiscoveryUpdate",
            updated,
            none,
            vec![],
            group(
                "endpointslice/default/testendpoints",
                bare_labels("default", "testendpoints"),
                slice_targets(2, &[], &[]),
            ),
        ),
        (
            "TestEndpointSliceDiscoveryEmptyEndpoints",
            empty,
            none,
            vec![],
            slice_group("default", &[], vec![]),
        ),
        (
            "TestEndpointSliceDiscoveryWithService",
            make_endpoint_slice_v1("default"),
            none,
            vec![service("default", json!({"app/name": "test"}))],
            slice_group("default", &app_test, slice_targets(4, &[], &[])),
        ),
        (
            "TestEndpointSliceDiscoveryWithServiceUpdate",
            make_endpoint_slice_v1("default"),
            none,
            vec![service(
                "default",
                json!({"app/name": "svc", "component": "testing"}),
            )],
            slice_group(
                "default",
                &[
                    ("__meta_kubernetes_service_label_app_name", "svc"),
                    ("__meta_kubernetes_service_label_component", "testing"),
                    ("__meta_kubernetes_service_labelpresent_app_name", "true"),
                    ("__meta_kubernetes_service_labelpresent_component", "true"),
                    ("__meta_kubernetes_service_name", "testendpoints"),
                ],
                slice_targets(4, &[], &[]),
            ),
        ),
        (
            "TestEndpointsSlicesDiscoveryWithNodeMetadata",
            make_endpoint_slice_v1("default"),
            with_node,
            vec![
                super::node::make_node("foobar", "", "", json!({"az": "us-east1"}), Value::Null),
                super::node::make_node("barbaz", "", "", json!({"az": "us-west2"}), Value::Null),
                service("default", json!({"app/name": "test"})),
            ],
            slice_group(
                "default",
                &app_test,
                slice_targets(
                    4,
                    &[
                        ("__meta_kubernetes_node_label_az", "us-east1"),
                        ("__meta_kubernetes_node_labelpresent_az", "true"),
                        ("__meta_kubernetes_node_name", "foobar"),
                    ],
                    &[
                        ("__meta_kubernetes_node_label_az", "us-west2"),
                        ("__meta_kubernetes_node_labelpresent_az", "true"),
                        ("__meta_kubernetes_node_name", "barbaz"),
                    ],
                ),
            ),
        ),
        (
            "TestEndpointSliceDiscoveryNamespaces/ns1",
            ns1_slice,
            none,
            vec![
                service("ns1", json!({"app": "app1"})),
                one_container_pod("ns2", "c1"),
            ],
            slice_group(
                "ns1",
                &[
                    ("__meta_kubernetes_service_label_app", "app1"),
                    ("__meta_kubernetes_service_labelpresent_app", "true"),
                    ("__meta_kubernetes_service_name", "testendpoints"),
                ],
                slice_targets(4, &[], &[]),
            ),
        ),
        (
            "TestEndpointSliceDiscoveryNamespaces/ns2",
            one_port_slice(
                "testendpoints",
                "ns2",
                testport.clone(),
                json!({"addresses": ["4.3.2.1"], "targetRef": pod_ref("ns2")}),
            ),
            none,
            vec![
                service("ns1", json!({"app": "app1"})),
                one_container_pod("ns2", "c1"),
            ],
            group(
                "endpointslice/ns2/testendpoints",
                bare_labels("ns2", "testendpoints"),
                vec![pod_labels(
                    &[pod_endpoint(&[]).as_slice(), &mainport_c1].concat(),
                    "4.3.2.1",
                )],
            ),
        ),
        (
            "TestEndpointSliceDiscoveryOwnNamespace",
            own_slice,
            none,
            vec![
                one_container_pod("own-ns", "p1"),
                one_container_pod("non-own-ns", "p1"),
            ],
            slice_group("own-ns", &[], slice_targets(4, &[], &[])),
        ),
        (
            "TestEndpointSliceDiscoverySidecarContainer",
            one_port_slice(
                "testsidecar",
                "default",
                json!([
                    {"name": "testport", "port": 9000, "protocol": "TCP"},
                    {"name": "initport", "port": 9111, "protocol": "TCP"},
                ]),
                json!({"addresses": ["4.3.2.1"], "targetRef": pod_ref("default")}),
            ),
            none,
            vec![sidecar_pod],
            group(
                "endpointslice/default/testsidecar",
                bare_labels("default", "testsidecar"),
                vec![
                    pod_labels(
                        &[
                            ("__address__", "4.3.2.1:9000"),
                            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
                            (
                                "__meta_kubernetes_endpointslice_address_target_name",
                                "testpod",
                            ),
                            ("__meta_kubernetes_endpointslice_port", "9000"),
                            ("__meta_kubernetes_endpointslice_port_name", "testport"),
                            ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_image", "c1:latest"),
                            ("__meta_kubernetes_pod_container_name", "c1"),
                            ("__meta_kubernetes_pod_container_port_name", "mainport"),
                            ("__meta_kubernetes_pod_container_port_number", "9000"),
                            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_init", "false"),
                        ],
                        "4.3.2.1",
                    ),
                    pod_labels(
                        &[
                            ("__address__", "4.3.2.1:9111"),
                            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
                            (
                                "__meta_kubernetes_endpointslice_address_target_name",
                                "testpod",
                            ),
                            ("__meta_kubernetes_endpointslice_port", "9111"),
                            ("__meta_kubernetes_endpointslice_port_name", "initport"),
                            ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_image", "ic2:latest"),
                            ("__meta_kubernetes_pod_container_name", "ic2"),
                            ("__meta_kubernetes_pod_container_port_name", "initport"),
                            ("__meta_kubernetes_pod_container_port_number", "9111"),
                            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_init", "true"),
                        ],
                        "4.3.2.1",
                    ),
                    pod_labels(
                        &[
                            ("__address__", "4.3.2.1:1111"),
                            ("__meta_kubernetes_pod_container_image", "ic1:latest"),
                            ("__meta_kubernetes_pod_container_name", "ic1"),
                            ("__meta_kubernetes_pod_container_port_name", "initport"),
                            ("__meta_kubernetes_pod_container_port_number", "1111"),
                            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                            ("__meta_kubernetes_pod_container_init", "true"),
                        ],
                        "4.3.2.1",
                    ),
                ],
            ),
        ),
        (
            "TestEndpointsSlicesDiscoveryWithNamespaceMetadata",
            make_endpoint_slice_v1("test-ns"),
            with_ns,
            vec![
                namespace(
                    "test-ns",
                    json!({"service": "web", "layer": "frontend"}),
                    json!({"contact": "platform", "release": "v5.6.7"}),
                ),
                service("test-ns", json!({"app/name": "test"})),
            ],
            slice_group(
                "test-ns",
                &[
                    ("__meta_kubernetes_namespace_annotation_contact", "platform"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_contact",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_release", "v5.6.7"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_release",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_service", "web"),
                    ("__meta_kubernetes_namespace_labelpresent_service", "true"),
                    ("__meta_kubernetes_namespace_label_layer", "frontend"),
                    ("__meta_kubernetes_namespace_labelpresent_layer", "true"),
                    app_test[0],
                    app_test[1],
                    app_test[2],
                ],
                slice_targets(4, &[], &[]),
            ),
        ),
        (
            "TestEndpointsSlicesDiscoveryWithUpdatedNamespaceMetadata",
            make_endpoint_slice_v1("test-ns"),
            with_ns,
            vec![
                namespace(
                    "test-ns",
                    json!({"component": "cache", "layer": "backend", "region": "us-central"}),
                    json!({"contact": "sre", "release": "v6.7.8", "monitoring": "enabled"}),
                ),
                service("test-ns", json!({"app/name": "test"})),
            ],
            slice_group(
                "test-ns",
                &[
                    ("__meta_kubernetes_namespace_annotation_contact", "sre"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_contact",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_release", "v6.7.8"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_release",
                        "true",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotation_monitoring",
                        "enabled",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_monitoring",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_component", "cache"),
                    ("__meta_kubernetes_namespace_labelpresent_component", "true"),
                    ("__meta_kubernetes_namespace_label_layer", "backend"),
                    ("__meta_kubernetes_namespace_labelpresent_layer", "true"),
                    ("__meta_kubernetes_namespace_label_region", "us-central"),
                    ("__meta_kubernetes_namespace_labelpresent_region", "true"),
                    app_test[0],
                    app_test[1],
                    app_test[2],
                ],
                slice_targets(4, &[], &[]),
            ),
        ),
    ];
    for (name, eps, opts, objects, want) in cases {
        let lookup = MapLookup::of(objects);
        assert_group(name, &endpointslice_group(&obj(eps), &opts, &lookup), &want);
    }
}

// Beyond upstream's tests: behaviour of endpointslice.go that its tests leave out.

#[test]
fn node_metadata_prefers_node_target_ref_over_node_name() {
    let eps = one_port_slice(
        "s",
        "ns",
        json!([{"port": 1}]),
        json!({"addresses": ["1.1.1.1"], "nodeName": "a", "targetRef": {"kind": "Node", "name": "b"}}),
    );
    let lookup = MapLookup::of([
        super::node::make_node("a", "", "", json!({}), Value::Null),
        super::node::make_node("b", "", "", json!({}), Value::Null),
    ]);
    let opts = RoleOptions {
        attach_node: true,
        ..RoleOptions::default()
    };
    let got = endpointslice_group(&obj(eps), &opts, &lookup);
    assert_eq!(got.targets[0].get("__meta_kubernetes_node_name"), Some("b"));
}

#[test]
fn port_without_number_gives_a_bare_address_and_no_ports_no_targets() {
    let eps = one_port_slice(
        "s",
        "ns",
        json!([{"name": "p"}]),
        json!({"addresses": ["fd00::1"]}),
    );
    let got = endpointslice_group(&obj(eps), &RoleOptions::default(), &NoLookup);
    assert_eq!(
        got.targets,
        [ls(&[
            ("__address__", "fd00::1"),
            ("__meta_kubernetes_endpointslice_port_name", "p")
        ])]
    );
    let eps = one_port_slice("s", "ns", Value::Null, json!({"addresses": ["1.1.1.1"]}));
    assert!(
        endpointslice_group(&obj(eps), &RoleOptions::default(), &NoLookup)
            .targets
            .is_empty()
    );
    let eps = one_port_slice(
        "s",
        "ns",
        json!([{"port": 80}]),
        json!({"addresses": ["fd00::1"]}),
    );
    let got = endpointslice_group(&obj(eps), &RoleOptions::default(), &NoLookup);
    assert_eq!(got.targets[0].get("__address__"), Some("[fd00::1]:80"));
}
