//! Remote write: per `remote_write` endpoint, an on-disk [WAL](wal) and a
//! [`QueueManager`](queue) with its own read position and sender shards, so a dead endpoint
//! never blocks a healthy one or the scrapers.
//!
//! Scrape loops hand each scrape's batch to the [`Appender`], which writes it to every
//! endpoint's WAL at once (one `write(2)` per endpoint, no waiting on any network) and wakes
//! the endpoint's reader. Samples refer to their [`Series`] (labels encoded once, an id):
//! the WAL stores a series' labels once and its samples as `(id, timestamp, value)`, and a
//! scrape loop tells the appender when it retires a series ([`Appender::forget`]) so the WAL
//! can let go of its labels once nothing unsent refers to them. Each WAL is bounded by `--wal.max-bytes`; past it, that endpoint's
//! oldest data is dropped and counted, the others are unaffected.
//!
//! Every record names the target it was scraped from and when, so the [delivery
//! gate](crate::gate) can hold a target's records (a fenced handoff, a lapsed lease) without
//! holding anything else. After a handoff away from this worker, [`Appender::watch_delivery`]
//! reports, per endpoint, when everything of the target up to then is delivered: the master
//! relays that to the new owner, whose fence then opens.

mod client;
#[cfg(test)]
mod gate_tests;
mod histogram;
mod progress;
mod queue;
mod series;
mod series_table;
mod shard;
mod wal;
mod wire;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use promshard_model::config::{Config, RemoteWriteConfig};
use tokio::sync::watch;

use crate::gate::DeliveryGate;
use crate::metrics::{LabelSet, Metrics};

pub use series::{AppendSample, LabelIter, Sample, Series};

pub use client::{
    EncodeBuffers, MetadataMap, Protocol, SendError, V1_CONTENT_TYPE, V2_CONTENT_TYPE, WriteClient,
    encode_v1, encode_v2, user_agent,
};

/// Default per-endpoint WAL bound (`--wal.max-bytes`).
pub const DEFAULT_WAL_MAX_BYTES: u64 = 1 << 30;

pub type Batch = Arc<Vec<Sample>>;

/// A metric family's `# TYPE`, `# HELP` and `# UNIT`, for remote write 2.0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    pub family: String,
    /// Prometheus's type name: `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`,
    /// `info`, `stateset` or `unknown`.
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Metadata is written to the WAL again after this long even if unchanged, so a reader that
/// starts late (restart, dropped segments) learns it soon.
pub(crate) const METADATA_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Labels of an endpoint's self-metrics, as Prometheus names them.
pub(crate) fn endpoint_labels(cfg: &RemoteWriteConfig) -> LabelSet {
    vec![
        ("remote_name".into(), cfg.display_name()),
        ("url".into(), cfg.url.clone()),
    ]
}

/// Cheap handle used by scrape loops to hand off samples.
#[derive(Clone)]
pub struct Appender {
    endpoints: watch::Receiver<Arc<Published>>,
    /// WAL failures to record a series (each moves the generation on).
    failures: Arc<AtomicU64>,
    /// Targets handed away, waiting until each endpoint has delivered what they scraped.
    watches: Arc<std::sync::Mutex<Vec<DeliveryWatch>>>,
}

/// A target this worker handed to another at `at_ms`: per endpoint, where its WAL ended when the
/// target's last record was in. Done for an endpoint once that WAL delivered everything before
/// that point and holds none of the target's records.
struct DeliveryWatch {
    target_id: String,
    tag: u64,
    at_ms: i64,
    pending: Vec<(String, Arc<wal::Wal>, wal::Position)>,
}

/// How often delivery watches are checked: a handoff's fence opens this much later at most.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The endpoints, numbered: a new list gets a new epoch in the same value, so no writer can
/// pair a new list with an old generation.
struct Published {
    epoch: u64,
    endpoints: Vec<Endpoint>,
}

/// The endpoints as one scrape sees them, and their generation: a series announced (written
/// with its labels) under this generation is known to every one of these WALs. The
/// generation moves whenever the endpoints change or a WAL failed to record a series, and
/// the scrape side then sends each series' labels along once more.
pub struct Writer {
    published: Arc<Published>,
    generation: u64,
    failures: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Endpoint {
    name: String,
    wal: Arc<wal::Wal>,
    m: queue::EndpointMetrics,
    /// Metadata last written to the WAL, and when.
    metadata: Arc<std::sync::Mutex<HashMap<String, (MetricMetadata, std::time::Instant)>>>,
}

impl Appender {
    /// A snapshot of the endpoints for one scrape.
    pub fn writer(&self) -> Writer {
        let published = self.endpoints.borrow().clone();
        let failures = self.failures.load(Ordering::Acquire);
        Writer {
            generation: (published.epoch << 32) | (failures & 0xffff_ffff),
            published,
            failures: self.failures.clone(),
        }
    }

