//! The prometheus-operator custom resources as the shared watches store them: metadata typed,
//! `spec` kept as raw JSON.
//!
//! Why raw: a watch decodes every object of its LIST into one type, so a single ServiceMonitor
//! with a field our types reject (a newer operator's, or a typo the CRD's schema let through)
//! would fail the whole LIST and leave every monitor unread. Keeping the spec raw lets the
//! generator (`discovery/prometheus_cr/`) refuse that one object, with its reason, and go on.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

macro_rules! custom_resource {
    ($name:ident, $kind:literal, $version:literal, $plural:literal) => {
        #[doc = concat!("A `monitoring.coreos.com/", $version, "` ", $kind, ".")]
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        pub struct $name {
            #[serde(default)]
            pub metadata: ObjectMeta,
            #[serde(default)]
            pub spec: serde_json::Value,
        }

        impl k8s_openapi::Resource for $name {
            const API_VERSION: &'static str = concat!("monitoring.coreos.com/", $version);
            const GROUP: &'static str = "monitoring.coreos.com";
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::ListableResource for $name {
            const LIST_KIND: &'static str = concat!($kind, "List");
        }

        impl k8s_openapi::Metadata for $name {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

custom_resource!(
    ServiceMonitorObject,
    "ServiceMonitor",
    "v1",
    "servicemonitors"
);
custom_resource!(PodMonitorObject, "PodMonitor", "v1", "podmonitors");
custom_resource!(ProbeObject, "Probe", "v1", "probes");
custom_resource!(
    ScrapeConfigObject,
    "ScrapeConfig",
    "v1alpha1",
    "scrapeconfigs"
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn paths_are_the_operators() {
        assert_eq!(
            ServiceMonitorObject::url_path(&(), Some("ns")),
            "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors"
        );
        assert_eq!(
            ScrapeConfigObject::url_path(&(), None),
            "/apis/monitoring.coreos.com/v1alpha1/scrapeconfigs"
        );
    }
}
