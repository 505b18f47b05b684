//! Ported from Prometheus `discovery/kubernetes/pod_test.go`.
//!
//! Ported: TestPodDiscoveryBeforeRun, TestPodDiscoveryInitContainer, TestPodDiscoveryAdd,
//! TestPodDiscoveryUpdate (the updated object), TestPodDiscoveryUpdateEmptyPodIP (the updated
//! object), TestPodDiscoveryNamespaces, TestPodDiscoveryOwnNamespace (the own-namespace
//! object; which namespaces are watched is the wiring's job), TestPodDiscoveryWithNodeMetadata,
//! TestPodDiscoveryWithNodeMetadataUpdateNode (the updated node),
//! TestPodDiscoveryWithNamespaceMetadata, TestPodDiscoveryWithUpdatedNamespaceMetadata (the
//! updated namespace).
//!
//! Skipped: TestPodDiscoveryDelete (a delete event sends an empty group for the source: event
//! plumbing, no object to build from).
//!
//! The cases after `// Beyond upstream's tests` pin behaviour of `pod.go` that upstream's
//! tests do not exercise (IPv6 pod IPs, dual-stack `podIPs`, controller references).

use serde_json::{Value, json};

use super::*;
use crate::discovery::kubernetes::roles::{NoLookup, RoleOptions, pod_group};

fn make_multi_port_pods() -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "testpod", "namespace": "default",
            "labels": {"test/label": "testvalue"},
            "annotations": {"test/annotation": "testannotationvalue"},
            "uid": "abc123",
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "testcontrollerkind",
                "name": "testcontrollername", "uid": "", "controller": true,
            }],
        },
        "spec": {
            "nodeName": "testnode",
            "containers": [
                {"name": "testcontainer0", "image": "testcontainer0:latest", "ports": [
                    {"name": "testport0", "protocol": "TCP", "containerPort": 9000},
                    {"name": "testport1", "protocol": "UDP", "containerPort": 9001},
                ]},
                {"name": "testcontainer1", "image": "testcontainer1:latest"},
            ],
        },
        "status": {
            "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "testcontainer0", "containerID": "docker://a1b2c3d4e5f6",
                 "image": "", "imageID": "", "ready": true, "restartCount": 0},
                {"name": "testcontainer1", "containerID": "containerd://6f5e4d3c2b1a",
                 "image": "", "imageID": "", "ready": true, "restartCount": 0},
            ],
        },
    })
}

pub(super) fn make_pods(namespace: &str) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "testpod", "namespace": namespace, "uid": "abc123"},
        "spec": {
            "nodeName": "testnode",
            "containers": [{"name": "testcontainer", "image": "testcontainer:latest", "ports": [
                {"name": "testport", "protocol": "TCP", "containerPort": 9000},
            ]}],
        },
        "status": {
            "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "testcontainer", "containerID": "docker://a1b2c3d4e5f6",
                 "image": "", "imageID": "", "ready": true, "restartCount": 0},
            ],
        },
    })
}

fn make_init_container_pods() -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "testpod", "namespace": "default", "uid": "abc123"},
        "spec": {
            "nodeName": "testnode",
            "containers": [{"name": "testcontainer", "image": "testcontainer:latest", "ports": [
                {"name": "testport", "protocol": "TCP", "containerPort": 9000},
            ]}],
            "initContainers": [{"name": "initcontainer", "image": "initcontainer:latest"}],
        },
        "status": {
            "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "testcontainer", "containerID": "docker://a1b2c3d4e5f6",
                 "image": "", "imageID": "", "ready": false, "restartCount": 0},
            ],
            "initContainerStatuses": [
                {"name": "initcontainer", "containerID": "containerd://6f5e4d3c2b1a",
                 "image": "", "imageID": "", "ready": false, "restartCount": 0},
            ],
        },
    })
}

