//! Generated wire types. `control` is promshard's own control plane (`promshard.v1`);
//! `prometheus` is remote-write 1.0 (`prometheus.WriteRequest`), `write_v2` is remote-write 2.0
//! (`io.prometheus.write.v2.Request`), `exposition` the protobuf exposition format scrapes read
//! (`io.prometheus.client.MetricFamily`).

/// Prometheus remote-write 1.0 messages.
#[allow(unreachable_pub, clippy::all)]
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

/// Prometheus remote-write 2.0 messages (`io.prometheus.write.v2.Request`).
#[allow(unreachable_pub, clippy::all)]
pub mod io {
    pub mod prometheus {
        /// The protobuf exposition format (`io.prometheus.client.MetricFamily`).
        pub mod client {
            tonic::include_proto!("io.prometheus.client");
        }
        pub mod write {
            pub mod v2 {
                tonic::include_proto!("io.prometheus.write.v2");
            }
        }
    }
}

/// The protobuf exposition format, by its Go package's short name.
pub use io::prometheus::client as exposition;

/// Remote-write 2.0, by its short name.
pub use io::prometheus::write::v2 as write_v2;

/// Module tree matching the proto package `promshard.v1`, so generated cross-package paths
/// (`super::super::prometheus`) resolve.
#[allow(unreachable_pub, clippy::all)]
pub mod promshard {
    pub mod v1 {
        tonic::include_proto!("promshard.v1");
    }
}

/// The master ↔ worker control plane.
pub use promshard::v1 as control;

/// Bits of the NaN Prometheus uses as a staleness marker (`model/value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Largest gRPC message either side accepts. Snapshots are chunked well below this; the margin
/// covers a single huge target group.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
