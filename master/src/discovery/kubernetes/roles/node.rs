//! Role `node` (`node.go` upstream): one target per node, on the kubelet port.

use k8s_openapi::api::core::v1::Node;
use promshard_model::LabelsBuilder;

use super::{META, add_object_meta_labels, join_host_port, meta_name, sanitize_label_name};
use crate::discovery::TargetGroup;

/// The node's target group, source `node/<name>`.
///
/// `None` when the node has no address at all: upstream logs "No node address found" and
/// sends nothing for that event, so whatever was last sent for the node stays in place. The
/// wiring must do the same (keep the previous group), not send an empty group.
pub fn node_group(node: &Node) -> Option<TargetGroup> {
    let name = meta_name(&node.metadata);
    let mut labels = LabelsBuilder::new();
    let provider_id = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .unwrap_or("");
    labels.set(format!("{META}node_provider_id"), provider_id);
    add_object_meta_labels(&mut labels, &node.metadata, "node");

    let status = node.status.as_ref();
    // Addresses by type, in order of appearance; the first of each type is exported.
    let mut by_type: Vec<(&str, Vec<&str>)> = Vec::new();
    for a in status
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
    {
        match by_type.iter_mut().find(|(t, _)| *t == a.type_) {
            Some((_, v)) => v.push(&a.address),
            None => by_type.push((&a.type_, vec![&a.address])),
        }
    }
    let first = |ty: &str| by_type.iter().find(|(t, _)| *t == ty).map(|(_, v)| v[0]);
    // Preference from k8s.io/kubernetes/pkg/util/node, as upstream.
    let addr = [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "LegacyHostIP",
        "Hostname",
    ]
    .into_iter()
    .find_map(first)?;
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |k| k.port);

    let mut t = LabelsBuilder::new();
    t.set(
        "__address__",
        join_host_port(addr, &(port as i64).to_string()),
    );
    t.set("instance", name);
    for (ty, addrs) in &by_type {
        t.set(
            sanitize_label_name(&format!("{META}node_address_{ty}")),
            addrs[0],
        );
    }

    Some(TargetGroup {
        targets: vec![t.into_labels()],
        labels: labels.into_labels(),
        source: format!("node/{name}"),
    })
}
