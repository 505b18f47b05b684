//! The worker's self-metrics. Remote-write metrics use Prometheus's own names
//! (`prometheus_remote_storage_*`) so existing dashboards and alerts work unchanged.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub type LabelSet = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    pub targets: Gauge,
    pub scrapes: Family<LabelSet, Counter>,
    pub assignment_generation: Gauge,
    pub master_connected: Gauge,
    pub rw_samples: Family<LabelSet, Counter>,
    pub rw_failed: Family<LabelSet, Counter>,
    pub rw_retried: Family<LabelSet, Counter>,
    pub rw_dropped: Family<LabelSet, Counter>,
    pub rw_pending: Family<LabelSet, Gauge>,
    pub rw_highest_sent: Family<LabelSet, Gauge>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            targets: Gauge::default(),
            scrapes: Family::default(),
            assignment_generation: Gauge::default(),
            master_connected: Gauge::default(),
            rw_samples: Family::default(),
            rw_failed: Family::default(),
            rw_retried: Family::default(),
            rw_dropped: Family::default(),
            rw_pending: Family::default(),
            rw_highest_sent: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "promshard_worker_targets",
            "Targets assigned to this worker",
            m.targets.clone(),
        );
        registry.register(
            "promshard_worker_scrapes",
            "Scrapes by result",
            m.scrapes.clone(),
        );
        registry.register(
            "promshard_worker_assignment_generation",
            "Generation of the assignment in force",
            m.assignment_generation.clone(),
        );
        registry.register(
            "promshard_worker_master_connected",
            "1 while the control-plane stream to the master is up",
            m.master_connected.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples",
            "Samples sent to remote storage",
            m.rw_samples.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_failed",
            "Samples that failed to send and were not retried (non-recoverable errors)",
            m.rw_failed.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_retried",
            "Samples that failed to send and were retried",
            m.rw_retried.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_dropped",
            "Samples dropped before sending because the queue was over its bound",
            m.rw_dropped.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_pending",
            "Samples buffered in memory waiting to be sent",
            m.rw_pending.clone(),
        );
        registry.register(
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            "Newest sample timestamp successfully sent, in seconds",
            m.rw_highest_sent.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
