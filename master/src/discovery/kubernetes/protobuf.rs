//! The Kubernetes protobuf wire encoding of the built-in kinds discovery watches: the `k8s\0`
//! envelope (a `runtime.Unknown` carrying the type and the object's bytes), the 4-byte
//! length-prefixed frames of a watch stream, and conversions between the generated protobuf
//! types of `k8s-pb` and the `k8s-openapi` types the role builders read.
//!
//! Why protobuf: the API server encodes a protobuf LIST several times faster than JSON and
//! ships it several times smaller, which is what a master restart at 100k+ pods costs the
//! control plane (Prometheus's Kubernetes discovery asks for protobuf for the same reason).
//!
//! Decoding keeps only the fields discovery and its selectors read (see each `from_pb`):
//! volumes, env, resources, affinity and the rest of a pod never reach the store, so the
//! master's memory at 300k pods is the metadata and addresses, not whole pod specs.
//! `to_pb` is the inverse over those same fields; the API-server double uses it to serve
//! protobuf, and the round-trip test pins that both directions cover the same fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::api::discovery::v1 as pb_discovery;
use k8s_pb::api::networking::v1 as pb_networking;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime as pb_runtime;
use prost::Message;

/// The prefix of every protobuf-encoded object (`k8s.io/apimachinery/pkg/runtime/serializer/protobuf`).
pub const MAGIC: &[u8; 4] = b"k8s\0";
/// The media type of protobuf objects and lists.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// What the master asks for: protobuf, or JSON from a server (or a kind) that has no protobuf,
/// as client-go's `ContentConfig` does for built-in types.
pub const ACCEPT: &str = "application/vnd.kubernetes.protobuf, application/json";

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("protobuf object without the k8s\\0 prefix")]
    NoMagic,
    #[error("protobuf: {0}")]
    Prost(#[from] prost::DecodeError),
    #[error("protobuf list truncated: a field runs past its end")]
    Truncated,
    #[error("protobuf envelope of kind {got:?} where {want:?} was expected")]
    Kind { got: String, want: &'static str },
}

/// An object's bytes in the `k8s\0` envelope.
pub fn encode_envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = pb_runtime::Unknown {
        type_meta: Some(pb_runtime::TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = Vec::with_capacity(4 + unknown.encoded_len());
    out.extend_from_slice(MAGIC);
    // Encoding into a Vec cannot run out of room.
    let _ = unknown.encode(&mut out);
    out
}

/// The kind named by an envelope and the object's bytes.
pub fn decode_envelope(bytes: &[u8]) -> Result<(String, Vec<u8>), DecodeError> {
    let body = bytes.strip_prefix(MAGIC).ok_or(DecodeError::NoMagic)?;
    let unknown = pb_runtime::Unknown::decode(body)?;
    let kind = unknown.type_meta.and_then(|t| t.kind).unwrap_or_default();
    Ok((kind, unknown.raw.unwrap_or_default()))
}

/// One watch event as a frame of a protobuf watch stream: a big-endian u32 length, then a
/// `meta.v1.WatchEvent` whose object is itself an envelope.
pub fn encode_watch_frame(event_type: &str, object_envelope: Vec<u8>, out: &mut Vec<u8>) {
    let event = pb_meta::WatchEvent {
        r#type: Some(event_type.to_string()),
        object: Some(pb_runtime::RawExtension {
            raw: Some(object_envelope),
        }),
    };
    out.extend_from_slice(&(event.encoded_len() as u32).to_be_bytes());
    let _ = event.encode(out);
}

/// Decodes a watch event frame's payload (without the length) into its type and the object's
/// envelope bytes.
pub fn decode_watch_event(payload: &[u8]) -> Result<(String, Vec<u8>), DecodeError> {
    let event = pb_meta::WatchEvent::decode(payload)?;
    Ok((
        event.r#type.unwrap_or_default(),
        event.object.and_then(|o| o.raw).unwrap_or_default(),
    ))
}

/// A `Status` (an error event's object, or an error response), as the reflector needs it.
pub fn decode_status(raw: &[u8]) -> Result<(i32, String, String), DecodeError> {
    let s = pb_meta::Status::decode(raw)?;
    Ok((
        s.code.unwrap_or_default(),
        s.reason.unwrap_or_default(),
        s.message.unwrap_or_default(),
    ))
}

/// A `Status` in its envelope.
pub fn encode_status(code: i32, reason: &str, message: &str) -> Vec<u8> {
    let s = pb_meta::Status {
        status: Some("Failure".to_string()),
        message: Some(message.to_string()),
        reason: Some(reason.to_string()),
        code: Some(code),
        ..Default::default()
    };
    encode_envelope("v1", "Status", s.encode_to_vec())
}

/// A built-in kind with a protobuf encoding.
pub trait ProtobufKind: Sized {
    /// The generated protobuf message of the kind.
    type Pb: Message + Default;
    /// Its list message.
    type PbList: Message + Default;
    const API_VERSION: &'static str;
    const KIND: &'static str;
    const LIST_KIND: &'static str;
    /// The object, keeping only the fields discovery reads.
    fn from_pb(pb: Self::Pb) -> Self;
    /// The same fields, encoded.
    fn to_pb(&self) -> Self::Pb;
    fn make_list(resource_version: String, items: Vec<Self::Pb>) -> Self::PbList;
    /// An object with only a resourceVersion and annotations, as a BOOKMARK carries.
    fn bookmark(resource_version: String, annotations: BTreeMap<String, String>) -> Self::Pb;
    fn resource_version(pb: &Self::Pb) -> Option<&str>;
    fn annotations(pb: &Self::Pb) -> Option<&BTreeMap<String, String>>;
}

/// Decodes a LIST response body: its resourceVersion and objects.
///
/// Item by item: each object is decoded and trimmed before the next, so at most one whole
/// protobuf object is held next to the (trimmed) results, instead of the whole decoded list.
pub fn decode_list<K: ProtobufKind>(body: &[u8]) -> Result<(String, Vec<K>), DecodeError> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let (kind, raw) = decode_envelope(body)?;
    if kind != K::LIST_KIND {
        return Err(DecodeError::Kind {
            got: kind,
            want: K::LIST_KIND,
        });
    }
    // Every list message is `ListMeta metadata = 1; repeated T items = 2;`.
    let mut buf = raw.as_slice();
    let mut rv = String::new();
    let mut items = Vec::new();
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        if wire_type != WireType::LengthDelimited || !(1..=2).contains(&tag) {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
            continue;
        }
        let len = decode_varint(&mut buf)? as usize;
        if len > buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (field, rest) = buf.split_at(len);
        buf = rest;
        if tag == 1 {
            rv = pb_meta::ListMeta::decode(field)?
                .resource_version
                .unwrap_or_default();
        } else {
            items.push(K::from_pb(K::Pb::decode(field)?));
        }
    }
    Ok((rv, items))
}

