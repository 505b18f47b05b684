//! The resource kinds the double serves, and the discovery documents that describe them.
//!
//! Discovery is generated from the same table the router uses, so `kubectl` and kube's
//! discovery see exactly what the double can answer and nothing more.

use std::net::SocketAddr;

use serde_json::{Value, json};

/// One resource kind: where it lives in the API and how it is named.
#[derive(Debug)]
pub(super) struct ResourceType {
    /// API group; empty for the core group (`/api/v1`).
    pub(super) group: &'static str,
    pub(super) version: &'static str,
    /// The plural name used in paths and in request accounting (`pods`).
    pub(super) plural: &'static str,
    pub(super) singular: &'static str,
    pub(super) kind: &'static str,
    pub(super) namespaced: bool,
    pub(super) short_names: &'static [&'static str],
}

/// Verbs every kind supports (what discovery advertises; the router implements each).
const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

pub(super) const RESOURCES: &[ResourceType] = &[
    core("pods", "pod", "Pod", true, &["po"]),
    core("services", "service", "Service", true, &["svc"]),
    core("endpoints", "endpoints", "Endpoints", true, &["ep"]),
    core("nodes", "node", "Node", false, &["no"]),
    core("namespaces", "namespace", "Namespace", false, &["ns"]),
    // The rest of what the promshard chart installs, so `helm` can map every object of a
    // release to an API (`--dry-run=server`, for `lookup` of the Secrets the chart keeps across
    // upgrades). Stored and served like everything else; nothing acts on them.
    core("secrets", "secret", "Secret", true, &[]),
    core("configmaps", "configmap", "ConfigMap", true, &["cm"]),
    core(
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
    ),
    ResourceType {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        short_names: &[],
    },
    ResourceType {
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        singular: "ingress",
        kind: "Ingress",
        namespaced: true,
        short_names: &["ing"],
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
    },
    named(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
    ),
    named(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
    ),
    named(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
    ),
    named(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
    ),
    named(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
    ),
    named(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
    ),
    named(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    named(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
    ),
    named(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
    ),
    // prometheus-operator's resources, as their CRDs define them, for `prometheus_cr`.
    named(
        "monitoring.coreos.com",
        "v1",
        "servicemonitors",
        "servicemonitor",
        "ServiceMonitor",
        true,
    ),
    named(
        "monitoring.coreos.com",
        "v1",
        "podmonitors",
        "podmonitor",
        "PodMonitor",
        true,
    ),
    named(
        "monitoring.coreos.com",
        "v1",
        "probes",
        "probe",
        "Probe",
        true,
    ),
    named(
        "monitoring.coreos.com",
        "v1alpha1",
        "scrapeconfigs",
        "scrapeconfig",
        "ScrapeConfig",
        true,
    ),
];

/// A kind of a named API group.
const fn named(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
    }
}

const fn core(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group: "",
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
    }
}

impl ResourceType {
    /// `v1` or `group/v1`, as in an object's `apiVersion`.
    pub(super) fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    pub(super) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The kind served at `/api/v1/...` (group "") or `/apis/{group}/{version}/...`.
pub(super) fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// A kind by any name a test may use for it: `Pod`, `pods`, `pod` or `po`, any case.
pub(super) fn by_name(name: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| {
        r.kind.eq_ignore_ascii_case(name)
            || r.plural.eq_ignore_ascii_case(name)
            || r.singular.eq_ignore_ascii_case(name)
            || r.short_names.iter().any(|s| s.eq_ignore_ascii_case(name))
    })
}

/// The kind an object declares with `apiVersion` and `kind`.
pub(super) fn by_type(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// `/version`: a recent Kubernetes, which is what kube and kubectl check against.
pub(super) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`: the core group's versions.
pub(super) fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}]
    })
}

/// The named groups, in table order, without duplicates.
fn groups() -> Vec<&'static ResourceType> {
    let mut seen: Vec<&'static ResourceType> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !seen.iter().any(|s| s.group == r.group) {
            seen.push(r);
        }
    }
    seen
}

/// A group with every version the table has of it (monitoring.coreos.com has v1 and
/// v1alpha1), the first one preferred.
fn api_group(r: &ResourceType) -> Value {
    let mut versions: Vec<Value> = Vec::new();
    for v in RESOURCES.iter().filter(|o| o.group == r.group) {
        let gv = json!({"groupVersion": v.api_version(), "version": v.version});
        if !versions.contains(&gv) {
            versions.push(gv);
        }
    }
    let preferred = json!({"groupVersion": r.api_version(), "version": r.version});
    json!({"name": r.group, "versions": versions, "preferredVersion": preferred})
}

/// `/apis`: every named group.
pub(super) fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(api_group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, or `None` for a group the double does not serve.
pub(super) fn api_group_document(group: &str) -> Option<Value> {
    let r = groups().into_iter().find(|r| r.group == group)?;
    let mut document = api_group(r);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

/// `/api/v1` or `/apis/{group}/{version}`, or `None` for an unknown group version.
pub(super) fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut resource = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                resource["shortNames"] = json!(r.short_names);
            }
            // What `kubectl get all` shows, as on a real cluster.
            if matches!(r.plural, "pods" | "services") {
                resource["categories"] = json!(["all"]);
            }
            resource
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}
