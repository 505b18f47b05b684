//! Ported from Prometheus `discovery/kubernetes/service_test.go`.
//!
//! Ported: TestServiceDiscoveryAdd (all three services), TestServiceDiscoveryUpdate (the
//! updated object), TestServiceDiscoveryNamespaces, TestServiceDiscoveryOwnNamespace (the
//! own-namespace object; which namespaces are watched is the wiring's job),
//! TestServiceDiscoveryAllNamespaces, TestServiceDiscoveryWithNamespaceMetadata,
//! TestServiceDiscoveryWithUpdatedNamespaceMetadata (the updated namespace).
//!
//! Skipped: TestServiceDiscoveryDelete (a delete event sends an empty group for the source:
//! event plumbing, no object to build from).

use serde_json::{Value, json};

use super::*;
use crate::discovery::kubernetes::roles::{NoLookup, RoleOptions, service_group};

fn make_multi_port_service() -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {
            "name": "testservice", "namespace": "default",
            "labels": {"test-label": "testvalue"},
            "annotations": {"test-annotation": "testannotationvalue"},
        },
        "spec": {
            "ports": [
                {"name": "testport0", "protocol": "TCP", "port": 30900},
                {"name": "testport1", "protocol": "UDP", "port": 30901},
            ],
            "type": "ClusterIP", "clusterIP": "10.0.0.1",
        },
    })
}

fn make_service(namespace: &str) -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "testservice", "namespace": namespace},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 30900}],
            "type": "ClusterIP", "clusterIP": "10.0.0.1",
        },
    })
}

fn make_external_service() -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "testservice-external", "namespace": "default"},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 31900}],
            "type": "ExternalName", "externalName": "FooExternalName",
        },
    })
}

fn make_load_balancer_service() -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "testservice-loadbalancer", "namespace": "default"},
        "spec": {
            "ports": [{"name": "testport", "protocol": "TCP", "port": 31900}],
            "type": "LoadBalancer", "loadBalancerIP": "127.0.0.1", "clusterIP": "10.0.0.1",
        },
    })
}

/// The group of `makeService(ns)`, with `extra` group labels.
fn testservice(ns: &str, extra: &[(&str, &str)]) -> TargetGroup {
    let mut labels = vec![
        ("__meta_kubernetes_service_name", "testservice"),
        ("__meta_kubernetes_namespace", ns),
    ];
    labels.extend_from_slice(extra);
    group(
        &format!("svc/{ns}/testservice"),
        ls(&labels),
        vec![ls(&[
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__address__", &format!("testservice.{ns}.svc:30900")),
            ("__meta_kubernetes_service_type", "ClusterIP"),
            ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
            ("__meta_kubernetes_service_port_name", "testport"),
            ("__meta_kubernetes_service_port_number", "30900"),
        ])],
    )
}

