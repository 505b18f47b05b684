//! The queue manager of one endpoint: reads its WAL in order, applies `external_labels` and
//! `write_relabel_configs` (once per series, cached by series id), and hands every sample to
//! the shard its series hashes to, one chunk per shard per WAL record. Shards
//! batch (`max_samples_per_send` or `batch_send_deadline`, whichever comes first) and send
//! with the spec's retry rules; a series always maps to one shard and a shard has one request
//! in flight, so each series' samples arrive in WAL order, which is timestamp order.
//!
//! Ordering of backlog and fresh data: strictly WAL order, as Prometheus does. After an outage
//! the backlog drains first, at the full parallelism of the shards, and fresh scrapes follow
//! it; they are on disk meanwhile and delayed by the drain, never dropped for it. Interleaving
//! fresh data ahead of the backlog would make every series go back in time at the receiver.
//!
//! Progress: every record read from the WAL counts its samples down as shards deliver them
//! (or drop them on a non-recoverable error); the WAL's committed position moves past a record
//! once it and everything before it are done. A restart replays from there, so a crash re-sends
//! at most what was in flight (at-least-once) and loses nothing.
//!
//! Held records: the [delivery gate](crate::gate) decides, per record and endpoint, whether a
//! target's scrape may go now. A record it holds is passed over, not waited on (no head-of-line
//! blocking: other targets' records flow), registered as a hole in the WAL, and sent, in WAL
//! order and before anything read later, once the gate lets it go; a later record of a target
//! with held records is held too, so a series never overtakes itself.
//!
//! Out-of-order refusals: a receiver that refuses a request for one old sample (Prometheus, Mimir
//! and Thanos roll back the whole request) gets it again in parts, halved by series, so only the
//! refused samples are lost and counted (`promshard_remote_write_out_of_order_samples_total`).
//!
//! Shard count adapts between `min_shards` and `max_shards`: it doubles when the reader spent
//! most of the last period waiting for busy shards while sends succeed (a backlog is draining
//! or the upstream is slow), and shrinks by one when shards sat idle with no backlog. Changing
//! it drains every shard first, so no series is ever in two shards at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use promshard_model::config::{ProtobufMessage, RemoteWriteConfig};
use promshard_model::relabel;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{MetadataMap, WriteClient};
use super::progress::Hole;
use super::shard::Shard;
use super::wal::{Cursor, Position, Wal};
use super::{Sample, Series, endpoint_labels};
use crate::gate::{Decision, DeliveryGate, GateEvent, NO_TAG};
use crate::metrics::Metrics;

/// How often the shard count is reconsidered.
const RESHARD_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for the reader when the WAL has nothing new (appends also wake it).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Samples of one WAL record on their way to one shard.
pub(super) struct Chunk {
    pub(super) samples: Vec<Sample>,
    pub(super) record: u64,
}

/// Each series' labels after external labels and `write_relabel_configs` (`None`: dropped),
/// computed once per series. Entries not used for a whole period are let go.
#[derive(Default)]
struct RelabelCache {
    map: std::collections::HashMap<u64, (Option<Arc<Series>>, u32), foldhash::fast::RandomState>,
    period: u32,
}

impl RelabelCache {
    fn get(
        &mut self,
        cfg: &RemoteWriteConfig,
        external: &[(String, String)],
        s: &Arc<Series>,
    ) -> Option<Arc<Series>> {
        let period = self.period;
        let e = self
            .map
            .entry(s.id())
            .or_insert_with(|| (apply_labels(cfg, external, s), period));
        e.1 = period;
        e.0.clone()
    }

    /// A new period: entries not used in the last one go.
    fn next_period(&mut self) {
        let last = self.period;
        self.map.retain(|_, (_, used)| *used == last);
        self.period = self.period.wrapping_add(1);
    }
}

/// What finishing a record's samples does: move the committed position (a record read in
/// order), or let go of a held record that was sent after its release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Advance(Position),
    Unhold(Position),
}

/// Delivery progress of the records read from the WAL.
struct Progress {
    /// Sequence number of `pending[0]`.
    base: u64,
    /// (what finishing the record does, samples not yet delivered).
    pending: VecDeque<(Done, u64)>,
}

