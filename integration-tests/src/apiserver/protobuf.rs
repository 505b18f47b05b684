//! The double's protobuf encoding (`application/vnd.kubernetes.protobuf`) of the built-in kinds
//! discovery watches: LIST bodies in the `k8s\0` envelope and watch streams of length-prefixed
//! `WatchEvent` frames, with the generated types of `k8s-pb` that a real API server's bytes
//! decode into.
//!
//! The objects go JSON → `k8s-openapi` → protobuf through the master's codec (its `to_pb`),
//! which encodes the fields discovery reads; the other fields of an object are not served in
//! protobuf. The JSON path of the double is unchanged, so the tests that assert exact labels
//! through either encoding pin that no field discovery reads is lost on the way.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use promshard_master::discovery::kubernetes::protobuf::{self as codec, ProtobufKind};
use prost::Message as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(super) use codec::{CONTENT_TYPE, WATCH_CONTENT_TYPE};

/// Encodes a LIST body at a resourceVersion.
type ListEncoder = fn(u64, &[Arc<Value>]) -> Result<Vec<u8>, String>;

/// The encoders of one kind.
#[derive(Clone, Copy)]
pub(super) struct Codec {
    list: ListEncoder,
    object: fn(&Value) -> Result<Vec<u8>, String>,
    bookmark: fn(u64, bool) -> Vec<u8>,
}

impl Codec {
    /// The protobuf codec of a kind, or `None` for kinds the double serves as JSON only (as a
    /// real server does for custom resources).
    pub(super) fn of(plural: &str) -> Option<Codec> {
        Some(match plural {
            "pods" => codec::<Pod>(),
            "nodes" => codec::<Node>(),
            "services" => codec::<Service>(),
            "endpoints" => codec::<Endpoints>(),
            "namespaces" => codec::<Namespace>(),
            "endpointslices" => codec::<EndpointSlice>(),
            "ingresses" => codec::<Ingress>(),
            _ => return None,
        })
    }

    /// A LIST body.
    pub(super) fn list(&self, rv: u64, items: &[Arc<Value>]) -> Result<Vec<u8>, String> {
        (self.list)(rv, items)
    }

    /// A watch event frame, appended to `out`.
    pub(super) fn push_event(
        &self,
        out: &mut Vec<u8>,
        kind: &str,
        object: &Value,
    ) -> Result<(), String> {
        codec::encode_watch_frame(kind, (self.object)(object)?, out);
        Ok(())
    }

    pub(super) fn push_bookmark(&self, out: &mut Vec<u8>, rv: u64, initial_events_end: bool) {
        codec::encode_watch_frame("BOOKMARK", (self.bookmark)(rv, initial_events_end), out);
    }
}

/// An ERROR watch event frame carrying a `Status`.
pub(super) fn push_error(out: &mut Vec<u8>, code: u16, reason: &str, message: &str) {
    codec::encode_watch_frame(
        "ERROR",
        codec::encode_status(code.into(), reason, message),
        out,
    );
}

fn codec<K: ProtobufKind + DeserializeOwned>() -> Codec {
    Codec {
        list: list::<K>,
        object: object::<K>,
        bookmark: bookmark::<K>,
    }
}

fn typed<K: DeserializeOwned>(object: &Value) -> Result<K, String> {
    K::deserialize(object).map_err(|e| format!("the object does not decode as its kind: {e}"))
}

fn list<K: ProtobufKind + DeserializeOwned>(
    rv: u64,
    items: &[Arc<Value>],
) -> Result<Vec<u8>, String> {
    let items = items
        .iter()
        .map(|o| typed::<K>(o))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(codec::encode_list(rv.to_string(), &items))
}

fn object<K: ProtobufKind + DeserializeOwned>(object: &Value) -> Result<Vec<u8>, String> {
    Ok(codec::encode_object(&typed::<K>(object)?))
}

fn bookmark<K: ProtobufKind>(rv: u64, initial_events_end: bool) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    if initial_events_end {
        annotations.insert("k8s.io/initial-events-end".to_string(), "true".to_string());
    }
    let pb = K::bookmark(rv.to_string(), annotations);
    codec::encode_envelope(K::API_VERSION, K::KIND, pb.encode_to_vec())
}