fn testport_target() -> Labels {
    ls(&[
        ("__address__", "1.2.3.4:9000"),
        ("__meta_kubernetes_pod_container_name", "testcontainer"),
        (
            "__meta_kubernetes_pod_container_image",
            "testcontainer:latest",
        ),
        ("__meta_kubernetes_pod_container_port_name", "testport"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
        (
            "__meta_kubernetes_pod_container_id",
            "docker://a1b2c3d4e5f6",
        ),
    ])
}

/// `expectedPodTargetGroups`, with `extra` group labels (node or namespace metadata).
fn expected_pod_target_groups(ns: &str, extra: &[(&str, &str)]) -> TargetGroup {
    let mut labels = vec![
        ("__meta_kubernetes_pod_name", "testpod"),
        ("__meta_kubernetes_namespace", ns),
        ("__meta_kubernetes_pod_node_name", "testnode"),
        ("__meta_kubernetes_pod_ip", "1.2.3.4"),
        ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_uid", "abc123"),
    ];
    labels.extend_from_slice(extra);
    group(
        &format!("pod/{ns}/testpod"),
        ls(&labels),
        vec![testport_target()],
    )
}

fn node(name: &str, labels: Value) -> Value {
    super::node::make_node(name, "", "", labels, Value::Null)
}

#[test]
fn upstream_pod_cases() {
    let none = RoleOptions::default();
    let with_node = RoleOptions {
        attach_node: true,
        ..RoleOptions::default()
    };
    let with_ns = RoleOptions {
        attach_namespace: true,
        ..RoleOptions::default()
    };

    let mut init_expected = expected_pod_target_groups("default", &[]);
    init_expected.labels = ls(&[
        ("__meta_kubernetes_pod_name", "testpod"),
        ("__meta_kubernetes_namespace", "default"),
        ("__meta_kubernetes_pod_node_name", "testnode"),
        ("__meta_kubernetes_pod_ip", "1.2.3.4"),
        ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
        ("__meta_kubernetes_pod_ready", "false"),
        ("__meta_kubernetes_pod_phase", "Pending"),
        ("__meta_kubernetes_pod_uid", "abc123"),
    ]);
    init_expected.targets.push(ls(&[
        ("__address__", "1.2.3.4"),
        ("__meta_kubernetes_pod_container_name", "initcontainer"),
        (
            "__meta_kubernetes_pod_container_image",
            "initcontainer:latest",
        ),
        ("__meta_kubernetes_pod_container_init", "true"),
        (
            "__meta_kubernetes_pod_container_id",
            "containerd://6f5e4d3c2b1a",
        ),
    ]));

    let mut empty_ip = make_pods("default");
    empty_ip["status"]["podIP"] = json!("");

    let ns_meta = |labels: Value, annotations: Value| namespace("test-ns", labels, annotations);

    // (upstream test, pod, options, lookup objects, expected group)
    let cases: Vec<(&str, Value, RoleOptions, Vec<Value>, TargetGroup)> = vec![
        (
            "TestPodDiscoveryBeforeRun",
            make_multi_port_pods(),
            none,
            vec![],
            group(
                "pod/default/testpod",
                ls(&[
                    ("__meta_kubernetes_pod_name", "testpod"),
                    ("__meta_kubernetes_namespace", "default"),
                    ("__meta_kubernetes_pod_label_test_label", "testvalue"),
                    ("__meta_kubernetes_pod_labelpresent_test_label", "true"),
                    (
                        "__meta_kubernetes_pod_annotation_test_annotation",
                        "testannotationvalue",
                    ),
                    (
                        "__meta_kubernetes_pod_annotationpresent_test_annotation",
                        "true",
                    ),
                    ("__meta_kubernetes_pod_node_name", "testnode"),
                    ("__meta_kubernetes_pod_ip", "1.2.3.4"),
                    ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
                    ("__meta_kubernetes_pod_ready", "true"),
                    ("__meta_kubernetes_pod_phase", "Running"),
                    ("__meta_kubernetes_pod_uid", "abc123"),
                    (
                        "__meta_kubernetes_pod_controller_kind",
                        "testcontrollerkind",
                    ),
                    (
                        "__meta_kubernetes_pod_controller_name",
                        "testcontrollername",
                    ),
                ]),
                vec![
                    ls(&[
                        ("__address__", "1.2.3.4:9000"),
                        ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                        (
                            "__meta_kubernetes_pod_container_image",
                            "testcontainer0:latest",
                        ),
                        ("__meta_kubernetes_pod_container_port_name", "testport0"),
                        ("__meta_kubernetes_pod_container_port_number", "9000"),
                        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                        ("__meta_kubernetes_pod_container_init", "false"),
                        (
                            "__meta_kubernetes_pod_container_id",
                            "docker://a1b2c3d4e5f6",
                        ),
                    ]),
                    ls(&[
                        ("__address__", "1.2.3.4:9001"),
                        ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                        (
                            "__meta_kubernetes_pod_container_image",
                            "testcontainer0:latest",
                        ),
                        ("__meta_kubernetes_pod_container_port_name", "testport1"),
                        ("__meta_kubernetes_pod_container_port_number", "9001"),
                        ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
                        ("__meta_kubernetes_pod_container_init", "false"),
                        (
                            "__meta_kubernetes_pod_container_id",
                            "docker://a1b2c3d4e5f6",
                        ),
                    ]),
                    ls(&[
                        ("__address__", "1.2.3.4"),
                        ("__meta_kubernetes_pod_container_name", "testcontainer1"),
                        (
                            "__meta_kubernetes_pod_container_image",
                            "testcontainer1:latest",
                        ),
                        ("__meta_kubernetes_pod_container_init", "false"),
                        (
                            "__meta_kubernetes_pod_container_id",
                            "containerd://6f5e4d3c2b1a",
                        ),
                    ]),
                ],
            ),
        ),
        (
            "TestPodDiscoveryInitContainer",
            make_init_container_pods(),
            none,
            vec![],
            init_expected,
        ),
        (
            "TestPodDiscoveryAdd",
            make_pods("default"),
            none,
            vec![],
            expected_pod_target_groups("default", &[]),
        ),
        (
            "TestPodDiscoveryUpdate",
            make_pods("default"),
            none,
            vec![],
            expected_pod_target_groups("default", &[]),
        ),
        (
            "TestPodDiscoveryUpdateEmptyPodIP",
            empty_ip,
            none,
            vec![],
            group("pod/default/testpod", ls(&[]), vec![]),
        ),
        (
            "TestPodDiscoveryNamespaces/ns1",
            make_pods("ns1"),
            none,
            vec![],
            expected_pod_target_groups("ns1", &[]),
        ),
        (
            "TestPodDiscoveryNamespaces/ns2",
            make_pods("ns2"),
            none,
            vec![],
            expected_pod_target_groups("ns2", &[]),
        ),
        (
            "TestPodDiscoveryOwnNamespace",
            make_pods("own-ns"),
            none,
            vec![],
            expected_pod_target_groups("own-ns", &[]),
        ),
        (
            "TestPodDiscoveryWithNodeMetadata",
            make_pods("default"),
            with_node,
            vec![node("testnode", json!({"l1": "v1"}))],
            expected_pod_target_groups(
                "default",
                &[
                    ("__meta_kubernetes_node_name", "testnode"),
                    ("__meta_kubernetes_node_label_l1", "v1"),
                    ("__meta_kubernetes_node_labelpresent_l1", "true"),
                ],
            ),
        ),
        (
            "TestPodDiscoveryWithNodeMetadataUpdateNode",
            make_pods("default"),
            with_node,
            vec![node("testnode", json!({"l2": "v2"}))],
            expected_pod_target_groups(
                "default",
                &[
                    ("__meta_kubernetes_node_name", "testnode"),
                    ("__meta_kubernetes_node_label_l2", "v2"),
                    ("__meta_kubernetes_node_labelpresent_l2", "true"),
                ],
            ),
        ),
        (
            "TestPodDiscoveryWithNamespaceMetadata",
            make_pods("test-ns"),
            with_ns,
            vec![ns_meta(
                json!({"app": "web", "tier": "frontend"}),
                json!({"maintainer": "devops", "build": "v3.4.5"}),
            )],
            expected_pod_target_groups(
                "test-ns",
                &[
                    (
                        "__meta_kubernetes_namespace_annotation_maintainer",
                        "devops",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_maintainer",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_build", "v3.4.5"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_build",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_app", "web"),
                    ("__meta_kubernetes_namespace_labelpresent_app", "true"),
                    ("__meta_kubernetes_namespace_label_tier", "frontend"),
                    ("__meta_kubernetes_namespace_labelpresent_tier", "true"),
                ],
            ),
        ),
        (
            "TestPodDiscoveryWithUpdatedNamespaceMetadata",
            make_pods("test-ns"),
            with_ns,
            vec![ns_meta(
                json!({"app": "service", "tier": "backend", "zone": "us-east"}),
                json!({"maintainer": "sre", "build": "v4.5.6", "deployment": "canary"}),
            )],
            expected_pod_target_groups(
                "test-ns",
                &[
                    ("__meta_kubernetes_namespace_annotation_maintainer", "sre"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_maintainer",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_annotation_build", "v4.5.6"),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_build",
                        "true",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotation_deployment",
                        "canary",
                    ),
                    (
                        "__meta_kubernetes_namespace_annotationpresent_deployment",
                        "true",
                    ),
                    ("__meta_kubernetes_namespace_label_app", "service"),
                    ("__meta_kubernetes_namespace_labelpresent_app", "true"),
                    ("__meta_kubernetes_namespace_label_tier", "backend"),
                    ("__meta_kubernetes_namespace_labelpresent_tier", "true"),
                    ("__meta_kubernetes_namespace_label_zone", "us-east"),
                    ("__meta_kubernetes_namespace_labelpresent_zone", "true"),
                ],
            ),
        ),
    ];
    for (name, pod, opts, objects, want) in cases {
        let lookup = MapLookup::of(objects);
        assert_group(name, &pod_group(&obj(pod), &opts, &lookup), &want);
    }
}

