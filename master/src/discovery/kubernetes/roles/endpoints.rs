//! Role `endpoints` (`endpoints.go` upstream): one target per address and port of every
//! subset (not-ready addresses too, with `_endpoint_ready="false"`), enriched with the
//! backing pod, plus one target per container port of those pods that no endpoint port covers.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, Pod};
use promshard_model::LabelsBuilder;

use super::{
    Lookup, META, NAMESPACE_LABEL, RoleOptions, add_namespace_labels, add_node_labels,
    add_object_meta_labels, all_containers, format_uint_i32, join_host_port, merge, meta_name,
    meta_namespace, pod_labels, service_labels, set_container_port_labels, str_or_empty,
};
use crate::discovery::TargetGroup;

/// The endpoints object's target group, source `endpoints/<namespace>/<name>`. The service of
/// the same name contributes its labels; `attach_node` adds the node of each address (its
/// `nodeName`, else a `Node` target ref).
pub fn endpoints_group(ep: &Endpoints, opts: &RoleOptions, lookup: &dyn Lookup) -> TargetGroup {
    let (ns, name) = (meta_namespace(&ep.metadata), meta_name(&ep.metadata));
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, ns);
    if let Some(svc) = lookup.service(ns, name) {
        service_labels(&mut labels, &svc);
    }
    add_object_meta_labels(&mut labels, &ep.metadata, "endpoints");
    if opts.attach_namespace {
        add_namespace_labels(&mut labels, lookup, ns);
    }

    let mut b = Builder {
        opts,
        lookup,
        targets: Vec::new(),
        seen_pods: Vec::new(),
    };
    for ss in ep.subsets.iter().flatten() {
        for port in ss.ports.iter().flatten() {
            for addr in ss.addresses.iter().flatten() {
                b.add(addr, port, "true");
            }
            // Same target again for a not-ready address; upstream relies on the later one
            // overriding the ready label when both exist.
            for addr in ss.not_ready_addresses.iter().flatten() {
                b.add(addr, port, "false");
            }
        }
    }

    // Container ports of the seen pods that no endpoint port covered. Upstream walks a Go
    // map here (random order); we keep the order in which the pods were first seen.
    let mut targets = b.targets;
    for (pod, ports) in &b.seen_pods {
        let pod_ip = pod.status.as_ref().map_or("", |s| str_or_empty(&s.pod_ip));
        if pod_ip.is_empty() {
            continue;
        }
        for (c, is_init) in all_containers(pod) {
            for cport in c.ports.iter().flatten() {
                if ports.contains(&cport.container_port) {
                    continue;
                }
                let number = format_uint_i32(cport.container_port);
                let mut t = LabelsBuilder::new();
                t.set("__address__", join_host_port(pod_ip, &number));
                let (port_name, protocol) =
                    (str_or_empty(&cport.name), str_or_empty(&cport.protocol));
                set_container_port_labels(&mut t, c, port_name, &number, protocol, is_init);
                let mut pl = LabelsBuilder::new();
                pod_labels(&mut pl, pod);
                merge(&mut t, &pl);
                targets.push(t.into_labels());
            }
        }
    }

    TargetGroup {
        targets,
        labels: labels.into_labels(),
        source: format!("endpoints/{ns}/{name}"),
    }
}

struct Builder<'a> {
    opts: &'a RoleOptions,
    lookup: &'a dyn Lookup,
    targets: Vec<promshard_model::Labels>,
    /// Pods backing some address, with the endpoint ports already targeted on them.
    seen_pods: Vec<(Arc<Pod>, Vec<i32>)>,
}

impl Builder<'_> {
    fn add(&mut self, addr: &EndpointAddress, port: &EndpointPort, ready: &str) {
        let number = format_uint_i32(port.port);
        let mut t = LabelsBuilder::new();
        t.set("__address__", join_host_port(&addr.ip, &number));
        t.set(
            format!("{META}endpoint_port_name"),
            str_or_empty(&port.name),
        );
        t.set(
            format!("{META}endpoint_port_protocol"),
            str_or_empty(&port.protocol),
        );
        t.set(format!("{META}endpoint_ready"), ready);
        let target_ref = addr.target_ref.as_ref();
        if let Some(r) = target_ref {
            t.set(
                format!("{META}endpoint_address_target_kind"),
                str_or_empty(&r.kind),
            );
            t.set(
                format!("{META}endpoint_address_target_name"),
                str_or_empty(&r.name),
            );
        }
        if let Some(node) = &addr.node_name {
            t.set(format!("{META}endpoint_node_name"), node.as_str());
        }
        if let Some(h) = addr.hostname.as_deref().filter(|h| !h.is_empty()) {
            t.set(format!("{META}endpoint_hostname"), h);
        }
        if self.opts.attach_node {
            // nodeName first, then a Node target ref (endpointslice has the opposite order).
            let node = addr.node_name.as_deref().or_else(|| {
                target_ref
                    .filter(|r| r.kind.as_deref() == Some("Node"))
                    .map(|r| str_or_empty(&r.name))
            });
            add_node_labels(&mut t, self.lookup, node);
        }

        let Some(pod) = resolve_pod_ref(self.lookup, target_ref) else {
            self.targets.push(t.into_labels());
            return;
        };
        let mut pl = LabelsBuilder::new();
        pod_labels(&mut pl, &pod);
        merge(&mut t, &pl);
        // The container port matching the endpoint port, if any. Upstream's `break` leaves only
        // the inner loop, so the last container with a matching port wins. The protocol is the
        // endpoint port's here (the endpointslice role takes the container port's).
        for (c, is_init) in all_containers(&pod) {
            for cport in c.ports.iter().flatten() {
                if cport.container_port == port.port {
                    let protocol = str_or_empty(&port.protocol);
                    set_container_port_labels(
                        &mut t,
                        c,
                        str_or_empty(&cport.name),
                        &number,
                        protocol,
                        is_init,
                    );
                    break;
                }
            }
        }
        self.seen(pod, port.port);
        self.targets.push(t.into_labels());
    }

    fn seen(&mut self, pod: Arc<Pod>, port: i32) {
        let key = |p: &Pod| {
            (
                meta_namespace(&p.metadata).to_string(),
                meta_name(&p.metadata).to_string(),
            )
        };
        let k = key(&pod);
        match self.seen_pods.iter_mut().find(|(p, _)| key(p) == k) {
            Some((_, ports)) => ports.push(port),
            None => self.seen_pods.push((pod, vec![port])),
        }
    }
}

fn resolve_pod_ref(
    lookup: &dyn Lookup,
    r: Option<&k8s_openapi::api::core::v1::ObjectReference>,
) -> Option<Arc<Pod>> {
    let r = r.filter(|r| r.kind.as_deref() == Some("Pod"))?;
    lookup.pod(str_or_empty(&r.namespace), str_or_empty(&r.name))
}
