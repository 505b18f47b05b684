//! Role `ingress` (`ingress.go` upstream): one target per rule host and path.

use k8s_openapi::api::networking::v1::Ingress;
use promshard_model::LabelsBuilder;

use super::{
    Lookup, META, NAMESPACE_LABEL, RoleOptions, add_namespace_labels, add_object_meta_labels,
    meta_name, meta_namespace, str_or_empty,
};
use crate::discovery::TargetGroup;

/// The ingress's target group, source `ingress/<namespace>/<name>`.
pub fn ingress_group(ing: &Ingress, opts: &RoleOptions, lookup: &dyn Lookup) -> TargetGroup {
    let (ns, name) = (meta_namespace(&ing.metadata), meta_name(&ing.metadata));
    let spec = ing.spec.as_ref();
    let mut labels = LabelsBuilder::new();
    labels.set(NAMESPACE_LABEL, ns);
    if let Some(class) = spec.and_then(|s| s.ingress_class_name.as_deref()) {
        labels.set(format!("{META}ingress_class_name"), class);
    }
    add_object_meta_labels(&mut labels, &ing.metadata, "ingress");
    if opts.attach_namespace {
        add_namespace_labels(&mut labels, lookup, ns);
    }

    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|t| t.hosts.iter().flatten())
        .map(String::as_str)
        .collect();

    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = str_or_empty(&rule.host);
        let scheme = if tls_hosts.iter().any(|p| matches_hostname_pattern(p, host)) {
            "https"
        } else {
            "http"
        };
        // A rule without `http` is one target on "/"; an `http` without paths is none.
        let paths: Vec<&str> = match &rule.http {
            None => vec!["/"],
            Some(http) => http
                .paths
                .iter()
                .map(|p| match p.path.as_deref() {
                    None | Some("") => "/",
                    Some(p) => p,
                })
                .collect(),
        };
        for path in paths {
            let mut t = LabelsBuilder::new();
            t.set("__address__", host);
            t.set(format!("{META}ingress_scheme"), scheme);
            t.set(format!("{META}ingress_host"), host);
            t.set(format!("{META}ingress_path"), path);
            targets.push(t.into_labels());
        }
    }

    TargetGroup {
        targets,
        labels: labels.into_labels(),
        source: format!("ingress/{ns}/{name}"),
    }
}

/// True if `host` equals the TLS host `pattern` or matches it as a one-label wildcard
/// (`*.example.com` matches `a.example.com`, not `example.com` nor `a.b.example.com`).
fn matches_hostname_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.split('.').collect();
    let host_parts: Vec<&str> = host.split('.').collect();
    if pattern_parts[0] != "*" || pattern_parts.len() != host_parts.len() {
        return false;
    }
    pattern_parts[1..] == host_parts[1..]
}