pub(super) struct Shared {
    pub(super) cfg: RemoteWriteConfig,
    /// The endpoint's name, as the delivery gate and the master know it.
    name: String,
    external: Vec<(String, String)>,
    wal: Arc<Wal>,
    pub(super) client: WriteClient,
    /// Starts true for `protobuf_message: io.prometheus.write.v2.Request`; a 415 turns it off.
    pub(super) v2: AtomicBool,
    /// What the WAL's metadata records said so far, for 2.0 requests.
    pub(super) metadata: std::sync::RwLock<MetadataMap>,
    progress: Mutex<Progress>,
    pub(super) m: EndpointMetrics,
    /// Failed sends in this resharding period: no scaling up into an outage.
    pub(super) failures: AtomicU64,
}

/// This endpoint's series of the worker's metrics, resolved once.
#[derive(Clone)]
pub(super) struct EndpointMetrics {
    pub(super) samples_in: Counter,
    pub(super) sent: Counter,
    pub(super) failed: Counter,
    pub(super) retried: Counter,
    pub(super) dropped: Counter,
    pub(super) wal_dropped: Counter,
    pub(super) pending: Gauge,
    pub(super) highest_sent: Gauge,
    pub(super) bytes_sent: Counter,
    pub(super) shards: Gauge,
    pub(super) wal_bytes: Gauge,
    pub(super) fallbacks: Counter,
    pub(super) held: Gauge,
    pub(super) out_of_order: Counter,
    pub(super) split_requests: Counter,
    pub(super) handoff_dropped: Counter,
    pub(super) fence_timeouts: Counter,
}

impl EndpointMetrics {
    pub(super) fn new(m: &Metrics, cfg: &RemoteWriteConfig) -> Self {
        let l = endpoint_labels(cfg);
        EndpointMetrics {
            samples_in: m.rw_samples_in.get_or_create(&l).clone(),
            sent: m.rw_samples.get_or_create(&l).clone(),
            failed: m.rw_failed.get_or_create(&l).clone(),
            retried: m.rw_retried.get_or_create(&l).clone(),
            dropped: m.rw_dropped.get_or_create(&l).clone(),
            wal_dropped: m.rw_wal_dropped.get_or_create(&l).clone(),
            pending: m.rw_pending.get_or_create(&l).clone(),
            highest_sent: m.rw_highest_sent.get_or_create(&l).clone(),
            bytes_sent: m.rw_bytes.get_or_create(&l).clone(),
            shards: m.rw_shards.get_or_create(&l).clone(),
            wal_bytes: m.rw_wal_bytes.get_or_create(&l).clone(),
            fallbacks: m.rw_v2_fallbacks.get_or_create(&l).clone(),
            held: m.rw_held.get_or_create(&l).clone(),
            out_of_order: m.rw_out_of_order.get_or_create(&l).clone(),
            split_requests: m.rw_split_requests.get_or_create(&l).clone(),
            handoff_dropped: m.handoff_dropped.get_or_create(&l).clone(),
            fence_timeouts: m.fence_timeouts.get_or_create(&l).clone(),
        }
    }
}

impl Shared {
    /// `n` samples of record `seq` are done (sent or given up on).
    pub(super) fn ack(&self, done: &[(u64, u64)]) {
        let mut advanced = None;
        let mut unheld = Vec::new();
        {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            for &(seq, n) in done {
                let Some(i) = seq.checked_sub(p.base) else {
                    continue;
                };
                if let Some(entry) = p.pending.get_mut(i as usize) {
                    entry.1 = entry.1.saturating_sub(n);
                }
            }
            while p.pending.front().is_some_and(|e| e.1 == 0) {
                if let Some((done, _)) = p.pending.pop_front() {
                    match done {
                        Done::Advance(end) => advanced = Some(end),
                        Done::Unhold(start) => unheld.push(start),
                    }
                    p.base += 1;
                }
            }
        }
        if let Some(pos) = advanced
            && let Err(e) = self.wal.commit(pos)
        {
            tracing::warn!(wal = %self.wal.dir().display(), error = %e, "cannot record WAL progress");
        }
        for start in unheld {
            if let Err(e) = self.wal.unhold(start) {
                tracing::warn!(wal = %self.wal.dir().display(), error = %e, "cannot record WAL progress");
            }
        }
        self.m.wal_bytes.set(self.wal.bytes() as i64);
    }
}