    /// Appends samples that all carry their series, as one scrape of target tag 1.
    #[cfg(test)]
    pub(crate) fn append(&self, batch: &[Sample]) {
        let batch: Vec<AppendSample> = batch.iter().map(AppendSample::from).collect();
        let at = batch.first().map_or(0, |s| s.timestamp_ms);
        self.writer().append(&batch, 1, at);
    }

    /// The target `target_id` (tag `tag`) was handed to another worker at `at_ms` and this worker
    /// will append nothing more of it: report, per endpoint, once everything of it appended so far
    /// is delivered (or dropped for good). The master relays the reports to the new owner.
    pub fn watch_delivery(&self, target_id: &str, tag: u64, at_ms: i64) {
        let pending = self
            .endpoints
            .borrow()
            .endpoints
            .iter()
            .map(|e| (e.name.clone(), e.wal.clone(), e.wal.end_position()))
            .collect();
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(DeliveryWatch {
                target_id: target_id.to_string(),
                tag,
                at_ms,
                pending,
            });
    }

    /// Handed-off targets whose delivery is not reported yet.
    pub fn watched(&self) -> usize {
        self.watches.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Checks the delivery watches and reports what is done to the gate (for the control stream).
fn check_watches(watches: &std::sync::Mutex<Vec<DeliveryWatch>>, gate: &DeliveryGate) {
    let mut ws = watches.lock().unwrap_or_else(|e| e.into_inner());
    ws.retain_mut(|w| {
        let mut done = Vec::new();
        w.pending.retain(|(name, wal, end)| {
            let ok = wal.delivered_through(*end, w.tag);
            if ok {
                done.push(name.clone());
            }
            !ok
        });
        if !done.is_empty() {
            tracing::debug!(target = %w.target_id, at = w.at_ms, endpoints = ?done, "handed-off target delivered");
            gate.report(promshard_proto::control::Delivered {
                target_id: w.target_id.clone(),
                at_ms: w.at_ms,
                endpoints: done,
            });
        }
        !w.pending.is_empty()
    });
}

impl Writer {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Writes one scrape's samples to every endpoint's WAL, as a record of the target `tag`
    /// scraped at `at_ms` (what the delivery gate decides on). Never waits for the network; a
    /// WAL that cannot be written (disk full) loses the batch for that endpoint, counted.
    pub fn append(&self, batch: &[AppendSample], tag: u64, at_ms: i64) {
        if batch.is_empty() || self.published.endpoints.is_empty() {
            return;
        }
        let record = wal::encode_samples(batch, tag, at_ms);
        let n = batch.len() as u64;
        for e in self.published.endpoints.iter() {
            e.m.samples_in.inc_by(n);
            match e.wal.append_samples(batch, &record) {
                Ok(out) => {
                    if out.dropped > 0 {
                        e.m.wal_dropped.inc_by(out.dropped);
                        e.m.dropped.inc_by(out.dropped);
                    }
                }
                Err(err) => {
                    tracing::error!(remote = %e.name, error = %err, samples = n, "cannot write to the remote-write WAL; dropping the batch");
                    e.m.wal_dropped.inc_by(n);
                    e.m.dropped.inc_by(n);
                    // The batch's new series may not be recorded: have every series sent
                    // with its labels again.
                    self.failures.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Records the metadata a scrape declared; see [`Appender::append_metadata`].
    pub fn append_metadata(&self, metadata: &[MetricMetadata]) {
        append_metadata(&self.published.endpoints, metadata);
    }
}

impl Appender {
    /// The caller will never append samples of these series again (their ids are retired):
    /// each WAL drops their labels once the samples it holds of them are gone.
    pub fn forget(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        for e in self.endpoints.borrow().endpoints.iter() {
            e.wal.forget(ids);
        }
    }

    /// Records the metadata a scrape declared. Only new or changed families (or ones not
    /// written for [`METADATA_REFRESH`]) go to the WALs, so a steady scrape costs a lookup.
    pub fn append_metadata(&self, metadata: &[MetricMetadata]) {
        append_metadata(&self.endpoints.borrow().clone().endpoints, metadata);
    }
}

fn append_metadata(endpoints: &[Endpoint], metadata: &[MetricMetadata]) {
    {
        if metadata.is_empty() {
            return;
        }
        for e in endpoints.iter() {
            let changed: Vec<MetricMetadata> = {
                let mut seen = e.metadata.lock().unwrap_or_else(|p| p.into_inner());
                let now = std::time::Instant::now();
                metadata
                    .iter()
                    .filter(|m| {
                        let fresh = seen.get(&m.family).is_some_and(|(old, at)| {
                            old == *m && now.duration_since(*at) < METADATA_REFRESH
                        });
                        if !fresh {
                            seen.insert(m.family.clone(), ((*m).clone(), now));
                        }
                        !fresh
                    })
                    .cloned()
                    .collect()
            };
            if changed.is_empty() {
                continue;
            }
            if let Err(err) = e.wal.append(&wal::encode_metadata(&changed), 0) {
                tracing::warn!(remote = %e.name, error = %err, "cannot write metadata to the remote-write WAL");
            }
        }
    }
}

/// A started endpoint and the settings it was started with.
struct Running {
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    endpoint: Endpoint,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Owns the endpoints; rebuilt endpoint by endpoint when the remote-write config changes.
pub struct RemoteWriteManager {
    running: Vec<Running>,
    publish: watch::Sender<Arc<Published>>,
    metrics: Arc<Metrics>,
    wal_root: PathBuf,
    wal_max_bytes: u64,
    gate: Arc<DeliveryGate>,
    watches: Arc<std::sync::Mutex<Vec<DeliveryWatch>>>,
    watcher: tokio::task::JoinHandle<()>,
    user_agent: String,
}

impl Drop for RemoteWriteManager {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A WAL directory name from the endpoint's name: readable, and unique per name.
fn wal_dir(root: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe == name {
        root.join(safe)
    } else {
        root.join(format!(
            "{safe}-{:08x}",
            xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as u32
        ))
    }
}

impl RemoteWriteManager {
    /// `wal_root` holds one WAL directory per endpoint (by `name`, or the URL hash Prometheus
    /// uses when unnamed), each bounded by `wal_max_bytes`. `gate` decides when a record may
    /// leave (must be called inside a Tokio runtime: it starts the delivery-watch task).
    pub fn new(
        metrics: Arc<Metrics>,
        wal_root: PathBuf,
        wal_max_bytes: u64,
        gate: Arc<DeliveryGate>,
    ) -> (Self, Appender) {
        let (publish, rx) = watch::channel(Arc::new(Published {
            epoch: 1,
            endpoints: Vec::new(),
        }));
        let watches: Arc<std::sync::Mutex<Vec<DeliveryWatch>>> = Arc::default();
        let watcher = tokio::spawn({
            let (watches, gate) = (watches.clone(), gate.clone());
            async move {
                let mut every = tokio::time::interval(WATCH_EVERY);
                loop {
                    every.tick().await;
                    check_watches(&watches, &gate);
                }
            }
        });
        (
            RemoteWriteManager {
                running: Vec::new(),
                publish,
                metrics,
                wal_root,
                wal_max_bytes,
                gate,
                watches: watches.clone(),
                watcher,
                user_agent: client::USER_AGENT_VALUE.to_string(),
            },
            Appender {
                endpoints: rx,
                failures: Arc::default(),
                watches,
            },
        )
    }

    /// The User-Agent of requests from endpoints started from now on (see [`user_agent`]).
    pub fn set_user_agent(&mut self, ua: String) {
        self.user_agent = ua;
    }

    /// Starts, keeps or restarts endpoints to match `cfg`. An endpoint whose settings did not
    /// change keeps running untouched; one whose settings changed keeps its WAL (by name) and
    /// re-reads what it had not delivered. A removed endpoint's WAL is deleted: nothing can
    /// send it anywhere any more.
    pub fn apply(&mut self, cfg: &Config) {
        let external: Vec<(String, String)> = cfg
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut old = std::mem::take(&mut self.running);
        let mut wals: HashMap<String, Arc<wal::Wal>> = HashMap::new();
        let mut next = Vec::new();
        for rw in &cfg.remote_write {
            if let Some(pos) = old
                .iter()
                .position(|r| r.cfg == *rw && r.external == external)
            {
                next.push(old.swap_remove(pos));
                continue;
            }
            let name = rw.display_name();
            // Same name, new settings: stop the old manager first so exactly one reader
            // uses the WAL.
            if let Some(pos) = old.iter().position(|r| r.endpoint.name == name) {
                let r = old.swap_remove(pos);
                wals.insert(name.clone(), r.endpoint.wal.clone());
                drop(r);
            }
            match self.start(rw, &external, wals.remove(&name)) {
                Ok(r) => next.push(r),
                Err(e) => {
                    tracing::error!(remote = %name, url = %rw.url, error = %format!("{e:#}"), "cannot start remote write endpoint")
                }
            }
        }
        // Scrapers stop writing to removed endpoints before their WALs go.
        let endpoints = next.iter().map(|r| r.endpoint.clone()).collect();
        self.running = next;
        let epoch = self.publish.borrow().epoch + 1;
        self.publish
            .send_replace(Arc::new(Published { epoch, endpoints }));
        for r in old {
            tracing::info!(remote = %r.endpoint.name, url = %r.cfg.url, "remote write endpoint removed; deleting its WAL");
            let dir = r.endpoint.wal.dir().to_path_buf();
            drop(r);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot delete WAL");
            }
        }
    }

    /// Waits until every endpoint has sent everything appended so far (its WAL read to the
    /// end and nothing in flight) and every handed-off target's delivery is reported, or until
    /// `deadline`; returns whether it got there. Used by the graceful drain: what is not sent by
    /// then stays in the WAL for the next start. Held records do not count: they wait for the
    /// gate, not for the network.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            check_watches(&self.watches, &self.gate);
            let done = self
                .running
                .iter()
                .all(|r| r.endpoint.wal.unread_bytes() == 0 && r.endpoint.m.pending.get() == 0)
                && self
                    .watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
            if done {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    fn start(
        &self,
        rw: &RemoteWriteConfig,
        external: &[(String, String)],
        wal: Option<Arc<wal::Wal>>,
    ) -> anyhow::Result<Running> {
        let name = rw.display_name();
        let wal = match wal {
            Some(w) => w,
            None => wal::Wal::open(&wal_dir(&self.wal_root, &name), self.wal_max_bytes)?,
        };
        let m = queue::EndpointMetrics::new(&self.metrics, rw);
        m.wal_bytes.set(wal.bytes() as i64);
        let qm = queue::QueueManager::new(
            rw.clone(),
            external.to_vec(),
            wal.clone(),
            m.clone(),
            MetadataMap::new(),
            self.gate.clone(),
            &self.user_agent,
        )?;
        let sync_wal = wal.clone();
        let sync = tokio::spawn(async move {
            let mut every = tokio::time::interval(wal::SYNC_EVERY);
            loop {
                every.tick().await;
                let w = sync_wal.clone();
                match tokio::task::spawn_blocking(move || w.sync()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "WAL fsync failed"),
                    Err(_) => return,
                }
            }
        });
        let reader = tokio::spawn(qm.run());
        tracing::info!(remote = %name, url = %rw.url, wal = %wal.dir().display(), "remote write endpoint started");
        Ok(Running {
            cfg: rw.clone(),
            external: external.to_vec(),
            tasks: vec![reader, sync],
            endpoint: Endpoint {
                name,
                wal,
                m,
                metadata: Default::default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::parse(yaml).unwrap()
    }

    fn dir_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_changed_endpoint_keeps_its_wal_and_a_removed_one_deletes_it() {
        let root = tempfile::tempdir().unwrap();
        let (mut rw, appender) = RemoteWriteManager::new(
            Arc::new(Metrics::new()),
            root.path().join("wal"),
            1 << 20,
            Arc::new(DeliveryGate::new(false)),
        );
        // Nothing listens on port 1: everything stays in the WAL.
        rw.apply(&config(
            "remote_write: [{url: 'http://127.0.0.1:1/w', name: up1}]",
        ));
        let dir = root.path().join("wal").join("up1");
        appender.append(&[Sample::new(
            &promshard_model::Labels::from_pairs([("__name__", "m")]),
            1,
            1.0,
        )]);
        let written = dir_bytes(&dir);
        assert!(written > 0);

        rw.apply(&config(
            "remote_write: [{url: 'http://127.0.0.1:1/w', name: up1, queue_config: {max_shards: 2}}]",
        ));
        assert_eq!(
            dir_bytes(&dir),
            written,
            "the WAL survives a settings change"
        );

        rw.apply(&config("remote_write: []"));
        assert!(!dir.exists(), "a removed endpoint's WAL is deleted");
        // Appending with no endpoint is a no-op.
        appender.append(&[Sample::new(
            &promshard_model::Labels::from_pairs([("__name__", "m")]),
            2,
            1.0,
        )]);
    }

    #[test]
    fn wal_dirs_are_readable_and_unique() {
        let root = Path::new("/w");
        assert_eq!(wal_dir(root, "mimir-eu"), root.join("mimir-eu"));
        let odd = wal_dir(root, "a/b");
        assert!(
            odd.to_string_lossy().starts_with("/w/a_b-"),
            "{}",
            odd.display()
        );
        assert_ne!(odd, wal_dir(root, "a_b"));
    }
}
