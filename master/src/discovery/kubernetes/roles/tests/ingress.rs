//! Ported from Prometheus `discovery/kubernetes/ingress_test.go`.
//!
//! Ported: TestIngressDiscoveryAdd, TestIngressDiscoveryAddTLS, TestIngressDiscoveryAddMixed,
//! TestIngressDiscoveryNamespaces, TestIngressDiscoveryOwnNamespace (the own-namespace object;
//! which namespaces are watched is the wiring's job), TestIngressDiscoveryWithNamespaceMetadata,
//! TestIngressDiscoveryWithUpdatedNamespaceMetadata (the updated namespace). Also the
//! `TLSWildcard` mode, which upstream's `makeIngress`/`expectedTargetGroups` define but no
//! test of that file uses.
//!
//! Skipped: none.

use serde_json::{Value, json};

use super::*;
use crate::discovery::kubernetes::roles::{RoleOptions, ingress_group};

#[derive(Clone, Copy)]
enum Tls {
    No,
    Yes,
    Mixed,
    Wildcard,
}

fn make_ingress(namespace: &str, tls: Tls) -> Value {
    let backend = json!({"service": {"name": "s", "port": {"number": 80}}});
    let mut ing = json!({
        "kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
        "metadata": {
            "name": "testingress", "namespace": namespace,
            "labels": {"test/label": "testvalue"},
            "annotations": {"test/annotation": "testannotationvalue"},
        },
        "spec": {
            "ingressClassName": "testclass",
            "rules": [
                {"host": "example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": backend},
                    {"path": "/foo", "pathType": "Prefix", "backend": backend},
                ]}},
                // No backend config, ignored.
                {"host": "nobackend.example.com", "http": {"paths": []}},
                {"host": "test.example.com", "http": {"paths": [
                    {"pathType": "Prefix", "backend": backend},
                ]}},
            ],
        },
    });
    let hosts = match tls {
        Tls::No => return ing,
        Tls::Yes => json!(["example.com", "test.example.com"]),
        Tls::Mixed => json!(["example.com"]),
        Tls::Wildcard => json!(["*.example.com"]),
    };
    ing["spec"]["tls"] = json!([{"hosts": hosts}]);
    ing
}

/// `expectedTargetGroups(ns, tls)`, with `extra` group labels.
fn expected_target_groups(ns: &str, tls: Tls, extra: &[(&str, &str)]) -> TargetGroup {
    let (scheme1, scheme2) = match tls {
        Tls::No => ("http", "http"),
        Tls::Yes => ("https", "https"),
        Tls::Mixed => ("https", "http"),
        Tls::Wildcard => ("http", "https"),
    };
    let mut labels = vec![
        ("__meta_kubernetes_ingress_name", "testingress"),
        ("__meta_kubernetes_namespace", ns),
        ("__meta_kubernetes_ingress_label_test_label", "testvalue"),
        ("__meta_kubernetes_ingress_labelpresent_test_label", "true"),
        (
            "__meta_kubernetes_ingress_annotation_test_annotation",
            "testannotationvalue",
        ),
        (
            "__meta_kubernetes_ingress_annotationpresent_test_annotation",
            "true",
        ),
        ("__meta_kubernetes_ingress_class_name", "testclass"),
    ];
    labels.extend_from_slice(extra);
    group(
        &format!("ingress/{ns}/testingress"),
        ls(&labels),
        vec![
            ls(&[
                ("__meta_kubernetes_ingress_scheme", scheme1),
                ("__meta_kubernetes_ingress_host", "example.com"),
                ("__meta_kubernetes_ingress_path", "/"),
                ("__address__", "example.com"),
            ]),
            ls(&[
                ("__meta_kubernetes_ingress_scheme", scheme1),
                ("__meta_kubernetes_ingress_host", "example.com"),
                ("__meta_kubernetes_ingress_path", "/foo"),
                ("__address__", "example.com"),
            ]),
            ls(&[
                ("__meta_kubernetes_ingress_scheme", scheme2),
                ("__meta_kubernetes_ingress_host", "test.example.com"),
                ("__address__", "test.example.com"),
                ("__meta_kubernetes_ingress_path", "/"),
            ]),
        ],
    )
}