pub(super) struct QueueManager {
    shared: Arc<Shared>,
    gate: Arc<DeliveryGate>,
}

/// How often held records are looked at again without a change at the gate (a fence's
/// deadline passing is a change of time only).
const HELD_RECHECK: Duration = Duration::from_millis(250);

/// Records the reader went past that the gate holds (their positions in the WAL), with how
/// many there are per target: a later record of a target with held ones is held too, so no
/// series overtakes itself.
#[derive(Default)]
struct Held {
    records: std::collections::BTreeMap<Position, Hole>,
    per_tag: std::collections::HashMap<u64, usize>,
}

impl Held {
    fn insert(&mut self, pos: Position, hole: Hole) {
        if self.records.insert(pos, hole).is_none() {
            *self.per_tag.entry(hole.tag).or_default() += 1;
        }
    }

    fn remove(&mut self, pos: Position) {
        if let Some(h) = self.records.remove(&pos)
            && let Some(n) = self.per_tag.get_mut(&h.tag)
        {
            *n -= 1;
            if *n == 0 {
                self.per_tag.remove(&h.tag);
            }
        }
    }

    fn has_tag(&self, tag: u64) -> bool {
        self.per_tag.contains_key(&tag)
    }

    fn samples(&self) -> u64 {
        self.records.values().map(|h| h.samples).sum()
    }
}

/// The reading side of a queue manager: turns records into chunks for the shards.
struct Reader {
    sh: Arc<Shared>,
    shards: ShardSet,
    n: usize,
    seq: u64,
    blocked: Duration,
    relabel: bool,
    relabeled: RelabelCache,
}

impl QueueManager {
    pub(super) fn new(
        cfg: RemoteWriteConfig,
        external: Vec<(String, String)>,
        wal: Arc<Wal>,
        m: EndpointMetrics,
        metadata: MetadataMap,
        gate: Arc<DeliveryGate>,
        user_agent: &str,
    ) -> anyhow::Result<Self> {
        let client = WriteClient::new(&cfg, user_agent)?;
        // Whatever an earlier manager of this WAL read but did not deliver is read again.
        wal.rewind();
        let v2 = cfg.protobuf_message == ProtobufMessage::V2;
        Ok(QueueManager {
            shared: Arc::new(Shared {
                name: cfg.display_name(),
                cfg,
                external,
                wal,
                client,
                v2: AtomicBool::new(v2),
                metadata: std::sync::RwLock::new(metadata),
                progress: Mutex::new(Progress {
                    base: 0,
                    pending: VecDeque::new(),
                }),
                m,
                failures: AtomicU64::new(0),
            }),
            gate,
        })
    }