#[test]
fn metadata_is_only_attached_when_asked_and_known() {
    // With attach_metadata off, a known node or namespace adds nothing; with it on, an
    // unknown one adds nothing either.
    let lookup = MapLookup::of([node("testnode", json!({"l1": "v1"}))]);
    let got = pod_group(&obj(make_pods("default")), &RoleOptions::default(), &lookup);
    assert_group(
        "node not asked",
        &got,
        &expected_pod_target_groups("default", &[]),
    );
    let all = RoleOptions {
        attach_node: true,
        attach_namespace: true,
    };
    let got = pod_group(&obj(make_pods("default")), &all, &NoLookup);
    assert_group(
        "nothing known",
        &got,
        &expected_pod_target_groups("default", &[]),
    );
}

// Beyond upstream's tests: behaviour of pod.go that its tests leave out.

#[test]
fn ipv6_pod_ip_is_bracketed_with_and_without_port() {
    let mut pod = make_init_container_pods();
    pod["status"]["podIP"] = json!("2001:db8::0:1");
    let got = pod_group(&obj(pod), &RoleOptions::default(), &NoLookup);
    // With a port: net.JoinHostPort keeps the IP as written.
    assert_eq!(
        got.targets[0].get("__address__"),
        Some("[2001:db8::0:1]:9000")
    );
    // Without: "[" + ip.String() + "]", Go's canonical form.
    assert_eq!(got.targets[1].get("__address__"), Some("[2001:db8::1]"));

    let mut pod = make_init_container_pods();
    pod["status"]["podIP"] = json!("::ffff:1.2.3.4");
    let got = pod_group(&obj(pod), &RoleOptions::default(), &NoLookup);
    assert_eq!(
        got.targets[1].get("__address__"),
        Some("::ffff:1.2.3.4"),
        "IPv4-mapped counts as IPv4"
    );
}