#[test]
fn upstream_ingress_cases() {
    let none = RoleOptions::default();
    let with_ns = RoleOptions {
        attach_namespace: true,
        ..RoleOptions::default()
    };
    let cases: Vec<(&str, Value, RoleOptions, Vec<Value>, TargetGroup)> = vec![
        (
            "TestIngressDiscoveryAdd",
            make_ingress("default", Tls::No),
            none,
            vec![],
            expected_target_groups("default", Tls::No, &[]),
        ),
        (
            "TestIngressDiscoveryAddTLS",
            make_ingress("default", Tls::Yes),
            none,
            vec![],
            expected_target_groups("default", Tls::Yes, &[]),
        ),
        (
            "TestIngressDiscoveryAddMixed",
            make_ingress("default", Tls::Mixed),
            none,
            vec![],
            expected_target_groups("default", Tls::Mixed, &[]),
        ),
        (
            "TLSWildcard",
            make_ingress("default", Tls::Wildcard),
            none,
            vec![],
            expected_target_groups("default", Tls::Wildcard, &[]),
        ),
        (
            "TestIngressDiscoveryNamespaces/ns1",
            make_ingress("ns1", Tls::No),
            none,
            vec![],
            expected_target_groups("ns1", Tls::No, &[]),
        ),
        (
            "TestIngressDiscoveryNamespaces/ns2",
            make_ingress("ns2", Tls::No),
            none,
            vec![],
            expected_target_groups("ns2", Tls::No, &[]),
        ),
        (
            "TestIngressDiscoveryOwnNamespace",
            make_ingress("own-ns", Tls::No),
            none,
            vec![],
            expected_target_groups("own-ns", Tls::No, &[]),
        ),
        (
            "TestIngressDiscoveryWithNamespaceMetadata",
            make_ingress("test-ns", Tls::No),
            with_ns,
            vec![namespace(
                "test-ns",
                json!({"service": "web", "layer": "frontend"}),
                json!({"contact": "platform", "release": "v5.6.7"}),
            )],
            expected_target_groups(
                "test-ns",
                Tls::No,
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
                ],
            ),
        ),
        (
            "TestIngressDiscoveryWithUpdatedNamespaceMetadata",
            make_ingress("test-ns", Tls::No),
            with_ns,
            vec![namespace(
                "test-ns",
                json!({"component": "cache", "layer": "backend", "region": "us-central"}),
                json!({"contact": "sre", "release": "v6.7.8", "monitoring": "enabled"}),
            )],
            expected_target_groups(
                "test-ns",
                Tls::No,
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
                ],
            ),
        ),
    ];
    for (name, ing, opts, objects, want) in cases {
        let lookup = MapLookup::of(objects);
        assert_group(name, &ingress_group(&obj(ing), &opts, &lookup), &want);
    }
}

// Beyond upstream's tests: behaviour of ingress.go that its tests leave out.

#[test]
fn rule_without_http_is_one_target_on_root_and_wildcards_match_one_label() {
    let ing = json!({
        "metadata": {"name": "i", "namespace": "ns"},
        "spec": {
            "tls": [{"hosts": ["*.example.com"]}],
            "rules": [{"host": "a.example.com"}, {"host": "a.b.example.com"}, {"host": "example.com"}],
        },
    });
    let got = ingress_group(
        &obj(ing),
        &RoleOptions::default(),
        &crate::discovery::kubernetes::roles::NoLookup,
    );
    let schemes: Vec<_> = got
        .targets
        .iter()
        .map(|t| {
            (
                t.get("__address__").unwrap(),
                t.get("__meta_kubernetes_ingress_scheme").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        schemes,
        [
            ("a.example.com", "https"),
            ("a.b.example.com", "http"),
            ("example.com", "http")
        ]
    );
    assert!(
        got.targets
            .iter()
            .all(|t| t.get("__meta_kubernetes_ingress_path") == Some("/"))
    );
    assert_eq!(got.labels.get("__meta_kubernetes_ingress_class_name"), None);
}