    pub(super) async fn run(self) {
        let sh = self.shared;
        let gate = self.gate;
        let q = sh.cfg.queue_config.clone();
        let (min, max) = (q.min_shards.max(1) as usize, q.max_shards.max(1) as usize);
        // A manager restarted with new settings re-reads what its predecessor had queued.
        sh.m.pending.set(0);
        let mut r = Reader {
            shards: ShardSet::start(&sh, min),
            sh: sh.clone(),
            n: min,
            seq: 0,
            blocked: Duration::ZERO,
            relabel: !sh.external.is_empty() || !sh.cfg.write_relabel_configs.is_empty(),
            relabeled: RelabelCache::default(),
        };
        let mut cursor = Cursor::default();
        let mut period_start = Instant::now();
        let mut held = Held::default();
        for (pos, hole) in sh.wal.holes() {
            held.insert(pos, hole);
        }
        let mut gate_changes = gate.subscribe();
        // Held records from before a restart are looked at first.
        let mut last_recheck: Option<Instant> = None;
        let mut events = Vec::new();
        loop {
            sh.m.wal_bytes.set(sh.wal.bytes() as i64);
            if period_start.elapsed() >= RESHARD_EVERY {
                let want = desired_shards(
                    r.n,
                    min,
                    max,
                    r.blocked.as_secs_f64() / period_start.elapsed().as_secs_f64(),
                    sh.failures.swap(0, Ordering::Relaxed) > 0,
                    sh.wal.unread_bytes(),
                );
                if want != r.n {
                    tracing::info!(url = %sh.cfg.url, from = r.n, to = want, "resharding remote write");
                    let old = std::mem::replace(&mut r.shards, ShardSet::empty());
                    old.drain().await;
                    r.n = want;
                    r.shards = ShardSet::start(&sh, r.n);
                }
                period_start = Instant::now();
                r.blocked = Duration::ZERO;
                r.relabeled.next_period();
            }
            let gate_changed = gate_changes.has_changed().unwrap_or(false);
            if !held.records.is_empty()
                && (gate_changed || last_recheck.is_none_or(|t| t.elapsed() >= HELD_RECHECK))
            {
                gate_changes.borrow_and_update();
                last_recheck = Some(Instant::now());
                if !r.release_held(&gate, &mut held, &mut events).await {
                    return;
                }
            } else if gate_changed {
                gate_changes.borrow_and_update();
            }
            sh.m.held.set(held.samples() as i64);
            let record = match sh.wal.read_next(&mut cursor) {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::timeout(IDLE_POLL, sh.wal.appended.notified()) => {}
                        _ = gate_changes.changed(), if !held.records.is_empty() => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(wal = %sh.wal.dir().display(), error = %e, "cannot read the WAL");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            if !record.metadata.is_empty() {
                let mut map = sh.metadata.write().unwrap_or_else(|e| e.into_inner());
                for m in &record.metadata {
                    map.insert(m.family.clone(), m.clone());
                }
            }
            let read = record.samples.len() as u64 + record.unknown;
            if record.tag != NO_TAG && read > 0 {
                let decision = if held.records.contains_key(&record.start) {
                    // Read again after a rewind: it is held already.
                    None
                } else if held.has_tag(record.tag) {
                    Some(Decision::Hold)
                } else {
                    Some(gate.decide(
                        &sh.name,
                        record.tag,
                        record.at_ms,
                        unix_ms_now(),
                        &mut events,
                    ))
                };
                count_events(&sh, &mut events);
                match decision {
                    None => {
                        r.skip(Done::Advance(record.end));
                        continue;
                    }
                    Some(Decision::Hold) => {
                        let hole = Hole {
                            tag: record.tag,
                            at_ms: record.at_ms,
                            samples: read,
                        };
                        sh.wal.hold(record.start, hole);
                        held.insert(record.start, hole);
                        r.skip(Done::Advance(record.end));
                        continue;
                    }
                    Some(Decision::Drop) => {
                        sh.m.handoff_dropped.inc_by(read);
                        sh.m.dropped.inc_by(read);
                        r.skip(Done::Advance(record.end));
                        continue;
                    }
                    Some(Decision::Send) => {}
                }
            }
            if !r
                .dispatch(record.samples, read, Done::Advance(record.end))
                .await
            {
                return;
            }
        }
    }
}

/// Counts what the gate reported while deciding.
fn count_events(sh: &Shared, events: &mut Vec<GateEvent>) {
    for e in events.drain(..) {
        match e {
            GateEvent::FenceTimedOut { .. } => {
                tracing::warn!(url = %sh.cfg.url, "a moved target's fence timed out before its previous owner reported delivery; sending its samples (order across workers is no longer guaranteed for it)");
                sh.m.fence_timeouts.inc();
            }
        }
    }
}

impl Reader {
    /// A record that sends nothing now (held, dropped, or held already): its place in the log
    /// is done.
    fn skip(&mut self, done: Done) {
        {
            let mut p = self.sh.progress.lock().unwrap_or_else(|e| e.into_inner());
            if p.pending.is_empty() {
                p.base = self.seq;
            }
            p.pending.push_back((done, 0));
        }
        self.seq += 1;
        self.sh.ack(&[]);
    }

