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

use super::client::{
    EncodeBuffers, MetadataMap, Protocol, SendError, WriteClient, encode_v1, encode_v2,
};
use super::series::warm;
use super::wal::{Cursor, Position, Wal};
use super::{Sample, Series, endpoint_labels};
use crate::metrics::Metrics;

/// How often the shard count is reconsidered.
const RESHARD_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for the reader when the WAL has nothing new (appends also wake it).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Samples of one WAL record on their way to one shard.
struct Chunk {
    samples: Vec<Sample>,
    record: u64,
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

/// Delivery progress of the records read from the WAL.
struct Progress {
    /// Sequence number of `pending[0]`.
    base: u64,
    /// (end of the record, samples not yet delivered).
    pending: VecDeque<(Position, u64)>,
}

struct Shared {
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    wal: Arc<Wal>,
    client: WriteClient,
    /// Starts true for `protobuf_message: io.prometheus.write.v2.Request`; a 415 turns it off.
    v2: AtomicBool,
    /// What the WAL's metadata records said so far, for 2.0 requests.
    metadata: std::sync::RwLock<MetadataMap>,
    progress: Mutex<Progress>,
    m: EndpointMetrics,
    /// Failed sends in this resharding period: no scaling up into an outage.
    failures: AtomicU64,
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
        }
    }
}

impl Shared {
    /// `n` samples of record `seq` are done (sent or given up on).
    fn ack(&self, done: &[(u64, u64)]) {
        let mut advanced = None;
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
                if let Some((end, _)) = p.pending.pop_front() {
                    advanced = Some(end);
                    p.base += 1;
                }
            }
        }
        if let Some(pos) = advanced
            && let Err(e) = self.wal.commit(pos)
        {
            tracing::warn!(wal = %self.wal.dir().display(), error = %e, "cannot record WAL progress");
        }
        self.m.wal_bytes.set(self.wal.bytes() as i64);
    }
}

pub(super) struct QueueManager {
    shared: Arc<Shared>,
}

