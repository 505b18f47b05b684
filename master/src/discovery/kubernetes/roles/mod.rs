//! Per-role target builders: one Kubernetes object in, one Prometheus target group out.
//!
//! Each builder mirrors the `build*` function of the matching file in Prometheus's
//! `discovery/kubernetes/` (`node.go`, `pod.go`, `service.go`, `endpoints.go`,
//! `endpointslice.go`, `ingress.go`), label for label, including the order of targets.
//! They are pure: everything they need beyond the object itself (the backing pod of an
//! endpoint, the service of an endpoints object, the node or namespace for `attach_metadata`)
//! comes through [`Lookup`], which the wiring implements over its shared reflector stores.
//!
//! One representation difference: Prometheus's `model.LabelSet` can hold a label whose value
//! is empty (`__meta_kubernetes_pod_phase: ""` for a pod without a phase), whereas our
//! [`Labels`](promshard_model::Labels) drops empty values. Both mean the same to everything
//! downstream: relabeling treats a missing label as empty and Prometheus removes empty labels
//! from the final target.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use promshard_model::LabelsBuilder;
use promshard_model::config::AttachMetadata;

mod endpoints;
mod endpointslice;
mod ingress;
mod node;
mod pod;
mod service;

#[cfg(test)]
mod tests;

pub use endpoints::endpoints_group;
pub use endpointslice::endpointslice_group;
pub use ingress::ingress_group;
pub use node::node_group;
pub use pod::pod_group;
pub use service::service_group;

/// Read access to the other objects a role needs, keyed like the informer stores upstream
/// (`namespace/name`, or `name` for cluster-scoped kinds). Implemented by the wiring over the
/// shared reflector stores; tests use a map.
pub trait Lookup {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    fn node(&self, name: &str) -> Option<Arc<Node>>;
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>>;
}

/// A [`Lookup`] that finds nothing: for roles and options that never look anything up.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLookup;

impl Lookup for NoLookup {
    fn pod(&self, _: &str, _: &str) -> Option<Arc<Pod>> {
        None
    }
    fn service(&self, _: &str, _: &str) -> Option<Arc<Service>> {
        None
    }
    fn node(&self, _: &str) -> Option<Arc<Node>> {
        None
    }
    fn namespace(&self, _: &str) -> Option<Arc<Namespace>> {
        None
    }
}

/// `attach_metadata` of a `kubernetes_sd_config`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoleOptions {
    /// Add the labels of the target's node (`pod`, `endpoints`, `endpointslice`).
    pub attach_node: bool,
    /// Add `__meta_kubernetes_namespace_{label,annotation}{,present}_*` of the object's
    /// namespace (every namespaced role).
    pub attach_namespace: bool,
}

impl From<&AttachMetadata> for RoleOptions {
    fn from(a: &AttachMetadata) -> Self {
        RoleOptions {
            attach_node: a.node,
            attach_namespace: a.namespace,
        }
    }
}

/// Prometheus's `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes
/// `_` (one underscore per character, not per byte, as Go's regexp works on runes).
pub fn sanitize_label_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(super) const META: &str = "__meta_kubernetes_";
pub(super) const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
pub(super) const PRESENT: &str = "true";