/// Encodes a LIST response body.
pub fn encode_list<K: ProtobufKind>(resource_version: String, items: &[K]) -> Vec<u8> {
    let list = K::make_list(resource_version, items.iter().map(K::to_pb).collect());
    encode_envelope(K::API_VERSION, K::LIST_KIND, list.encode_to_vec())
}

/// Encodes one object in its envelope.
pub fn encode_object<K: ProtobufKind>(object: &K) -> Vec<u8> {
    encode_envelope(K::API_VERSION, K::KIND, object.to_pb().encode_to_vec())
}

fn opt_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn opt_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

fn meta_from_pb(m: Option<pb_meta::ObjectMeta>) -> meta::ObjectMeta {
    let m = m.unwrap_or_default();
    meta::ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: opt_map(m.labels),
        annotations: opt_map(m.annotations),
        owner_references: opt_vec(
            m.owner_references
                .into_iter()
                .map(|o| meta::OwnerReference {
                    api_version: o.api_version.unwrap_or_default(),
                    kind: o.kind.unwrap_or_default(),
                    name: o.name.unwrap_or_default(),
                    uid: o.uid.unwrap_or_default(),
                    controller: o.controller,
                    block_owner_deletion: None,
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn meta_to_pb(m: &meta::ObjectMeta) -> pb_meta::ObjectMeta {
    pb_meta::ObjectMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
        owner_references: m
            .owner_references
            .iter()
            .flatten()
            .map(|o| pb_meta::OwnerReference {
                api_version: Some(o.api_version.clone()),
                kind: Some(o.kind.clone()),
                name: Some(o.name.clone()),
                uid: Some(o.uid.clone()),
                controller: o.controller,
                block_owner_deletion: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn list_meta(rv: String) -> Option<pb_meta::ListMeta> {
    Some(pb_meta::ListMeta {
        resource_version: Some(rv),
        ..Default::default()
    })
}

fn bookmark_meta(rv: String, annotations: BTreeMap<String, String>) -> Option<pb_meta::ObjectMeta> {
    Some(pb_meta::ObjectMeta {
        resource_version: Some(rv),
        annotations,
        ..Default::default()
    })
}

fn object_ref_from_pb(r: pb_core::ObjectReference) -> core::ObjectReference {
    core::ObjectReference {
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        uid: r.uid,
        ..Default::default()
    }
}

fn object_ref_to_pb(r: &core::ObjectReference) -> pb_core::ObjectReference {
    pb_core::ObjectReference {
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
        ..Default::default()
    }
}

/// Implements the list and bookmark plumbing, the same for every kind.
macro_rules! kind_common {
    ($pb:ty, $list:ty, $api_version:literal, $kind:literal) => {
        type Pb = $pb;
        type PbList = $list;
        const API_VERSION: &'static str = $api_version;
        const KIND: &'static str = $kind;
        const LIST_KIND: &'static str = concat!($kind, "List");
        fn make_list(resource_version: String, items: Vec<$pb>) -> $list {
            <$list>::from_parts(list_meta(resource_version), items)
        }
        fn bookmark(resource_version: String, annotations: BTreeMap<String, String>) -> $pb {
            <$pb>::with_meta(bookmark_meta(resource_version, annotations))
        }
        fn resource_version(pb: &$pb) -> Option<&str> {
            pb.metadata.as_ref()?.resource_version.as_deref()
        }
        fn annotations(pb: &$pb) -> Option<&BTreeMap<String, String>> {
            pb.metadata.as_ref().map(|m| &m.annotations)
        }
    };
}

/// Constructors the generated types lack, so the macro above can build any kind's list and
/// bookmark.
trait Parts<T> {
    fn from_parts(metadata: Option<pb_meta::ListMeta>, items: Vec<T>) -> Self;
}
trait WithMeta {
    fn with_meta(metadata: Option<pb_meta::ObjectMeta>) -> Self;
}

macro_rules! parts {
    ($($pb:ty, $list:ty);* $(;)?) => {$(
        impl Parts<$pb> for $list {
            fn from_parts(metadata: Option<pb_meta::ListMeta>, items: Vec<$pb>) -> Self {
                Self { metadata, items }
            }
        }
        impl WithMeta for $pb {
            fn with_meta(metadata: Option<pb_meta::ObjectMeta>) -> Self {
                Self { metadata, ..Default::default() }
            }
        }
    )*};
}

parts! {
    pb_core::Pod, pb_core::PodList;
    pb_core::Node, pb_core::NodeList;
    pb_core::Service, pb_core::ServiceList;
    pb_core::Endpoints, pb_core::EndpointsList;
    pb_core::Namespace, pb_core::NamespaceList;
    pb_discovery::EndpointSlice, pb_discovery::EndpointSliceList;
    pb_networking::Ingress, pb_networking::IngressList;
}

fn container_from_pb(c: pb_core::Container) -> core::Container {
    core::Container {
        name: c.name.unwrap_or_default(),
        image: c.image,
        ports: opt_vec(
            c.ports
                .into_iter()
                .map(|p| core::ContainerPort {
                    name: p.name,
                    container_port: p.container_port.unwrap_or_default(),
                    protocol: p.protocol,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn container_to_pb(c: &core::Container) -> pb_core::Container {
    pb_core::Container {
        name: Some(c.name.clone()),
        image: c.image.clone(),
        ports: c
            .ports
            .iter()
            .flatten()
            .map(|p| pb_core::ContainerPort {
                name: p.name.clone(),
                container_port: Some(p.container_port),
                protocol: p.protocol.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn container_statuses_from_pb(
    s: Vec<pb_core::ContainerStatus>,
) -> Option<Vec<core::ContainerStatus>> {
    opt_vec(
        s.into_iter()
            .map(|s| core::ContainerStatus {
                name: s.name.unwrap_or_default(),
                container_id: s.container_id,
                ..Default::default()
            })
            .collect(),
    )
}

fn container_statuses_to_pb(
    s: &Option<Vec<core::ContainerStatus>>,
) -> Vec<pb_core::ContainerStatus> {
    s.iter()
        .flatten()
        .map(|s| pb_core::ContainerStatus {
            name: Some(s.name.clone()),
            container_id: s.container_id.clone(),
            ..Default::default()
        })
        .collect()
}

impl ProtobufKind for core::Pod {
    kind_common!(pb_core::Pod, pb_core::PodList, "v1", "Pod");

    fn from_pb(pb: pb_core::Pod) -> Self {
        let spec = pb.spec.map(|s| core::PodSpec {
            containers: s.containers.into_iter().map(container_from_pb).collect(),
            init_containers: opt_vec(
                s.init_containers
                    .into_iter()
                    .map(container_from_pb)
                    .collect(),
            ),
            node_name: s.node_name,
            restart_policy: s.restart_policy,
            scheduler_name: s.scheduler_name,
            service_account_name: s.service_account_name,
            host_network: s.host_network,
            ..Default::default()
        });
        let status = pb.status.map(|s| core::PodStatus {
            phase: s.phase,
            pod_ip: s.pod_ip,
            // Read by field selectors only (`status.nominatedNodeName`).
            nominated_node_name: s.nominated_node_name,
            pod_ips: opt_vec(
                s.pod_ips
                    .into_iter()
                    .map(|ip| core::PodIP {
                        ip: ip.ip.unwrap_or_default(),
                    })
                    .collect(),
            ),
            host_ip: s.host_ip,
            conditions: opt_vec(
                s.conditions
                    .into_iter()
                    .map(|c| core::PodCondition {
                        type_: c.r#type.unwrap_or_default(),
                        status: c.status.unwrap_or_default(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            container_statuses: container_statuses_from_pb(s.container_statuses),
            init_container_statuses: container_statuses_from_pb(s.init_container_statuses),
            ..Default::default()
        });
        core::Pod {
            metadata: meta_from_pb(pb.metadata),
            spec,
            status,
        }
    }

    fn to_pb(&self) -> pb_core::Pod {
        let spec = self.spec.as_ref().map(|s| pb_core::PodSpec {
            containers: s.containers.iter().map(container_to_pb).collect(),
            init_containers: s
                .init_containers
                .iter()
                .flatten()
                .map(container_to_pb)
                .collect(),
            node_name: s.node_name.clone(),
            restart_policy: s.restart_policy.clone(),
            scheduler_name: s.scheduler_name.clone(),
            service_account_name: s.service_account_name.clone(),
            host_network: s.host_network,
            ..Default::default()
        });
        let status = self.status.as_ref().map(|s| pb_core::PodStatus {
            phase: s.phase.clone(),
            pod_ip: s.pod_ip.clone(),
            nominated_node_name: s.nominated_node_name.clone(),
            pod_ips: s
                .pod_ips
                .iter()
                .flatten()
                .map(|ip| pb_core::PodIp {
                    ip: Some(ip.ip.clone()),
                })
                .collect(),
            host_ip: s.host_ip.clone(),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| pb_core::PodCondition {
                    r#type: Some(c.type_.clone()),
                    status: Some(c.status.clone()),
                    ..Default::default()
                })
                .collect(),
            container_statuses: container_statuses_to_pb(&s.container_statuses),
            init_container_statuses: container_statuses_to_pb(&s.init_container_statuses),
            ..Default::default()
        });
        pb_core::Pod {
            metadata: Some(meta_to_pb(&self.metadata)),
            spec,
            status,
        }
    }
}

impl ProtobufKind for core::Node {
    kind_common!(pb_core::Node, pb_core::NodeList, "v1", "Node");

    fn from_pb(pb: pb_core::Node) -> Self {
        core::Node {
            metadata: meta_from_pb(pb.metadata),
            spec: pb.spec.map(|s| core::NodeSpec {
                provider_id: s.provider_id,
                unschedulable: s.unschedulable,
                ..Default::default()
            }),
            status: pb.status.map(|s| core::NodeStatus {
                addresses: opt_vec(
                    s.addresses
                        .into_iter()
                        .map(|a| core::NodeAddress {
                            type_: a.r#type.unwrap_or_default(),
                            address: a.address.unwrap_or_default(),
                        })
                        .collect(),
                ),
                daemon_endpoints: s.daemon_endpoints.map(|d| core::NodeDaemonEndpoints {
                    kubelet_endpoint: d.kubelet_endpoint.map(|k| core::DaemonEndpoint {
                        port: k.port.unwrap_or_default(),
                    }),
                }),
                ..Default::default()
            }),
        }
    }

    fn to_pb(&self) -> pb_core::Node {
        pb_core::Node {
            metadata: Some(meta_to_pb(&self.metadata)),
            spec: self.spec.as_ref().map(|s| pb_core::NodeSpec {
                provider_id: s.provider_id.clone(),
                unschedulable: s.unschedulable,
                ..Default::default()
            }),
            status: self.status.as_ref().map(|s| pb_core::NodeStatus {
                addresses: s
                    .addresses
                    .iter()
                    .flatten()
                    .map(|a| pb_core::NodeAddress {
                        r#type: Some(a.type_.clone()),
                        address: Some(a.address.clone()),
                    })
                    .collect(),
                daemon_endpoints: s.daemon_endpoints.as_ref().map(|d| {
                    pb_core::NodeDaemonEndpoints {
                        kubelet_endpoint: d
                            .kubelet_endpoint
                            .as_ref()
                            .map(|k| pb_core::DaemonEndpoint { port: Some(k.port) }),
                    }
                }),
                ..Default::default()
            }),
        }
    }
}

impl ProtobufKind for core::Service {
    kind_common!(pb_core::Service, pb_core::ServiceList, "v1", "Service");

    fn from_pb(pb: pb_core::Service) -> Self {
        core::Service {
            metadata: meta_from_pb(pb.metadata),
            spec: pb.spec.map(|s| core::ServiceSpec {
                type_: s.r#type,
                cluster_ip: s.cluster_ip,
                external_name: s.external_name,
                load_balancer_ip: s.load_balancer_ip,
                ports: opt_vec(
                    s.ports
                        .into_iter()
                        .map(|p| core::ServicePort {
                            name: p.name,
                            port: p.port.unwrap_or_default(),
                            protocol: p.protocol,
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn to_pb(&self) -> pb_core::Service {
        pb_core::Service {
            metadata: Some(meta_to_pb(&self.metadata)),
            spec: self.spec.as_ref().map(|s| pb_core::ServiceSpec {
                r#type: s.type_.clone(),
                cluster_ip: s.cluster_ip.clone(),
                external_name: s.external_name.clone(),
                load_balancer_ip: s.load_balancer_ip.clone(),
                ports: s
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| pb_core::ServicePort {
                        name: p.name.clone(),
                        port: Some(p.port),
                        protocol: p.protocol.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            status: None,
        }
    }
}

fn endpoint_addresses_from_pb(
    a: Vec<pb_core::EndpointAddress>,
) -> Option<Vec<core::EndpointAddress>> {
    opt_vec(
        a.into_iter()
            .map(|a| core::EndpointAddress {
                ip: a.ip.unwrap_or_default(),
                hostname: a.hostname,
                node_name: a.node_name,
                target_ref: a.target_ref.map(object_ref_from_pb),
            })
            .collect(),
    )
}

fn endpoint_addresses_to_pb(
    a: &Option<Vec<core::EndpointAddress>>,
) -> Vec<pb_core::EndpointAddress> {
    a.iter()
        .flatten()
        .map(|a| pb_core::EndpointAddress {
            ip: Some(a.ip.clone()),
            hostname: a.hostname.clone(),
            node_name: a.node_name.clone(),
            target_ref: a.target_ref.as_ref().map(object_ref_to_pb),
        })
        .collect()
}

impl ProtobufKind for core::Endpoints {
    kind_common!(
        pb_core::Endpoints,
        pb_core::EndpointsList,
        "v1",
        "Endpoints"
    );

    fn from_pb(pb: pb_core::Endpoints) -> Self {
        core::Endpoints {
            metadata: meta_from_pb(pb.metadata),
            subsets: opt_vec(
                pb.subsets
                    .into_iter()
                    .map(|s| core::EndpointSubset {
                        addresses: endpoint_addresses_from_pb(s.addresses),
                        not_ready_addresses: endpoint_addresses_from_pb(s.not_ready_addresses),
                        ports: opt_vec(
                            s.ports
                                .into_iter()
                                .map(|p| core::EndpointPort {
                                    name: p.name,
                                    port: p.port.unwrap_or_default(),
                                    protocol: p.protocol,
                                    app_protocol: p.app_protocol,
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            ),
        }
    }

    fn to_pb(&self) -> pb_core::Endpoints {
        pb_core::Endpoints {
            metadata: Some(meta_to_pb(&self.metadata)),
            subsets: self
                .subsets
                .iter()
                .flatten()
                .map(|s| pb_core::EndpointSubset {
                    addresses: endpoint_addresses_to_pb(&s.addresses),
                    not_ready_addresses: endpoint_addresses_to_pb(&s.not_ready_addresses),
                    ports: s
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| pb_core::EndpointPort {
                            name: p.name.clone(),
                            port: Some(p.port),
                            protocol: p.protocol.clone(),
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl ProtobufKind for core::Namespace {
    kind_common!(
        pb_core::Namespace,
        pb_core::NamespaceList,
        "v1",
        "Namespace"
    );

    fn from_pb(pb: pb_core::Namespace) -> Self {
        core::Namespace {
            metadata: meta_from_pb(pb.metadata),
            ..Default::default()
        }
    }

    fn to_pb(&self) -> pb_core::Namespace {
        pb_core::Namespace {
            metadata: Some(meta_to_pb(&self.metadata)),
            ..Default::default()
        }
    }
}

impl ProtobufKind for discovery::EndpointSlice {
    kind_common!(
        pb_discovery::EndpointSlice,
        pb_discovery::EndpointSliceList,
        "discovery.k8s.io/v1",
        "EndpointSlice"
    );

    fn from_pb(pb: pb_discovery::EndpointSlice) -> Self {
        discovery::EndpointSlice {
            metadata: meta_from_pb(pb.metadata),
            address_type: pb.address_type.unwrap_or_default(),
            endpoints: pb
                .endpoints
                .into_iter()
                .map(|e| discovery::Endpoint {
                    addresses: e.addresses,
                    conditions: e.conditions.map(|c| discovery::EndpointConditions {
                        ready: c.ready,
                        serving: c.serving,
                        terminating: c.terminating,
                    }),
                    hostname: e.hostname,
                    target_ref: e.target_ref.map(object_ref_from_pb),
                    node_name: e.node_name,
                    zone: e.zone,
                    deprecated_topology: opt_map(e.deprecated_topology),
                    hints: None,
                })
                .collect(),
            ports: opt_vec(
                pb.ports
                    .into_iter()
                    .map(|p| discovery::EndpointPort {
                        name: p.name,
                        port: p.port,
                        protocol: p.protocol,
                        app_protocol: p.app_protocol,
                    })
                    .collect(),
            ),
        }
    }

    fn to_pb(&self) -> pb_discovery::EndpointSlice {
        pb_discovery::EndpointSlice {
            metadata: Some(meta_to_pb(&self.metadata)),
            address_type: Some(self.address_type.clone()),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| pb_discovery::Endpoint {
                    addresses: e.addresses.clone(),
                    conditions: e
                        .conditions
                        .as_ref()
                        .map(|c| pb_discovery::EndpointConditions {
                            ready: c.ready,
                            serving: c.serving,
                            terminating: c.terminating,
                        }),
                    hostname: e.hostname.clone(),
                    target_ref: e.target_ref.as_ref().map(object_ref_to_pb),
                    node_name: e.node_name.clone(),
                    zone: e.zone.clone(),
                    deprecated_topology: e.deprecated_topology.clone().unwrap_or_default(),
                    hints: None,
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .flatten()
                .map(|p| pb_discovery::EndpointPort {
                    name: p.name.clone(),
                    port: p.port,
                    protocol: p.protocol.clone(),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect(),
        }
    }
}

impl ProtobufKind for networking::Ingress {
    kind_common!(
        pb_networking::Ingress,
        pb_networking::IngressList,
        "networking.k8s.io/v1",
        "Ingress"
    );

    fn from_pb(pb: pb_networking::Ingress) -> Self {
        networking::Ingress {
            metadata: meta_from_pb(pb.metadata),
            spec: pb.spec.map(|s| networking::IngressSpec {
                ingress_class_name: s.ingress_class_name,
                tls: opt_vec(
                    s.tls
                        .into_iter()
                        .map(|t| networking::IngressTLS {
                            hosts: opt_vec(t.hosts),
                            secret_name: None,
                        })
                        .collect(),
                ),
                rules: opt_vec(
                    s.rules
                        .into_iter()
                        .map(|r| networking::IngressRule {
                            host: r.host,
                            http: r.ingress_rule_value.and_then(|v| v.http).map(|h| {
                                networking::HTTPIngressRuleValue {
                                    paths: h
                                        .paths
                                        .into_iter()
                                        .map(|p| networking::HTTPIngressPath {
                                            path: p.path,
                                            path_type: p.path_type.unwrap_or_default(),
                                            ..Default::default()
                                        })
                                        .collect(),
                                }
                            }),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn to_pb(&self) -> pb_networking::Ingress {
        pb_networking::Ingress {
            metadata: Some(meta_to_pb(&self.metadata)),
            spec: self.spec.as_ref().map(|s| pb_networking::IngressSpec {
                ingress_class_name: s.ingress_class_name.clone(),
                tls: s
                    .tls
                    .iter()
                    .flatten()
                    .map(|t| pb_networking::IngressTls {
                        hosts: t.hosts.clone().unwrap_or_default(),
                        secret_name: None,
                    })
                    .collect(),
                rules: s
                    .rules
                    .iter()
                    .flatten()
                    .map(|r| pb_networking::IngressRule {
                        host: r.host.clone(),
                        ingress_rule_value: Some(pb_networking::IngressRuleValue {
                            http: r
                                .http
                                .as_ref()
                                .map(|h| pb_networking::HttpIngressRuleValue {
                                    paths: h
                                        .paths
                                        .iter()
                                        .map(|p| pb_networking::HttpIngressPath {
                                            path: p.path.clone(),
                                            path_type: Some(p.path_type.clone()),
                                            ..Default::default()
                                        })
                                        .collect(),
                                }),
                        }),
                    })
                    .collect(),
                ..Default::default()
            }),
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Decoding what was encoded gives `trimmed`: every field discovery reads, nothing else.
    fn round_trip<K>(full: serde_json::Value, trimmed: serde_json::Value)
    where
        K: ProtobufKind + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let full: K = serde_json::from_value(full).unwrap();
        let trimmed: K = serde_json::from_value(trimmed).unwrap();
        let body = encode_list("42".to_string(), std::slice::from_ref(&full));
        assert_eq!(&body[..4], MAGIC);
        let (rv, items) = decode_list::<K>(&body).unwrap();
        assert_eq!(rv, "42");
        assert_eq!(items, vec![trimmed]);
    }

    fn meta() -> serde_json::Value {
        json!({
            "name": "a", "namespace": "ns", "uid": "u-1", "resourceVersion": "7",
            "labels": {"app": "x"}, "annotations": {"note": "y"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-0", "controller": true}],
        })
    }

    #[test]
    fn pods_keep_what_discovery_reads() {
        let mut full_meta = meta();
        full_meta["managedFields"] = json!([{"manager": "kubectl"}]);
        full_meta["generateName"] = json!("a-");
        let container = |name: &str| json!({"name": name, "image": "img:1", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]});
        let mut full_container = container("c");
        full_container["env"] = json!([{"name": "A", "value": "1"}]);
        full_container["resources"] = json!({"limits": {"cpu": "1"}});
        let status = json!({
            "phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
            "hostIP": "10.1.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "containerID": "containerd://abc", "image": "", "imageID": "", "ready": false, "restartCount": 0}],
            "initContainerStatuses": [{"name": "i", "containerID": "containerd://def", "image": "", "imageID": "", "ready": false, "restartCount": 0}],
        });
        let spec = |c: serde_json::Value| {
            json!({"containers": [c], "initContainers": [{"name": "i", "image": "init:1"}],
                   "nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                   "serviceAccountName": "sa", "hostNetwork": false})
        };
        let mut full_spec = spec(full_container);
        full_spec["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
        round_trip::<core::Pod>(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": full_meta, "spec": full_spec, "status": status}),
            json!({"metadata": meta(), "spec": spec(container("c")), "status": status}),
        );
    }

    #[test]
    fn endpointslices_nodes_services_endpoints_ingresses_round_trip() {
        let slice = json!({
            "metadata": meta(), "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                           "hostname": "h", "nodeName": "n1", "zone": "z", "deprecatedTopology": {"k": "v"},
                           "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "u-1"}}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}],
        });
        round_trip::<discovery::EndpointSlice>(slice.clone(), slice);
        let node = json!({
            "metadata": meta(), "spec": {"providerID": "aws://i-1", "unschedulable": true},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}, {"type": "Hostname", "address": "n1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}},
        });
        round_trip::<core::Node>(node.clone(), node);
        let svc = json!({
            "metadata": meta(),
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.1", "loadBalancerIP": "1.2.3.4", "externalName": "e",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        });
        round_trip::<core::Service>(svc.clone(), svc);
        let ep = json!({
            "metadata": meta(),
            "subsets": [{"addresses": [{"ip": "10.0.0.1", "hostname": "h", "nodeName": "n1",
                                         "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a"}}],
                         "notReadyAddresses": [{"ip": "10.0.0.2"}],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}],
        });
        round_trip::<core::Endpoints>(ep.clone(), ep);
        let ing = json!({
            "metadata": meta(),
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example"]}],
                     "rules": [{"host": "a.example", "http": {"paths": [{"path": "/x", "pathType": "Prefix",
                                "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}},
                               {"host": "b.example"}]},
        });
        let mut ing_trimmed = ing.clone();
        ing_trimmed["spec"]["rules"][0]["http"]["paths"][0]["backend"] = json!({});
        round_trip::<networking::Ingress>(ing, ing_trimmed);
        let ns = json!({"metadata": {"name": "ns", "labels": {"team": "t"}}});
        round_trip::<core::Namespace>(ns.clone(), ns);
    }

    #[test]
    fn a_list_of_another_kind_is_refused() {
        let body = encode_list::<core::Node>("1".to_string(), &[]);
        assert!(matches!(
            decode_list::<core::Pod>(&body),
            Err(DecodeError::Kind { .. })
        ));
        assert!(matches!(
            decode_list::<core::Pod>(b"{\"kind\":\"PodList\"}"),
            Err(DecodeError::NoMagic)
        ));
    }

    #[test]
    fn watch_frames_carry_their_length_and_an_enveloped_object() {
        let pod: core::Pod =
            serde_json::from_value(json!({"metadata": {"name": "a", "namespace": "ns"}})).unwrap();
        let mut out = Vec::new();
        encode_watch_frame("ADDED", encode_object(&pod), &mut out);
        encode_watch_frame("ERROR", encode_status(410, "Expired", "too old"), &mut out);
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        let (ty, envelope) = decode_watch_event(&out[4..4 + len]).unwrap();
        assert_eq!(ty, "ADDED");
        let (kind, raw) = decode_envelope(&envelope).unwrap();
        assert_eq!(kind, "Pod");
        assert_eq!(
            core::Pod::from_pb(pb_core::Pod::decode(raw.as_slice()).unwrap()),
            pod
        );
        let rest = &out[4 + len..];
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(rest.len(), 4 + len);
        let (ty, envelope) = decode_watch_event(&rest[4..]).unwrap();
        assert_eq!(ty, "ERROR");
        let (kind, raw) = decode_envelope(&envelope).unwrap();
        assert_eq!(kind, "Status");
        assert_eq!(
            decode_status(&raw).unwrap(),
            (410, "Expired".to_string(), "too old".to_string())
        );
    }
}
