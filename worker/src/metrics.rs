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
    /// Samples dropped because their exposed timestamp was not newer than what was written.
    pub scrape_out_of_order: Counter,
    pub assignment_generation: Gauge,
    pub master_connected: Gauge,
    pub rw_samples: Family<LabelSet, Counter>,
    pub rw_failed: Family<LabelSet, Counter>,
    pub rw_retried: Family<LabelSet, Counter>,
    pub rw_dropped: Family<LabelSet, Counter>,
    pub rw_pending: Family<LabelSet, Gauge>,
    pub rw_highest_sent: Family<LabelSet, Gauge>,
    pub rw_samples_in: Family<LabelSet, Counter>,
    pub rw_wal_dropped: Family<LabelSet, Counter>,
    pub rw_bytes: Family<LabelSet, Counter>,
    pub rw_shards: Family<LabelSet, Gauge>,
    pub rw_wal_bytes: Family<LabelSet, Gauge>,
    pub rw_v2_fallbacks: Family<LabelSet, Counter>,
    pub rw_held: Family<LabelSet, Gauge>,
    pub rw_out_of_order: Family<LabelSet, Counter>,
    pub rw_split_requests: Family<LabelSet, Counter>,
    pub handoff_dropped: Family<LabelSet, Counter>,
    pub fence_timeouts: Family<LabelSet, Counter>,
    /// The lease's end as this worker sees it (Unix seconds; 0 before the first).
    pub lease_until: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            targets: Gauge::default(),
            scrapes: Family::default(),
            scrape_out_of_order: Counter::default(),
            assignment_generation: Gauge::default(),
            master_connected: Gauge::default(),
            rw_samples: Family::default(),
            rw_failed: Family::default(),
            rw_retried: Family::default(),
            rw_dropped: Family::default(),
            rw_pending: Family::default(),
            rw_highest_sent: Family::default(),
            rw_samples_in: Family::default(),
            rw_wal_dropped: Family::default(),
            rw_bytes: Family::default(),
            rw_shards: Family::default(),
            rw_wal_bytes: Family::default(),
            rw_v2_fallbacks: Family::default(),
            rw_held: Family::default(),
            rw_out_of_order: Family::default(),
            rw_split_requests: Family::default(),
            handoff_dropped: Family::default(),
            fence_timeouts: Family::default(),
            lease_until: Gauge::default(),
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
            "prometheus_target_scrapes_sample_out_of_order",
            "Samples dropped because their exposed timestamp was older than one already written for the series (as Prometheus counts them)",
            m.scrape_out_of_order.clone(),
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
            "Samples dropped before sending: by write_relabel_configs, or lost to the WAL size bound",
            m.rw_dropped.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_in",
            "Samples written to the endpoint's WAL",
            m.rw_samples_in.clone(),
        );
        registry.register(
            "prometheus_remote_storage_bytes",
            "Compressed bytes of requests delivered",
            m.rw_bytes.clone(),
        );
        registry.register(
            "prometheus_remote_storage_shards",
            "Sender shards running",
            m.rw_shards.clone(),
        );
        registry.register(
            "promshard_remote_write_wal_dropped_samples",
            "Samples deleted unsent because the endpoint's WAL went over --wal.max-bytes",
            m.rw_wal_dropped.clone(),
        );
        registry.register(
            "promshard_remote_write_wal_bytes",
            "Bytes of WAL segments on disk for the endpoint",
            m.rw_wal_bytes.clone(),
        );
        registry.register(
            "promshard_remote_write_v2_fallbacks",
            "Times the receiver answered 415 to remote write 2.0 and the sender fell back to 1.0",
            m.rw_v2_fallbacks.clone(),
        );
        registry.register(
            "prometheus_remote_storage_samples_pending",
            "Samples read from the WAL and queued in shards, not yet delivered",
            m.rw_pending.clone(),
        );
        registry.register(
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            "Newest sample timestamp successfully sent, in seconds",
            m.rw_highest_sent.clone(),
        );
        registry.register(
            "promshard_remote_write_held_samples",
            "Samples in the WAL held back by the delivery gate (a fenced handoff, a lapsed lease)",
            m.rw_held.clone(),
        );
        registry.register(
            "promshard_remote_write_out_of_order_samples",
            "Samples the receiver refused as out of order, out of bounds or a duplicate timestamp, found by splitting the refused request (the rest of it was delivered)",
            m.rw_out_of_order.clone(),
        );
        registry.register(
            "promshard_remote_write_split_requests",
            "Requests re-sent in parts after the receiver refused one for an out-of-order sample",
            m.rw_split_requests.clone(),
        );
        registry.register(
            "promshard_handoff_dropped_samples",
            "Samples not sent because another worker owns those slots (the target moved while this worker was cut off from the master)",
            m.handoff_dropped.clone(),
        );
        registry.register(
            "promshard_handoff_fence_timeouts",
            "Fences given up on: a moved target's samples were sent before its old owner reported delivery to the endpoint",
            m.fence_timeouts.clone(),
        );
        registry.register(
            "promshard_worker_lease_expiry_seconds",
            "When this worker's lease from the master runs out (Unix seconds); samples scraped later are held until it is renewed",
            m.lease_until.clone(),
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