fn str_or_empty(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn meta_name(meta: &ObjectMeta) -> &str {
    str_or_empty(&meta.name)
}

fn meta_namespace(meta: &ObjectMeta) -> &str {
    str_or_empty(&meta.namespace)
}

/// Go's `net.JoinHostPort`: brackets hosts that contain a colon (IPv6 literals).
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `strconv.FormatUint(uint64(p), 10)` on an `int32`: Go sign-extends the conversion, so a
/// (never valid) negative port prints as a huge number; kept for exactness.
fn format_uint_i32(p: i32) -> String {
    (p as i64 as u64).to_string()
}

/// Upstream `addObjectMetaLabels`: `<role>_name`, and for every label and annotation the
/// sanitized `<role>_label_*`/`_labelpresent_*` and `<role>_annotation_*`/`_annotationpresent_*`.
///
/// Two keys that sanitize to the same name collide; upstream the winner depends on Go's map
/// order (random), here the later key in sorted order wins.
fn add_object_meta_labels(b: &mut LabelsBuilder, meta: &ObjectMeta, role: &str) {
    b.set(format!("{META}{role}_name"), meta_name(meta));
    add_labels_and_annotations(b, meta, role);
}

fn add_labels_and_annotations(b: &mut LabelsBuilder, meta: &ObjectMeta, role: &str) {
    for (kind, map) in [("label", &meta.labels), ("annotation", &meta.annotations)] {
        for (k, v) in map.iter().flat_map(BTreeMap::iter) {
            let ln = sanitize_label_name(k);
            b.set(format!("{META}{role}_{kind}_{ln}"), v.as_str());
            b.set(format!("{META}{role}_{kind}present_{ln}"), PRESENT);
        }
    }
}

/// Upstream `addNodeLabels`: the node's name, labels and annotations, if the node is known.
fn add_node_labels(b: &mut LabelsBuilder, lookup: &dyn Lookup, node_name: Option<&str>) {
    let Some(node) = node_name.and_then(|n| lookup.node(n)) else {
        return;
    };
    add_object_meta_labels(b, &node.metadata, "node");
}

/// Upstream `addNamespaceLabels`: the namespace's labels and annotations (with their
/// `present` twins) but not its name, which `__meta_kubernetes_namespace` already carries.
fn add_namespace_labels(b: &mut LabelsBuilder, lookup: &dyn Lookup, namespace: &str) {
    let Some(ns) = lookup.namespace(namespace) else {
        return;
    };
    add_labels_and_annotations(b, &ns.metadata, "namespace");
}

/// Labels every target of a service contributes (`serviceLabels` upstream), also merged into
/// endpoints and endpointslice groups.
fn service_labels(b: &mut LabelsBuilder, svc: &Service) {
    b.set(NAMESPACE_LABEL, meta_namespace(&svc.metadata));
    add_object_meta_labels(b, &svc.metadata, "service");
}

/// Upstream `podLabels`: shared by the pod role (group labels) and the endpoints roles
/// (merged into each target backed by the pod).
fn pod_labels(b: &mut LabelsBuilder, pod: &Pod) {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    b.set(
        format!("{META}pod_ip"),
        status.map_or("", |s| str_or_empty(&s.pod_ip)),
    );
    b.set(format!("{META}pod_ready"), pod_ready(pod));
    b.set(
        format!("{META}pod_phase"),
        status.map_or("", |s| str_or_empty(&s.phase)),
    );
    b.set(
        format!("{META}pod_node_name"),
        spec.map_or("", |s| str_or_empty(&s.node_name)),
    );
    b.set(
        format!("{META}pod_host_ip"),
        status.map_or("", |s| str_or_empty(&s.host_ip)),
    );
    b.set(format!("{META}pod_uid"), str_or_empty(&pod.metadata.uid));

    // The first IPv4 and the first IPv6 address of status.podIPs (dual-stack pods).
    let (mut v4, mut v6) = (false, false);
    for ip in status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
    {
        if ip.ip.is_empty() {
            continue;
        }
        if v4 && v6 {
            break;
        }
        match ip.ip.parse::<IpAddr>() {
            Ok(addr) if is_ipv4_like(&addr) => {
                if !v4 {
                    b.set(format!("{META}pod_ipv4"), ip.ip.as_str());
                    v4 = true;
                }
            }
            Ok(_) => {
                if !v6 {
                    b.set(format!("{META}pod_ipv6"), ip.ip.as_str());
                    v6 = true;
                }
            }
            Err(_) => {}
        }
    }

    add_object_meta_labels(b, &pod.metadata, "pod");

    // GetControllerOf: the first owner reference with controller=true.
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    if let Some(c) = controller {
        if !c.kind.is_empty() {
            b.set(format!("{META}pod_controller_kind"), c.kind.as_str());
        }
        if !c.name.is_empty() {
            b.set(format!("{META}pod_controller_name"), c.name.as_str());
        }
    }
}

/// Go's `ip.To4() != nil`: IPv4, or IPv6 that is an IPv4-mapped address.
fn is_ipv4_like(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// The pod's Ready condition status, lower-cased; `unknown` without one.
fn pod_ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase())
}

/// The pod's containers followed by its init containers, each with whether it is an init
/// container (`append(Containers, InitContainers...)` upstream).
fn all_containers(
    pod: &Pod,
) -> impl Iterator<Item = (&k8s_openapi::api::core::v1::Container, bool)> {
    let spec = pod.spec.as_ref();
    let main = spec
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c, false));
    let init = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| (c, true));
    main.chain(init)
}

/// Sets the `__meta_kubernetes_pod_container_*` labels of a target on a container port.
fn set_container_port_labels(
    t: &mut LabelsBuilder,
    c: &k8s_openapi::api::core::v1::Container,
    port_name: &str,
    port_number: &str,
    protocol: &str,
    is_init: bool,
) {
    t.set(format!("{META}pod_container_name"), c.name.as_str());
    t.set(format!("{META}pod_container_image"), str_or_empty(&c.image));
    t.set(format!("{META}pod_container_port_name"), port_name);
    t.set(format!("{META}pod_container_port_number"), port_number);
    t.set(format!("{META}pod_container_port_protocol"), protocol);
    t.set(
        format!("{META}pod_container_init"),
        if is_init { "true" } else { "false" },
    );
}

/// Merges `other` into `b`, `other` winning (`model.LabelSet.Merge`).
fn merge(b: &mut LabelsBuilder, other: &LabelsBuilder) {
    for l in other.iter() {
        b.set(l.name.as_str(), l.value.as_str());
    }
}
