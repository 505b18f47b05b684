//! Field selectors per Kubernetes kind: which fields the API server accepts in a field selector
//! for a role are the model's (`KubernetesRole::selectable_fields`); reading them from objects
//! is here (the `*_field` functions).
//! Parsing and matching selectors is [`promshard_model::selector`]'s (a config with a malformed
//! selector is refused at load time).

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use promshard_model::selector::Selector;
// ---- fields per kind -------------------------------------------------------------------
// Which fields each role supports lives in the model (`KubernetesRole::selectable_fields`), so
// the config can warn about the others at load time; reading them from objects lives here.

/// `metadata.name` and `metadata.namespace` of any object.
pub fn meta_field(meta: &ObjectMeta, key: &str) -> Option<String> {
    match key {
        "metadata.name" => Some(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Some(meta.namespace.clone().unwrap_or_default()),
        _ => None,
    }
}

/// A pod's selectable fields (`PodToSelectableFields` in Kubernetes).
pub fn pod_field(pod: &Pod, key: &str) -> Option<String> {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let s = |v: Option<&Option<String>>| Some(v.and_then(Option::clone).unwrap_or_default());
    match key {
        "spec.nodeName" => s(spec.map(|s| &s.node_name)),
        "spec.restartPolicy" => s(spec.map(|s| &s.restart_policy)),
        "spec.schedulerName" => s(spec.map(|s| &s.scheduler_name)),
        "spec.serviceAccountName" => s(spec.map(|s| &s.service_account_name)),
        "spec.hostNetwork" => Some(
            spec.and_then(|s| s.host_network)
                .unwrap_or(false)
                .to_string(),
        ),
        "status.phase" => s(status.map(|s| &s.phase)),
        "status.podIP" => s(status.map(|s| &s.pod_ip)),
        "status.nominatedNodeName" => s(status.map(|s| &s.nominated_node_name)),
        _ => meta_field(&pod.metadata, key),
    }
}

/// A node's selectable fields.
pub fn node_field(node: &Node, key: &str) -> Option<String> {
    match key {
        "spec.unschedulable" => Some(
            node.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string(),
        ),
        _ => meta_field(&node.metadata, key),
    }
}

/// A service's selectable fields.
pub fn service_field(svc: &Service, key: &str) -> Option<String> {
    let spec = svc.spec.as_ref();
    match key {
        "spec.clusterIP" => Some(spec.and_then(|s| s.cluster_ip.clone()).unwrap_or_default()),
        "spec.type" => Some(spec.and_then(|s| s.type_.clone()).unwrap_or_default()),
        _ => meta_field(&svc.metadata, key),
    }
}

/// A namespace's selectable fields.
pub fn namespace_field(ns: &Namespace, key: &str) -> Option<String> {
    match key {
        "status.phase" => Some(
            ns.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
        ),
        _ => meta_field(&ns.metadata, key),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selector_cases() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "podIP": "10.0.0.1"},
        }))
        .unwrap();
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("metadata.name=p", true),
            ("metadata.name==p", true),
            ("metadata.name!=p", false),
            ("metadata.namespace=ns,spec.nodeName=n1", true),
            ("spec.nodeName=n2", false),
            ("spec.nodeName!=n2", true),
            ("status.phase=Running", true),
            ("status.phase!=Running,status.phase!=Pending", false),
            ("status.podIP=10.0.0.1", true),
            ("spec.hostNetwork=false", true),
            ("spec.schedulerName=", true),
            ("metadata.name=p,,", true),
        ];
        for (s, want) in cases {
            let sel = Selector::parse_field(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(sel.matches_fields(|k| pod_field(&pod, k)), *want, "{s}");
        }
    }

    #[test]
    fn object_fields() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1"}, "spec": {"unschedulable": true},
        }))
        .unwrap();
        assert_eq!(
            node_field(&node, "spec.unschedulable").as_deref(),
            Some("true")
        );
        assert_eq!(node_field(&node, "metadata.name").as_deref(), Some("n1"));
        assert_eq!(node_field(&node, "spec.podCIDR"), None);
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns", "labels": {"app": "x"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.2"},
        }))
        .unwrap();
        assert_eq!(
            service_field(&svc, "spec.type").as_deref(),
            Some("LoadBalancer")
        );
        assert_eq!(
            service_field(&svc, "spec.clusterIP").as_deref(),
            Some("10.0.0.2")
        );
        assert!(
            Selector::parse_label("app=x")
                .unwrap()
                .matches_labels(svc.metadata.labels.as_ref().unwrap())
        );
        assert!(
            !Selector::parse_label("app=x")
                .unwrap()
                .matches_labels(&node.metadata.labels.clone().unwrap_or_default())
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ns"}, "status": {"phase": "Active"},
        }))
        .unwrap();
        assert_eq!(
            namespace_field(&ns, "status.phase").as_deref(),
            Some("Active")
        );
    }
}
