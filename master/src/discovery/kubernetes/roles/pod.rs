//! Role `pod` (`pod.go` upstream): one target per declared container port, or one port-less
//! target per container that declares none; init containers included.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use promshard_model::LabelsBuilder;

use super::{
    Lookup, META, NAMESPACE_LABEL, RoleOptions, add_namespace_labels, add_node_labels,
    all_containers, format_uint_i32, is_ipv4_like, join_host_port, meta_name, meta_namespace,
    pod_labels, set_container_port_labels, str_or_empty,
};
use crate::discovery::TargetGroup;

/// The pod's target group, source `pod/<namespace>/<name>`. A pod without an IP yet (starting,
/// or evicted) yields a group with no labels and no targets, which removes its old targets.
pub fn pod_group(pod: &Pod, opts: &RoleOptions, lookup: &dyn Lookup) -> TargetGroup {
    let (ns, name) = (meta_namespace(&pod.metadata), meta_name(&pod.metadata));
    let source = format!("pod/{ns}/{name}");
    let status = pod.status.as_ref();
    let pod_ip = status.map_or("", |s| str_or_empty(&s.pod_ip));
    if pod_ip.is_empty() {
        return TargetGroup {
            source,
            ..TargetGroup::default()
        };
    }

    let mut labels = LabelsBuilder::new();
    pod_labels(&mut labels, pod);
    labels.set(NAMESPACE_LABEL, ns);
    if opts.attach_node {
        let node_name = pod.spec.as_ref().map_or("", |s| str_or_empty(&s.node_name));
        add_node_labels(&mut labels, lookup, Some(node_name));
    }
    if opts.attach_namespace {
        add_namespace_labels(&mut labels, lookup, ns);
    }

    let mut targets = Vec::new();
    for (c, is_init) in all_containers(pod) {
        let statuses = status.and_then(|s| {
            if is_init {
                s.init_container_statuses.as_ref()
            } else {
                s.container_statuses.as_ref()
            }
        });
        let container_id = container_id(statuses.map_or(&[], Vec::as_slice), &c.name);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // No port: the address is the bare pod IP; the user adds a port by relabeling.
            let mut t = LabelsBuilder::new();
            t.set("__address__", portless_address(pod_ip));
            t.set(format!("{META}pod_container_name"), c.name.as_str());
            t.set(format!("{META}pod_container_id"), container_id);
            t.set(format!("{META}pod_container_image"), str_or_empty(&c.image));
            t.set(
                format!("{META}pod_container_init"),
                if is_init { "true" } else { "false" },
            );
            targets.push(t.into_labels());
            continue;
        }
        for port in ports {
            let number = format_uint_i32(port.container_port);
            let mut t = LabelsBuilder::new();
            t.set("__address__", join_host_port(pod_ip, &number));
            t.set(format!("{META}pod_container_id"), container_id);
            let (port_name, protocol) = (str_or_empty(&port.name), str_or_empty(&port.protocol));
            set_container_port_labels(&mut t, c, port_name, &number, protocol, is_init);
            targets.push(t.into_labels());
        }
    }

    TargetGroup {
        targets,
        labels: labels.into_labels(),
        source,
    }
}

fn container_id<'a>(statuses: &'a [ContainerStatus], name: &str) -> &'a str {
    statuses
        .iter()
        .find(|s| s.name == name)
        .map_or("", |s| str_or_empty(&s.container_id))
}

/// The pod IP as an address without port: an IPv6 literal is bracketed (RFC 3986 forbids the
/// trailing ":" that `net.JoinHostPort` would leave), in Go's canonical form.
fn portless_address(pod_ip: &str) -> String {
    match pod_ip.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V6(v6)) if !is_ipv4_like(&ip) => format!("[{v6}]"),
        _ => pod_ip.to_string(),
    }
}
