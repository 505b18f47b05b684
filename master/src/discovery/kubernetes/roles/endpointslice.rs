//! Role `endpointslice` (`endpointslice.go` upstream): one target per endpoint, port and
//! address, with the endpoint's conditions, enriched with the backing pod, plus one target per
//! container port of those pods that no endpoint port covers.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use promshard_model::LabelsBuilder;

use super::{
    Lookup, META, NAMESPACE_LABEL, PRESENT, RoleOptions, add_namespace_labels, add_node_labels,
    add_object_meta_labels, all_containers, format_uint_i32, join_host_port, merge, meta_name,
    meta_namespace, pod_labels, sanitize_label_name, service_labels, set_container_port_labels,
    str_or_empty,
};
use crate::discovery::TargetGroup;

/// The label every EndpointSlice carries with the name of its service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The slice's target group, source `endpointslice/<namespace>/<name>`. The service named by
/// the slice's `kubernetes.io/service-name` label contributes its labels; `attach_node` adds
/// the node of each endpoint (a `Node` target ref, else its `nodeName`).
pub fn endpointslice_group(
    eps: &EndpointSlice,
    opts: &RoleOptions,
    lookup: &dyn Lookup,
) -> TargetGroup {
    let (ns, name) = (meta_namespace(&eps.metadata), meta_name(&eps.metadata));
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, ns);
    labels.set(
        format!("{META}endpointslice_address_type"),
        eps.address_type.as_str(),
    );
    add_object_meta_labels(&mut labels, &eps.metadata, "endpointslice");
    let svc_name = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL));
    if let Some(svc) = svc_name.and_then(|n| lookup.service(ns, n)) {
        service_labels(&mut labels, &svc);
    }
    if opts.attach_namespace {
        add_namespace_labels(&mut labels, lookup, ns);
    }

    let mut b = Builder {
        opts,
        lookup,
        targets: Vec::new(),
        seen_pods: Vec::new(),
    };
    for ep in &eps.endpoints {
        for port in eps.ports.iter().flatten() {
            for addr in &ep.addresses {
                b.add(addr, ep, port);
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
                if ports.contains(&Some(cport.container_port)) {
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
        source: format!("endpointslice/{ns}/{name}"),
    }
}

struct Builder<'a> {
    opts: &'a RoleOptions,
    lookup: &'a dyn Lookup,
    targets: Vec<promshard_model::Labels>,
    /// Pods backing some endpoint, with the endpoint ports already targeted on them.
    seen_pods: Vec<(Arc<Pod>, Vec<Option<i32>>)>,
}

impl Builder<'_> {
    fn add(&mut self, addr: &str, ep: &Endpoint, port: &EndpointPort) {
        let number = port.port.map(format_uint_i32);
        let mut t = LabelsBuilder::new();
        t.set(
            "__address__",
            number
                .as_deref()
                .map_or_else(|| addr.to_string(), |n| join_host_port(addr, n)),
        );
        if let Some(n) = &port.name {
            t.set(format!("{META}endpointslice_port_name"), n.as_str());
        }
        if let Some(p) = &port.protocol {
            t.set(format!("{META}endpointslice_port_protocol"), p.as_str());
        }
        if let Some(n) = &number {
            t.set(format!("{META}endpointslice_port"), n.as_str());
        }
        if let Some(a) = &port.app_protocol {
            t.set(format!("{META}endpointslice_port_app_protocol"), a.as_str());
        }
        let cond = ep.conditions.as_ref();
        for (what, v) in [
            ("ready", cond.and_then(|c| c.ready)),
            ("serving", cond.and_then(|c| c.serving)),
            ("terminating", cond.and_then(|c| c.terminating)),
        ] {
            if let Some(v) = v {
                t.set(
                    format!("{META}endpointslice_endpoint_conditions_{what}"),
                    v.to_string(),
                );
            }
        }
        if let Some(h) = &ep.hostname {
            t.set(format!("{META}endpointslice_endpoint_hostname"), h.as_str());
        }
        let target_ref = ep.target_ref.as_ref();
        if let Some(r) = target_ref {
            t.set(
                format!("{META}endpointslice_address_target_kind"),
                str_or_empty(&r.kind),
            );
            t.set(
                format!("{META}endpointslice_address_target_name"),
                str_or_empty(&r.name),
            );
        }
        if let Some(n) = &ep.node_name {
            t.set(
                format!("{META}endpointslice_endpoint_node_name"),
                n.as_str(),
            );
        }
        if let Some(z) = &ep.zone {
            t.set(format!("{META}endpointslice_endpoint_zone"), z.as_str());
        }
        for (k, v) in ep.deprecated_topology.iter().flatten() {
            let ln = sanitize_label_name(k);
            t.set(
                format!("{META}endpointslice_endpoint_topology_{ln}"),
                v.as_str(),
            );
            t.set(
                format!("{META}endpointslice_endpoint_topology_present_{ln}"),
                PRESENT,
            );
        }
        if self.opts.attach_node {
            // A Node target ref first, then nodeName (the endpoints role has the opposite order).
            let node = match target_ref {
                Some(r) if r.kind.as_deref() == Some("Node") => Some(str_or_empty(&r.name)),
                _ => ep.node_name.as_deref(),
            };
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
        // the inner loop, so the last container with a matching port wins.
        if let (Some(p), Some(n)) = (port.port, &number) {
            for (c, is_init) in all_containers(&pod) {
                for cport in c.ports.iter().flatten() {
                    if cport.container_port == p {
                        let (port_name, protocol) =
                            (str_or_empty(&cport.name), str_or_empty(&cport.protocol));
                        set_container_port_labels(&mut t, c, port_name, n, protocol, is_init);
                        break;
                    }
                }
            }
        }
        self.seen(pod, port.port);
        self.targets.push(t.into_labels());
    }

    fn seen(&mut self, pod: Arc<Pod>, port: Option<i32>) {
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

fn resolve_pod_ref(lookup: &dyn Lookup, r: Option<&ObjectReference>) -> Option<Arc<Pod>> {
    let r = r.filter(|r| r.kind.as_deref() == Some("Pod"))?;
    lookup.pod(str_or_empty(&r.namespace), str_or_empty(&r.name))
}
