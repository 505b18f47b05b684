//! What both tiers must agree on, with no I/O: labels, the `prometheus.yml` subset, relabeling,
//! Prometheus durations and target identity. No tokio, no HTTP, no gRPC in this crate, so the
//! master and the worker cannot disagree on what a target or a config means.

pub mod config;
pub mod duration;
pub mod histogram;
pub mod http_config;
pub mod labels;
pub mod relabel;
pub mod selector;
pub mod target;
mod yaml;

pub use duration::PromDuration;
pub use labels::{Label, Labels, LabelsBuilder};