impl QueueManager {
    pub(super) fn new(
        cfg: RemoteWriteConfig,
        external: Vec<(String, String)>,
        wal: Arc<Wal>,
        m: EndpointMetrics,
        metadata: MetadataMap,
    ) -> anyhow::Result<Self> {
        let client = WriteClient::new(&cfg)?;
        // Whatever an earlier manager of this WAL read but did not deliver is read again.
        wal.rewind();
        let v2 = cfg.protobuf_message == ProtobufMessage::V2;
        Ok(QueueManager {
            shared: Arc::new(Shared {
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
        })
    }

    pub(super) async fn run(self) {
        let sh = self.shared;
        let q = sh.cfg.queue_config.clone();
        let (min, max) = (q.min_shards.max(1) as usize, q.max_shards.max(1) as usize);
        let mut n = min;
        // A manager restarted with new settings re-reads what its predecessor had queued.
        sh.m.pending.set(0);
        let mut shards = ShardSet::start(&sh, n);
        let mut cursor = Cursor::default();
        let mut seq: u64 = 0;
        let mut period_start = Instant::now();
        let mut blocked = Duration::ZERO;
        let relabel = !sh.external.is_empty() || !sh.cfg.write_relabel_configs.is_empty();
        let mut relabeled = RelabelCache::default();
        loop {
            sh.m.wal_bytes.set(sh.wal.bytes() as i64);
            if period_start.elapsed() >= RESHARD_EVERY {
                let want = desired_shards(
                    n,
                    min,
                    max,
                    blocked.as_secs_f64() / period_start.elapsed().as_secs_f64(),
                    sh.failures.swap(0, Ordering::Relaxed) > 0,
                    sh.wal.unread_bytes(),
                );
                if want != n {
                    tracing::info!(url = %sh.cfg.url, from = n, to = want, "resharding remote write");
                    shards.drain().await;
                    n = want;
                    shards = ShardSet::start(&sh, n);
                }
                period_start = Instant::now();
                blocked = Duration::ZERO;
                relabeled.next_period();
            }
            let record = match sh.wal.read_next(&mut cursor) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let _ = tokio::time::timeout(IDLE_POLL, sh.wal.appended.notified()).await;
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
                for m in record.metadata {
                    map.insert(m.family.clone(), m);
                }
            }
            let read = record.samples.len() as u64 + record.unknown;
            // `sample_age_limit`: a backlog older than this is not worth sending (0: no limit).
            let oldest_ok = match q.sample_age_limit.0 {
                d if d.is_zero() => i64::MIN,
                d => unix_ms_now() - d.as_millis() as i64,
            };
            // Sized so that growing them does not copy a record's samples over and over.
            let per_shard = match n {
                1 => record.samples.len(),
                n => record.samples.len() / n * 5 / 4 + 16,
            };
            let mut chunks: Vec<Vec<Sample>> =
                (0..n).map(|_| Vec::with_capacity(per_shard)).collect();
            let mut total = 0u64;
            for mut s in record.samples {
                if s.timestamp_ms < oldest_ok {
                    continue;
                }
                if relabel {
                    match relabeled.get(&sh.cfg, &sh.external, &s.series) {
                        Some(series) => s.series = series,
                        None => continue,
                    }
                }
                total += 1;
                chunks[shard_of(&s.series, n)].push(s);
            }
            sh.m.dropped.inc_by(read - total);
            {
                let mut p = sh.progress.lock().unwrap_or_else(|e| e.into_inner());
                if p.pending.is_empty() {
                    p.base = seq;
                }
                p.pending.push_back((record.end, total));
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
                    record: seq,
                };
                match shards.senders[i].try_send(chunk) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(chunk)) => {
                        let t = Instant::now();
                        if shards.senders[i].send(chunk).await.is_err() {
                            return;
                        }
                        blocked += t.elapsed();
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            seq += 1;
        }
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

    /// Closes the shards' queues and waits until they have delivered everything in them.
    async fn drain(mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

struct Shard {
    sh: Arc<Shared>,
}

impl Shard {
    async fn run(self, mut rx: mpsc::Receiver<Chunk>) {
        let q = &self.sh.cfg.queue_config;
        let max = (q.max_samples_per_send as usize).max(1);
        let mut batch = Batch::default();
        let mut deadline = Instant::now() + q.batch_send_deadline.0;
        let mut bufs = EncodeBuffers::default();
        loop {
            let chunk = if batch.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    chunk = rx.recv() => chunk,
                    _ = tokio::time::sleep_until(deadline) => {
                        self.send(&mut batch, usize::MAX, &mut bufs).await;
                        continue;
                    }
                }
            };
            let Some(chunk) = chunk else { break };
            if batch.is_empty() {
                deadline = Instant::now() + q.batch_send_deadline.0;
            }
            batch.push(chunk);
            while batch.len() >= max {
                self.send(&mut batch, max, &mut bufs).await;
            }
        }
        while !batch.is_empty() {
            self.send(&mut batch, max, &mut bufs).await;
        }
    }

    /// Sends the first `max` samples of `batch` until they are delivered or refused for good,
    /// and takes them out of it.
    async fn send(&self, batch: &mut Batch, max: usize, bufs: &mut EncodeBuffers) {
        let sh = &self.sh;
        let q = &sh.cfg.queue_config;
        let take = batch.len().min(max);
        let done = batch.take_records(take as u64);
        let samples = batch.unsent(take);
        let n = take as u64;
        let newest = samples.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
        let mut backoff = q.min_backoff.0;
        let mut attempt = 0;
        loop {
            let protocol = if sh.v2.load(Ordering::Relaxed) {
                Protocol::V2
            } else {
                Protocol::V1
            };
            let body = match protocol {
                Protocol::V1 => encode_v1(samples, bufs),
                Protocol::V2 => {
                    let metadata = sh.metadata.read().unwrap_or_else(|e| e.into_inner());
                    encode_v2(samples, &metadata, bufs)
                }
            };
            let len = body.len() as u64;
            match sh.client.send(body, protocol, attempt).await {
                Ok(None) if protocol == Protocol::V2 => {
                    // A 1.0-only receiver (Prometheus before 3.0) decodes a 2.0 body as an
                    // empty 1.0 request and answers 2xx having stored nothing; only the
                    // missing written-count header tells. Fall back and send it again.
                    tracing::warn!(url = %sh.cfg.url, "receiver accepted remote write 2.0 without X-Prometheus-Remote-Write-Samples-Written (a 1.0-only receiver); falling back to 1.0 and re-sending");
                    sh.v2.store(false, Ordering::Relaxed);
                    sh.m.fallbacks.inc();
                }
                Ok(_) => {
                    sh.m.sent.inc_by(n);
                    sh.m.bytes_sent.inc_by(len);
                    let secs = newest / 1000;
                    if secs > sh.m.highest_sent.get() {
                        sh.m.highest_sent.set(secs);
                    }
                    break;
                }
                Err(SendError::UnsupportedMediaType(message)) => {
                    // The spec's signal that the receiver only speaks 1.0: fall back for good
                    // (until the config changes) and send this batch again at once.
                    tracing::warn!(url = %sh.cfg.url, error = %message, "receiver refused remote write 2.0; falling back to 1.0");
                    sh.v2.store(false, Ordering::Relaxed);
                    sh.m.fallbacks.inc();
                }
                Err(SendError::Recoverable {
                    message,
                    retry_after,
                }) => {
                    sh.m.retried.inc_by(n);
                    sh.failures.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_after.unwrap_or(backoff);
                    tracing::warn!(url = %sh.cfg.url, error = %message, ?wait, attempt, "remote write failed; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(q.max_backoff.0);
                    attempt += 1;
                }
                Err(SendError::Fatal(message)) => {
                    sh.m.failed.inc_by(n);
                    tracing::error!(url = %sh.cfg.url, error = %message, samples = n, "remote write rejected; dropping batch");
                    break;
                }
            }
        }
        batch.consume(take);
        sh.m.pending.dec_by(n as i64);
        sh.ack(&done);
    }
}

/// A shard's samples waiting to be sent, and which WAL records they came from.
#[derive(Default)]
struct Batch {
    /// `samples[sent..]` wait. The sent ones are dropped when all are sent, or when they are
    /// the larger part: taking each request's samples off the front would move the rest
    /// every time (a shard gets a target's whole scrape, thousands of samples, at once).
    samples: Vec<Sample>,
    sent: usize,
    /// (record, samples of it still waiting), in order.
    records: VecDeque<(u64, u64)>,
}

impl Batch {
    fn push(&mut self, chunk: Chunk) {
        let n = chunk.samples.len() as u64;
        match self.records.back_mut() {
            Some((r, c)) if *r == chunk.record => *c += n,
            _ => self.records.push_back((chunk.record, n)),
        }
        if self.is_empty() {
            self.samples = chunk.samples;
            self.sent = 0;
        } else {
            if self.sent > self.samples.len() / 2 {
                warm(self.samples[..self.sent].iter().map(|s| &*s.series));
                self.samples.drain(..self.sent);
                self.sent = 0;
            }
            self.samples.extend(chunk.samples);
        }
    }

    fn len(&self) -> usize {
        self.samples.len() - self.sent
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` waiting samples.
    fn unsent(&self, n: usize) -> &[Sample] {
        &self.samples[self.sent..self.sent + n]
    }

    /// The first `n` waiting samples were sent (or given up on).
    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.samples.len() {
            warm(self.samples.iter().map(|s| &*s.series));
            self.samples.clear();
            self.sent = 0;
        }
    }

    /// The records the first `n` samples belong to, counted, taken out of `records`.
    fn take_records(&mut self, mut n: u64) -> Vec<(u64, u64)> {
        let mut done = Vec::new();
        while n > 0 {
            let Some((r, c)) = self.records.front_mut() else {
                break;
            };
            let k = (*c).min(n);
            done.push((*r, k));
            *c -= k;
            n -= k;
            if *c == 0 {
                self.records.pop_front();
            }
        }
        done
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

    #[test]
    fn a_batch_counts_what_it_sends_against_the_records_it_came_from() {
        let sample = |ts| {
            Sample::new(
                &promshard_model::Labels::from_pairs([("__name__", "m")]),
                ts,
                1.0,
            )
        };
        let mut b = Batch::default();
        b.push(Chunk {
            samples: vec![sample(1), sample(2)],
            record: 7,
        });
        b.push(Chunk {
            samples: vec![sample(3)],
            record: 7,
        });
        b.push(Chunk {
            samples: vec![sample(4), sample(5)],
            record: 8,
        });
        let ts = |b: &Batch, n| {
            b.unsent(n)
                .iter()
                .map(|s| s.timestamp_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!(b.take_records(2), [(7, 2)]);
        assert_eq!(ts(&b, 2), [1, 2]);
        b.consume(2);
        assert_eq!(b.take_records(2), [(7, 1), (8, 1)]);
        assert_eq!(ts(&b, 2), [3, 4]);
        b.consume(2);
        // More arrives while one sample waits: the sent ones make room, order is kept.
        b.push(Chunk {
            samples: vec![sample(6)],
            record: 9,
        });
        assert_eq!((b.len(), ts(&b, 2)), (2, vec![5, 6]));
        assert_eq!(b.take_records(5), [(8, 1), (9, 1)]);
        b.consume(2);
        assert!(b.records.is_empty() && b.is_empty() && b.samples.is_empty());
    }
}