#[test]
fn dual_stack_pod_ips_give_first_ipv4_and_first_ipv6() {
    let mut pod = make_pods("default");
    pod["status"]["podIPs"] = json!([
        {"ip": ""}, {"ip": "fd00::1"}, {"ip": "not-an-ip"}, {"ip": "10.0.0.1"},
        {"ip": "fd00::2"}, {"ip": "10.0.0.2"},
    ]);
    let got = pod_group(&obj(pod), &RoleOptions::default(), &NoLookup);
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_ipv4"),
        Some("10.0.0.1")
    );
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_ipv6"),
        Some("fd00::1")
    );
}

#[test]
fn controller_is_the_owner_with_controller_true() {
    let mut pod = make_pods("default");
    pod["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "NotController", "name": "a", "uid": ""},
        {"apiVersion": "v1", "kind": "ReplicaSet", "name": "rs-1", "uid": "", "controller": true},
    ]);
    let got = pod_group(&obj(pod), &RoleOptions::default(), &NoLookup);
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_controller_kind"),
        Some("ReplicaSet")
    );
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_controller_name"),
        Some("rs-1")
    );
}

#[test]
fn pod_without_ready_condition_is_unknown_and_missing_status_has_no_id() {
    let mut pod = make_pods("default");
    pod["status"]["conditions"] = json!([]);
    pod["status"]["containerStatuses"] = json!([]);
    let got = pod_group(&obj(pod), &RoleOptions::default(), &NoLookup);
    assert_eq!(
        got.labels.get("__meta_kubernetes_pod_ready"),
        Some("unknown")
    );
    assert_eq!(
        got.targets[0].get("__meta_kubernetes_pod_container_id"),
        None
    );
}