    /// Sends held records the gate lets go now, in WAL order, before anything read later; drops
    /// the ones it refuses for good. Returns false when the shards are gone.
    async fn release_held(
        &mut self,
        gate: &DeliveryGate,
        held: &mut Held,
        events: &mut Vec<GateEvent>,
    ) -> bool {
        let sh = self.sh.clone();
        let now = unix_ms_now();
        let mut waiting: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let candidates: Vec<(Position, Hole)> =
            held.records.iter().map(|(p, h)| (*p, *h)).collect();
        for (pos, hole) in candidates {
            if waiting.contains(&hole.tag) {
                continue;
            }
            let decision = gate.decide(&sh.name, hole.tag, hole.at_ms, now, events);
            count_events(&sh, events);
            match decision {
                Decision::Hold => {
                    waiting.insert(hole.tag);
                }
                Decision::Drop => {
                    held.remove(pos);
                    sh.m.handoff_dropped.inc_by(hole.samples);
                    sh.m.dropped.inc_by(hole.samples);
                    if let Err(e) = sh.wal.unhold(pos) {
                        tracing::warn!(wal = %sh.wal.dir().display(), error = %e, "cannot record WAL progress");
                    }
                }
                Decision::Send => {
                    held.remove(pos);
                    match sh.wal.read_hole(pos) {
                        Ok(Some(rec)) => {
                            let read = rec.samples.len() as u64 + rec.unknown;
                            if !self.dispatch(rec.samples, read, Done::Unhold(pos)).await {
                                return false;
                            }
                        }
                        // The bound deleted its segment (and counted it).
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(wal = %sh.wal.dir().display(), error = %e, samples = hole.samples, "cannot read a held WAL record back; its samples are lost");
                            sh.m.dropped.inc_by(hole.samples);
                            let _ = sh.wal.unhold(pos);
                        }
                    }
                }
            }
        }
        true
    }

