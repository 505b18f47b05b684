//! Role `service` (`service.go` upstream): one target per service port, addressed by the
//! service's DNS name.

use k8s_openapi::api::core::v1::Service;
use promshard_model::LabelsBuilder;

use super::{
    Lookup, META, RoleOptions, add_namespace_labels, join_host_port, meta_name, meta_namespace,
    service_labels, str_or_empty,
};
use crate::discovery::TargetGroup;

/// The service's target group, source `svc/<namespace>/<name>`.
pub fn service_group(svc: &Service, opts: &RoleOptions, lookup: &dyn Lookup) -> TargetGroup {
    let (ns, name) = (meta_namespace(&svc.metadata), meta_name(&svc.metadata));
    let mut labels = LabelsBuilder::new();
    service_labels(&mut labels, svc);
    if opts.attach_namespace {
        add_namespace_labels(&mut labels, lookup, ns);
    }

    let spec = svc.spec.as_ref();
    let svc_type = spec.map_or("", |s| str_or_empty(&s.type_));
    let host = format!("{name}.{ns}.svc");
    let mut targets = Vec::new();
    for port in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
        let number = (port.port as i64).to_string();
        let mut t = LabelsBuilder::new();
        t.set("__address__", join_host_port(&host, &number));
        t.set(format!("{META}service_port_name"), str_or_empty(&port.name));
        t.set(format!("{META}service_port_number"), number);
        t.set(
            format!("{META}service_port_protocol"),
            str_or_empty(&port.protocol),
        );
        t.set(format!("{META}service_type"), svc_type);
        if svc_type == "ExternalName" {
            let external = spec.map_or("", |s| str_or_empty(&s.external_name));
            t.set(format!("{META}service_external_name"), external);
        } else {
            t.set(
                format!("{META}service_cluster_ip"),
                spec.map_or("", |s| str_or_empty(&s.cluster_ip)),
            );
        }
        if svc_type == "LoadBalancer" {
            let lb_ip = spec.map_or("", |s| str_or_empty(&s.load_balancer_ip));
            t.set(format!("{META}service_loadbalancer_ip"), lb_ip);
        }
        targets.push(t.into_labels());
    }

    TargetGroup {
        targets,
        labels: labels.into_labels(),
        source: format!("svc/{ns}/{name}"),
    }
}