#[test]
fn upstream_service_cases() {
    let none = RoleOptions::default();
    let with_ns = RoleOptions {
        attach_namespace: true,
        ..RoleOptions::default()
    };
    // (upstream test, service, options, lookup objects, expected group)
    let cases: Vec<(&str, Value, RoleOptions, Vec<Value>, TargetGroup)> = vec![
        (
            "TestServiceDiscoveryAdd/testservice",
            make_service("default"),
            none,
            vec![],
            testservice("default", &[]),
        ),
        (
            "TestServiceDiscoveryAdd/testservice-external",
            make_external_service(),
            none,
            vec![],
            group(
                "svc/default/testservice-external",
                ls(&[
                    ("__meta_kubernetes_service_name", "testservice-external"),
                    ("__meta_kubernetes_namespace", "default"),
                ]),
                vec![ls(&[
                    ("__meta_kubernetes_service_port_protocol", "TCP"),
                    ("__address__", "testservice-external.default.svc:31900"),
                    ("__meta_kubernetes_service_type", "ExternalName"),
                    ("__meta_kubernetes_service_port_name", "testport"),
                    ("__meta_kubernetes_service_port_number", "31900"),
                    ("__meta_kubernetes_service_external_name", "FooExternalName"),
                ])],
            ),
        ),
        (
            "TestServiceDiscoveryAdd/testservice-loadbalancer",
            make_load_balancer_service(),
            none,
            vec![],
            group(
                "svc/default/testservice-loadbalancer",
                ls(&[
                    ("__meta_kubernetes_service_name", "testservice-loadbalancer"),
                    ("__meta_kubernetes_namespace", "default"),
                ]),
                vec![ls(&[
                    ("__meta_kubernetes_service_port_protocol", "TCP"),
                    ("__address__", "testservice-loadbalancer.default.svc:31900"),
                    ("__meta_kubernetes_service_type", "LoadBalancer"),
                    ("__meta_kubernetes_service_port_name", "testport"),
                    ("__meta_kubernetes_service_port_number", "31900"),
                    ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                    ("__meta_kubernetes_service_loadbalancer_ip", "127.0.0.1"),
                ])],
            ),
        ),
        (
            "TestServiceDiscoveryUpdate",
            make_multi_port_service(),
            none,
            vec![],
            group(
                "svc/default/testservice",
                ls(&[
                    ("__meta_kubernetes_service_name", "testservice"),
                    ("__meta_kubernetes_namespace", "default"),
                    ("__meta_kubernetes_service_label_test_label", "testvalue"),
                    ("__meta_kubernetes_service_labelpresent_test_label", "true"),
                    (
                        "__meta_kubernetes_service_annotation_test_annotation",
                        "testannotationvalue",
                    ),
                    (
                        "__meta_kubernetes_service_annotationpresent_test_annotation",
                        "true",
                    ),
                ]),
                vec![
                    ls(&[
                        ("__meta_kubernetes_service_port_protocol", "TCP"),
                        ("__address__", "testservice.default.svc:30900"),
                        ("__meta_kubernetes_service_type", "ClusterIP"),
                        ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                        ("__meta_kubernetes_service_port_name", "testport0"),
                        ("__meta_kubernetes_service_port_number", "30900"),
                    ]),
                    ls(&[
                        ("__meta_kubernetes_service_port_protocol", "UDP"),
                        ("__address__", "testservice.default.svc:30901"),
                        ("__meta_kubernetes_service_type", "ClusterIP"),
                        ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                        ("__meta_kubernetes_service_port_name", "testport1"),
                        ("__meta_kubernetes_service_port_number", "30901"),
                    ]),
                ],
            ),
        ),
        (
            "TestServiceDiscoveryNamespaces/ns1",
            make_service("ns1"),
            none,
            vec![],
            testservice("ns1", &[]),
        ),
        (
            "TestServiceDiscoveryNamespaces/ns2",
            make_service("ns2"),
            none,
            vec![],
            testservice("ns2", &[]),
        ),
        (
            "TestServiceDiscoveryOwnNamespace",
            make_service("own-ns"),
            none,
            vec![],
            testservice("own-ns", &[]),
        ),
        (
            "TestServiceDiscoveryAllNamespaces/own-ns",
            make_service("own-ns"),
            none,
            vec![],
            testservice("own-ns", &[]),
        ),
        (
            "TestServiceDiscoveryAllNamespaces/non-own-ns",
            make_service("non-own-ns"),
            none,
            vec![],
            testservice("non-own-ns", &[]),
        ),
        (
            "TestServiceDiscoveryWithNamespaceMetadata",
            make_service("test-ns"),
            with_ns,
            vec![namespace(
                "test-ns",
                json!({"environment": "production", "team": "backend"}),
                json!({"owner": "platform", "version": "v1.2.3"}),
            )],
            testservice(
                "test-ns",
                &[
                    ("__meta_kubernetes_namespace_annotation_owner", "platform"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_owner",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_version", "v1.2.3"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_version",
                        "true",
                    ),
                    (
                        "__meta_kubernetes_namespace_label_environment",
                        "production",
                    ),
                    (
                        "__meta_kubernetes_namespace_labelpresent_environment",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_team", "backend"),
                    ("__meta_kubernetes_namespace_labelpresent_team", "true"),
                ],
            ),
        ),
        (
            "TestServiceDiscoveryWithUpdatedNamespaceMetadata",
            make_service("test-ns"),
            with_ns,
            vec![namespace(
                "test-ns",
                json!({"environment": "staging", "team": "frontend", "region": "us-west"}),
                json!({"owner": "sre", "version": "v2.1.0", "cost-center": "engineering"}),
            )],
            testservice(
                "test-ns",
                &[
                    ("__meta_kubernetes_namespace_annotation_owner", "sre"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_owner",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_version", "v2.1.0"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_version",
                        "true",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotation_cost_center",
                        "engineering",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_cost_center",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_environment", "staging"),
                    (
                        "__meta_kubernetes_namespace_labelpresent_environment",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_team", "frontend"),
                    ("__meta_kubernetes_namespace_labelpresent_team", "true"),
                    ("__meta_kubernetes_namespace_label_region", "us-west"),
                    ("__meta_kubernetes_namespace_labelpresent_region", "true"),
                ],
            ),
        ),
    ];
    for (name, svc, opts, objects, want) in cases {
        let lookup = MapLookup::of(objects);
        assert_group(name, &service_group(&obj(svc), &opts, &lookup), &want);
    }
}

// Beyond upstream's tests: behaviour of service.go that its tests leave out.

#[test]
fn service_without_ports_has_no_targets() {
    let mut svc = make_service("default");
    svc["spec"]["ports"] = json!([]);
    let got = service_group(&obj(svc), &RoleOptions::default(), &NoLookup);
    assert!(got.targets.is_empty());
    assert_eq!(
        got.labels.get("__meta_kubernetes_service_name"),
        Some("testservice")
    );
}