    /// Applies `sample_age_limit` and relabeling, and hands each shard its part of a record's
    /// samples. `read`: the record's samples including ones without labels (dropped).
    async fn dispatch(&mut self, samples: Vec<Sample>, read: u64, done: Done) -> bool {
        let sh = self.sh.clone();
        let q = &sh.cfg.queue_config;
        // `sample_age_limit`: a backlog older than this is not worth sending (0: no limit).
        let oldest_ok = match q.sample_age_limit.0 {
            d if d.is_zero() => i64::MIN,
            d => unix_ms_now() - d.as_millis() as i64,
        };
        let n = self.n;
        // Sized so that growing them does not copy a record's samples over and over.
        let per_shard = match n {
            1 => samples.len(),
            n => samples.len() / n * 5 / 4 + 16,
        };
        let mut chunks: Vec<Vec<Sample>> = (0..n).map(|_| Vec::with_capacity(per_shard)).collect();
        let mut total = 0u64;
        // Native histograms go only where `send_native_histograms` says (Prometheus's
        // `sendNativeHistograms`); leaving them out is not a loss to count.
        let mut not_sent = 0u64;
        let histograms = sh.cfg.send_native_histograms;
        for mut s in samples {
            if s.histogram.is_some() && !histograms {
                not_sent += 1;
                continue;
            }
            if s.timestamp_ms < oldest_ok {
                continue;
            }
            if self.relabel {
                match self.relabeled.get(&sh.cfg, &sh.external, &s.series) {
                    Some(series) => s.series = series,
                    None => continue,
                }
            }
            total += 1;
            chunks[shard_of(&s.series, n)].push(s);
        }
        sh.m.dropped.inc_by(read - total - not_sent);
        {
            let mut p = sh.progress.lock().unwrap_or_else(|e| e.into_inner());
            if p.pending.is_empty() {
                p.base = self.seq;
            }
            p.pending.push_back((done, total));
        }
        if total == 0 {
            sh.ack(&[]);
        }
        sh.m.pending.inc_by(total as i64);
        for (i, samples) in chunks.into_iter().enumerate() {
            if samples.is_empty() {
                continue;
            }
            let chunk = Chunk {
                samples,
                record: self.seq,
            };
            match self.shards.senders[i].try_send(chunk) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(chunk)) => {
                    let t = Instant::now();
                    if self.shards.senders[i].send(chunk).await.is_err() {
                        return false;
                    }
                    self.blocked += t.elapsed();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        self.seq += 1;
        true
    }
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// External labels (only where the series lacks them), then `write_relabel_configs`, as
/// Prometheus's queue manager does. `None`: dropped by relabeling. The result keeps the
/// series' id.
fn apply_labels(
    cfg: &RemoteWriteConfig,
    external: &[(String, String)],
    s: &Arc<Series>,
) -> Option<Arc<Series>> {
    let mut lb = s.labels().builder();
    for (k, v) in external {
        if lb.get(k).is_none() {
            lb.set(k.clone(), v.clone());
        }
    }
    if !relabel::process(&cfg.write_relabel_configs, &mut lb) {
        return None;
    }
    Some(Arc::new(Series::with_id(s.id(), &lb.into_labels())))
}

/// By label hash, not id: a series keeps its shard across a restart (new ids), so replayed
/// and fresh samples of it stay in one queue, in order.
fn shard_of(s: &Series, n: usize) -> usize {
    (s.hash() % n as u64) as usize
}

/// The shard-count decision (see the module comment). `blocked`: fraction of the period the
/// reader waited on full shards.
fn desired_shards(
    n: usize,
    min: usize,
    max: usize,
    blocked: f64,
    failing: bool,
    backlog_bytes: u64,
) -> usize {
    if blocked > 0.5 && !failing {
        (n * 2).clamp(min, max)
    } else if blocked < 0.01 && backlog_bytes == 0 && n > min {
        n - 1
    } else {
        n.clamp(min, max)
    }
}

struct ShardSet {
    senders: Vec<mpsc::Sender<Chunk>>,
    tasks: JoinSet<()>,
}

impl ShardSet {
    fn start(sh: &Arc<Shared>, n: usize) -> ShardSet {
        // `capacity` is in samples; chunks hold a record's share for one shard, about a
        // request's worth or less.
        let q = &sh.cfg.queue_config;
        let capacity = (q.capacity / q.max_samples_per_send.max(1)).max(2) as usize;
        let mut senders = Vec::with_capacity(n);
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(capacity);
            senders.push(tx);
            tasks.spawn(Shard { sh: sh.clone() }.run(rx));
        }
        sh.m.shards.set(n as i64);
        ShardSet { senders, tasks }
    }

    /// No shards (a placeholder while the real ones are replaced).
    fn empty() -> ShardSet {
        ShardSet {
            senders: Vec::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Closes the shards' queues and waits until they have delivered everything in them.
    async fn drain(mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_doubles_under_backpressure_and_shrinks_when_idle() {
        assert_eq!(desired_shards(1, 1, 8, 0.9, false, 1000), 2);
        assert_eq!(desired_shards(4, 1, 8, 0.9, false, 0), 8);
        assert_eq!(desired_shards(8, 1, 8, 0.9, false, 0), 8);
        // Never scale up into an outage: more shards would only retry more.
        assert_eq!(desired_shards(2, 1, 8, 0.9, true, 1000), 2);
        assert_eq!(desired_shards(3, 1, 8, 0.0, false, 0), 2);
        assert_eq!(desired_shards(1, 1, 8, 0.0, false, 0), 1);
        // A backlog keeps the shards it has.
        assert_eq!(desired_shards(3, 1, 8, 0.0, false, 10), 3);
    }

    #[test]
    fn a_series_always_maps_to_the_same_shard_whatever_its_id() {
        let s = |v: &str| {
            Series::new(&promshard_model::Labels::from_pairs([
                ("__name__", "m"),
                ("i", v),
            ]))
        };
        for i in 0..50 {
            let v = i.to_string();
            // Two ids for one label set: a restarted worker's series and its replayed one.
            assert_eq!(shard_of(&s(&v), 7), shard_of(&s(&v), 7));
        }
        let spread: std::collections::HashSet<usize> =
            (0..50).map(|i| shard_of(&s(&i.to_string()), 7)).collect();
        assert!(spread.len() > 4, "{spread:?}");
    }
}
