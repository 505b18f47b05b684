//! The test harness: everything multi-process tests (and `promshard demo`) need around the
//! `promshard` binary, kept independent of the code under test so it can judge it.

pub mod apiserver;
pub mod chart;
pub mod cluster;
pub mod eventually;
pub mod launcher;
pub mod prometheus;
pub mod proxy;
pub mod receiver;
pub mod sd;
mod server;
pub mod simulator;

pub use eventually::{eventually, eventually_blocking};
pub use launcher::{Process, free_loopback_port, promshard_bin};
pub use prometheus::PrometheusServer;
pub use receiver::{Labels, ReceiverResponse, RecordingReceiver, is_stale, labels};
pub use simulator::{SimTarget, TargetSimulator};
