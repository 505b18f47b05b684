//! From a scraped body to samples: target labels attached (`honor_labels` or `exported_`
//! renaming), `metric_relabel_configs`, limits, duplicates, and staleness.
//!
//! Per-series order: an exposed timestamp (`honor_timestamps`) may go back in time, or fall
//! behind a stale marker this target wrote at scrape time (a failed scrape with
//! `track_timestamps_staleness`; cAdvisor's timestamps lag its scrapes). Prometheus's storage
//! refuses such a sample (`prometheus_target_scrapes_sample_out_of_order_total`); a remote
//! receiver would refuse the whole request carrying it. So a sample not newer than the last one
//! written for its series is dropped here and counted (equal timestamps: the repeat of a value
//! already sent, dropped without counting).
//!
//! The steady-state path does no label work at all: a cache keyed by a 128-bit hash of the
//! raw series text (`name{labels}` as exposed) points at the series' slot, which holds its
//! [`Series`] (labels relabeled and encoded once, an id) and the scrape iterations it was
//! last seen and tracked in. Duplicates and staleness are iteration numbers in the slot, so
//! no label set is hashed or compared per sample (hashing whole label sets per sample was
//! 70 % of the worker's CPU, then 27 % with foldhash: docs/BENCHMARKS.md). Label sets are
//! hashed only on a cache miss, to find a slot for series text that relabels to a label set
//! the target already has.
//!
//! Targets expose their series in the same order every scrape, so the cache is also kept in
//! that order: each entry remembers its position in the last scrape, and the entry expected
//! next is checked before the hash index. A steady scrape then walks its entries and slots
//! sequentially instead of probing a table at random (those probes were cache misses: 40 %
//! of this function's time at 100 cAdvisor targets); a reordered body only costs lookups.
//!
//! The cache stores the hash instead of the text (~300 bytes per cAdvisor series). A
//! collision would attribute one series' samples to another series of the same target, which
//! a target can do anyway by exposing what it likes; with 128 bits and a per-process secret it
//! does not happen by accident.
//!
//! Bytes per series are the budget (a worker holds millions): an entry is 36 bytes and a slot
//! 40, scrape iterations are `u32` (680 years of 5 s scrapes), and both indexes are
//! `hashbrown::HashTable`s of `u32` positions keyed by hashes the entries already hold, not maps
//! that store a second copy of each key (that was ~60 bytes per series).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;

use promshard_model::config::{ScrapeConfig, ValidationScheme};
use promshard_model::histogram::{Histogram, pick_schema};
use promshard_model::labels::{METRIC_NAME, is_valid_label_name, is_valid_metric_name};
use promshard_model::relabel::{self, RelabelConfig};
use promshard_model::{Labels, LabelsBuilder};
use promshard_proto::STALE_NAN_BITS;

use super::parser::{Decoded, Entry, Format, MetricType, Parser, Sample};
use super::protobuf;
use crate::remote_write::{AppendSample, MetricMetadata, Series};

const EXPORTED_PREFIX: &str = "exported_";

/// Prometheus's staleness marker value.
pub(super) fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// The key of the series-text hash, random per process. A secret rather than a seed: for
/// texts over 240 bytes (most cAdvisor series) a seeded xxh3 derives a secret from the seed
/// on every call, which was a third of the hash's time. 192 bytes: xxh3's own secret size.
type TextSecret = [u8; 192];

fn text_secret() -> &'static TextSecret {
    static SECRET: OnceLock<TextSecret> = OnceLock::new();
    SECRET.get_or_init(rand::random)
}

/// The cache key of a series text: the one hash both the fast path and a lookup compare.
fn text_key(text: &[u8], secret: &TextSecret) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_secret(text, secret)
}

/// Result of a successful scrape.
pub(crate) struct Processed {
    pub(crate) samples: Vec<AppendSample>,
    /// Stale markers for the series that vanished since the last successful scrape.
    pub(crate) stale: Vec<AppendSample>,
    /// Metadata the body declared, for remote write 2.0.
    pub(crate) metadata: Vec<MetricMetadata>,
    /// Samples in the body (`scrape_samples_scraped`).
    pub(crate) scraped: usize,
    /// Samples kept after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub(crate) post_relabel: usize,
    /// Series that get stale markers when they disappear (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) tracked: usize,
    /// Ids of series this target no longer has: append `samples` first, then retire them.
    pub(crate) retired: Vec<u64>,
    /// Samples whose series text was not in the cache (`scrape_series_added`): as in
    /// Prometheus this counts series with explicit timestamps too, unlike `tracked`.
    pub(crate) series_added: usize,
    /// Samples dropped because their exposed timestamp was older than what was already
    /// written for their series.
    pub(crate) out_of_order: usize,
}

/// A failed scrape: the error, and the counts Prometheus still reports for it (samples read
/// before a parse or label error; every sample when `sample_limit` is exceeded, because
/// Prometheus keeps parsing to report the true total).
#[derive(Debug, Default)]
pub(crate) struct Failed {
    pub(crate) error: String,
    pub(crate) scraped: usize,
    pub(crate) post_relabel: usize,
    pub(crate) series_added: usize,
    pub(crate) out_of_order: usize,
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed {
            error,
            ..Failed::default()
        }
    }
}

/// One series text of this target.
struct CacheEntry {
    /// The series text's [`text_key`], as two halves: a `u128` field would align the entry
    /// to 16 bytes and cost 8 more per series.
    key: [u64; 2],
    /// Index into `slots`; [`NO_SLOT`]: dropped by metric relabeling.
    slot: u32,
    seen: u32,
    /// Position in the order of the scrape that last saw it.
    pos: u32,
    /// Length of the series text and the newlines in it (quoted values may span lines), for
    /// the parser's fast path ([`Parser::next_known`]).
    len: u32,
    newlines: u16,
    /// Labels depend on the series text *and* the family type (`le`/`quantile`
    /// normalization), so an entry only counts as a hit under the same type.
    metric_type: MetricType,
    /// The format the text was last parsed in: the fast path only takes it in the same one.
    format: Format,
    live: bool,
}

/// `CacheEntry::slot` of series text that metric relabeling drops.
const NO_SLOT: u32 = u32::MAX;

impl CacheEntry {
    fn key(&self) -> u128 {
        (u128::from(self.key[1]) << 64) | u128::from(self.key[0])
    }

    fn slot(&self) -> Option<u32> {
        (self.slot != NO_SLOT).then_some(self.slot)
    }
}

/// The index of an entry's key: its low 64 bits are already a uniform hash.
fn key_hash(key: u128) -> u64 {
    key as u64
}

enum Lookup {
    Hit(u32),
    /// The same text under another family type: labels must be built again.
    OtherType(u32),
    Miss,
}

/// One series of this target.
struct Slot {
    series: Arc<Series>,
    /// The writer generation the WALs last got this series' labels under.
    announced: u64,
    /// Iteration it was last appended in: a second sample in one scrape is a duplicate.
    seen: u32,
    /// Iteration it was last tracked for staleness in (may be a scrape that then failed).
    pending: u32,
    /// Last *successful* scrape that tracked it.
    tracked: u32,
    /// Newest timestamp written for it by an exposed timestamp or a stale marker (scrape-time
    /// samples only ever move forward); `i64::MIN` before any.
    newest: i64,
}

impl Slot {
    /// A stale marker at `ts`: nothing older may follow it.
    fn stale(&mut self, generation: u64, ts: i64) -> AppendSample {
        self.newest = self.newest.max(ts);
        self.sample(generation, ts, stale_nan())
    }

    /// A sample of this series, carrying the series only if the WALs may not know it yet.
    fn sample(&mut self, generation: u64, timestamp_ms: i64, value: f64) -> AppendSample {
        let series = (self.announced != generation).then(|| {
            self.announced = generation;
            self.series.clone()
        });
        AppendSample {
            id: self.series.id(),
            timestamp_ms,
            value,
            series,
            histogram: None,
        }
    }
}

pub(crate) struct SampleProcessor {
    target: Labels,
    honor_labels: bool,
    honor_timestamps: bool,
    track_timestamps_staleness: bool,
    metric_relabel: Vec<RelabelConfig>,
    sample_limit: usize,
    label_limit: usize,
    label_name_length_limit: usize,
    label_value_length_limit: usize,
    /// `metric_name_validation_scheme: legacy`: series with other names fail the scrape.
    legacy_names: bool,
    /// How protobuf bodies' histograms are read.
    protobuf: protobuf::Options,
    /// `native_histogram_bucket_limit` (0: none) and the schema cap from
    /// `native_histogram_min_bucket_factor`.
    bucket_limit: usize,
    max_schema: i32,
    entries: Vec<CacheEntry>,
    free_entries: Vec<u32>,
    /// Live entries by key.
    index: HashTable<u32>,
    /// Entries in the order of the last successful scrape's body.
    order: Vec<u32>,
    /// Slots whose series a scrape in progress sends with their labels: if it fails, they
    /// were not written after all.
    announcing: Vec<u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Slots by their series' label set (hashed as [`Series::hash`]).
    by_labels: HashTable<u32>,
    iteration: u32,
    /// The last successful scrape's iteration; 0 after a failed one (nothing tracked).
    last_ok: u32,
    /// Hash of the last successful scrape's `# TYPE`/`# HELP`/`# UNIT` lines, and when its
    /// metadata was last handed on: a body whose metadata did not change costs a hash, not a
    /// string per family (that was a third of the worker's CPU on 1,000 node exporters).
    metadata_hash: u64,
    metadata_sent: Option<std::time::Instant>,
    /// Exposed timestamps of the scrape in progress, by slot: they become the slots' `newest`
    /// only if the scrape succeeds.
    exposed: Vec<(u32, i64)>,
}

impl SampleProcessor {
    /// `target` is the target's public label set (no `__` labels).
    pub(crate) fn new(cfg: &ScrapeConfig, target: Labels) -> Self {
        SampleProcessor {
            target,
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            track_timestamps_staleness: cfg.track_timestamps_staleness,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            sample_limit: cfg.sample_limit as usize,
            label_limit: cfg.label_limit as usize,
            label_name_length_limit: cfg.label_name_length_limit as usize,
            label_value_length_limit: cfg.label_value_length_limit as usize,
            legacy_names: cfg.metric_name_validation_scheme == Some(ValidationScheme::Legacy),
            protobuf: protobuf::Options {
                ignore_native: !cfg.native_histograms(),
                keep_classic: cfg.keep_classic_histograms(),
            },
            bucket_limit: cfg.native_histogram_bucket_limit as usize,
            max_schema: pick_schema(cfg.native_histogram_min_bucket_factor.unwrap_or(0.0)),
            entries: Vec::new(),
            free_entries: Vec::new(),
            index: HashTable::new(),
            order: Vec::new(),
            announcing: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            by_labels: HashTable::new(),
            iteration: 0,
            last_ok: 0,
            metadata_hash: 0,
            metadata_sent: None,
            exposed: Vec::new(),
        }
    }

    /// Processes a whole body. Any error fails the whole scrape: nothing from it is kept.
    /// `generation` is the [`Writer`](crate::remote_write::Writer)'s the samples go to.
    pub(crate) fn process(
        &mut self,
        body: &[u8],
        format: Format,
        ts: i64,
        generation: u64,
    ) -> Result<Processed, Failed> {
        let mut c = Failed::default();
        self.announcing.clear();
        self.exposed.clear();
        match self.process_counting(body, format, ts, generation, &mut c) {
            Ok((samples, metadata)) => {
                for &(i, t) in &self.exposed {
                    if let Some(s) = self.slots[i as usize].as_mut() {
                        s.newest = s.newest.max(t);
                    }
                }
                self.evict_entries();
                let mut stale = Vec::new();
                let (tracked, retired) = self.finish_success(ts, generation, &mut stale);
                Ok(Processed {
                    samples,
                    stale,
                    metadata,
                    scraped: c.scraped,
                    post_relabel: c.post_relabel,
                    tracked,
                    retired,
                    series_added: c.series_added,
                    out_of_order: c.out_of_order,
                })
            }
            Err(error) => {
                for &i in &self.announcing {
                    if let Some(s) = self.slots[i as usize].as_mut() {
                        s.announced = 0;
                    }
                }
                // Series text seen in a failed scrape stays cached, as in Prometheus (its
                // `scrape_series_added` counts it once, not on every failed scrape); the next
                // successful scrape evicts what it does not see.
                Err(Failed { error, ..c })
            }
        }
    }

    /// Cache entries for series text not seen in this (successful) scrape go.
    fn evict_entries(&mut self) {
        let now = self.iteration;
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.live && e.seen != now {
                if let Ok(found) = self.index.find_entry(key_hash(e.key()), |&j| j == i as u32) {
                    found.remove();
                }
                e.live = false;
                self.free_entries.push(i as u32);
            }
        }
    }

    /// After a successful scrape: stale markers for the series tracked by the previous
    /// successful scrape and not by this one, and the slots of series not seen freed.
    /// Returns how many series are tracked now, and the retired ids.
    fn finish_success(
        &mut self,
        ts: i64,
        generation: u64,
        out: &mut Vec<AppendSample>,
    ) -> (usize, Vec<u64>) {
        let (now, prev) = (self.iteration, self.last_ok);
        let mut tracked = 0;
        let mut retired = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            if prev != 0 && s.tracked == prev && s.pending != now {
                out.push(s.stale(generation, ts));
            }
            if s.pending == now {
                s.tracked = now;
                tracked += 1;
            }
            if s.seen != now {
                retired.push(s.series.id());
                if let Ok(found) = self
                    .by_labels
                    .find_entry(s.series.hash(), |&j| j == i as u32)
                {
                    found.remove();
                }
                *slot = None;
                self.free.push(i as u32);
            }
        }
        self.last_ok = now;
        (tracked, retired)
    }

    /// A failed scrape counts as empty: stale markers for every series the last successful
    /// scrape tracked. Its series stay cached for the next scrape.
    pub(crate) fn fail(&mut self, ts: i64, generation: u64) -> Vec<AppendSample> {
        let prev = self.last_ok;
        self.last_ok = 0;
        if prev == 0 {
            return Vec::new();
        }
        self.slots
            .iter_mut()
            .flatten()
            .filter(|s| s.tracked == prev)
            .map(|s| s.stale(generation, ts))
            .collect()
    }

    /// The target is gone (Prometheus's end-of-run staleness): stale markers for every
    /// tracked series. Nothing is tracked afterwards.
    pub(crate) fn end_of_run(&mut self, ts: i64, generation: u64) -> Vec<AppendSample> {
        self.fail(ts, generation)
    }

    /// Every series id this target holds; the processor holds none afterwards.
    pub(crate) fn retire_all(&mut self) -> Vec<u64> {
        self.entries.clear();
        self.free_entries.clear();
        self.index.clear();
        self.order.clear();
        self.by_labels.clear();
        self.free.clear();
        self.last_ok = 0;
        self.slots
            .drain(..)
            .flatten()
            .map(|s| s.series.id())
            .collect()
    }

    /// The slot of `labels`: the existing one (other series text that relabels to the same
    /// label set), or a new one.
    fn slot_for(&mut self, labels: &Labels) -> u32 {
        let series = Series::new(labels);
        let slots = &self.slots;
        let same = |&j: &u32| {
            slots[j as usize]
                .as_ref()
                .is_some_and(|s| s.series.encoded() == series.encoded())
        };
        if let Some(&i) = self.by_labels.find(series.hash(), same) {
            return i;
        }
        let hash = series.hash();
        let slot = Slot {
            series,
            announced: 0,
            seen: 0,
            pending: 0,
            tracked: 0,
            newest: i64::MIN,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.by_labels.insert_unique(hash, i, |&j| {
            slots[j as usize].as_ref().map_or(0, |s| s.series.hash())
        });
        i
    }

    /// The cache entry for series text `key` of type `metric_type`, if it is a hit: the
    /// entry expected next (after `cursor` in the last order) first, then the index.
    fn lookup(&self, key: u128, metric_type: MetricType, cursor: usize) -> Lookup {
        let expected = self.order.get(cursor).copied().filter(|&i| {
            let e = &self.entries[i as usize];
            e.live && e.key() == key
        });
        let entries = &self.entries;
        let indexed = || {
            self.index
                .find(key_hash(key), |&j| entries[j as usize].key() == key)
                .copied()
        };
        match expected.or_else(indexed) {
            Some(i) if self.entries[i as usize].metric_type == metric_type => Lookup::Hit(i),
            Some(i) => Lookup::OtherType(i),
            None => Lookup::Miss,
        }
    }

    fn new_entry(&mut self, entry: CacheEntry) -> u32 {
        let key = entry.key();
        let i = match self.free_entries.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let entries = &self.entries;
        self.index
            .insert_unique(key_hash(key), i, |&j| key_hash(entries[j as usize].key()));
        i
    }

    /// The cache entry of a sample's series text: found, or made (labels built, relabeled,
    /// given a slot). `true` when it was made.
    fn entry_for<'a>(
        &mut self,
        s: &Sample<'a>,
        format: Format,
        secret: &TextSecret,
        cursor: usize,
        now: u32,
        label_buf: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    ) -> Result<(u32, bool), String> {
        let key = text_key(s.series, secret);
        let lookup = self.lookup(key, s.metric_type, cursor);
        if let Lookup::Hit(i) = lookup {
            self.entries[i as usize].format = format;
            return Ok((i, false));
        }
        s.labels_into(label_buf).map_err(|e| e.to_string())?;
        let mut lb = LabelsBuilder::new();
        for (n, v) in label_buf.iter() {
            if lb.get(n).is_some() {
                return Err(format!("label name {n:?} is not unique: invalid sample"));
            }
            lb.set(n.to_string(), v.to_string());
        }
        lb.set(METRIC_NAME, s.name.to_string());
        let slot = self.mutate(lb)?.map(|labels| self.slot_for(&labels));
        let len = u32::try_from(s.series.len()).unwrap_or(u32::MAX);
        let newlines = s.series.iter().filter(|&&c| c == b'\n').count();
        // Text with more newlines than an entry counts (absurd, but possible in quoted values)
        // never takes the fast path: no series text is u32::MAX bytes long.
        let (len, newlines) = match u16::try_from(newlines) {
            Ok(n) => (len, n),
            Err(_) => (u32::MAX, 0),
        };
        let i = match lookup {
            Lookup::OtherType(i) => {
                let e = &mut self.entries[i as usize];
                (e.slot, e.metric_type, e.format) =
                    (slot.unwrap_or(NO_SLOT), s.metric_type, format);
                i
            }
            _ => self.new_entry(CacheEntry {
                key: [key as u64, (key >> 64) as u64],
                live: true,
                slot: slot.unwrap_or(NO_SLOT),
                metric_type: s.metric_type,
                seen: now,
                pos: u32::MAX,
                len,
                newlines,
                format,
            }),
        };
        Ok((i, true))
    }

    fn process_counting(
        &mut self,
        body: &[u8],
        format: Format,
        ts: i64,
        generation: u64,
        c: &mut Failed,
    ) -> Result<(Vec<AppendSample>, Vec<MetricMetadata>), String> {
        // Protobuf is decoded whole first (a few arenas, dropped with the scrape); the text
        // formats are read in place.
        let decoded;
        let histograms: Vec<Histogram>;
        self.iteration += 1;
        let now = self.iteration;
        let mut meta = MetadataLines::default();
        let mut parser = match format {
            Format::Protobuf => {
                let mut d = Decoded::default();
                let mut h = Vec::new();
                protobuf::decode(body, self.protobuf, &mut d, &mut h)?;
                (decoded, histograms) = (d, h);
                Parser::decoded(&decoded)
            }
            Format::Text | Format::OpenMetrics => {
                histograms = Vec::new();
                Parser::new(body, format)
            }
        };
        let secret = text_secret();
        // Sized for the previous scrape.
        let mut samples = Vec::with_capacity(self.order.len() + 8);
        let mut order = Vec::with_capacity(self.order.len() + 8);
        let mut cursor = 0usize;
        let mut limit_exceeded = false;
        let mut label_buf = Vec::new();
        loop {
            // The entry expected next in body order, read without lexing its labels again.
            let known = self.order.get(cursor).and_then(|&i| {
                let e = &self.entries[i as usize];
                let same = |text: &[u8]| text_key(text, secret) == e.key();
                let (len, newlines) = (e.len as usize, e.newlines as usize);
                (e.live && e.format == format)
                    .then(|| parser.next_known(len, newlines, e.metric_type, same))
                    .flatten()
                    .map(|k| (i, k.value, k.timestamp_ms))
            });
            // A native histogram's value, in place of `value`.
            let mut histogram: Option<&Histogram> = None;
            let (entry, cache_miss, value, timestamp_ms) = match known {
                Some((i, value, timestamp_ms)) => {
                    c.scraped += 1;
                    (i, false, value, timestamp_ms)
                }
                None => {
                    let Some(entry) = parser.next_entry().map_err(|e| e.to_string())? else {
                        break;
                    };
                    let s = match entry {
                        Entry::Sample(s) => s,
                        Entry::Help { name, help } => {
                            meta.push(name, MetaField::Help(help));
                            continue;
                        }
                        Entry::Type { name, kind } => {
                            meta.push(name, MetaField::Type(kind));
                            continue;
                        }
                        Entry::Unit { name, unit } => {
                            meta.push(name, MetaField::Unit(Cow::Borrowed(unit)));
                            continue;
                        }
                        Entry::Histogram { series, index } => {
                            histogram = histograms.get(index);
                            series
                        }
                    };
                    // Counted before a label error can fail the scrape, as in Prometheus.
                    c.scraped += 1;
                    let (i, miss) =
                        self.entry_for(&s, format, secret, cursor, now, &mut label_buf)?;
                    (i, miss, s.value, s.timestamp_ms)
                }
            };
            let e = &mut self.entries[entry as usize];
            if e.pos != u32::MAX && !cache_miss {
                cursor = e.pos as usize + 1;
            }
            e.pos = order.len() as u32;
            e.seen = now;
            order.push(entry);
            let Some(slot) = e.slot() else { continue };
            // Counted before de-duplication and towards the limit, as Prometheus's appender
            // counts every append.
            c.post_relabel += 1;
            if self.sample_limit > 0 && c.post_relabel > self.sample_limit {
                // Prometheus keeps parsing to report the real totals, then fails the scrape.
                limit_exceeded = true;
                continue;
            }
            let e_slot = slot;
            let Some(slot) = self.slots[e_slot as usize].as_mut() else {
                return Err("internal error: series cache points at a free slot".into());
            };
            if slot.seen == now {
                // Prometheus drops a repeated series in one scrape ("duplicate sample for
                // timestamp") without failing the scrape.
                continue;
            }
            slot.seen = now;
            let explicit_ts = timestamp_ms.filter(|_| self.honor_timestamps);
            if explicit_ts.is_none() || self.track_timestamps_staleness {
                slot.pending = now;
            }
            if let Some(t) = explicit_ts {
                // Still exposed (so not stale), but not newer than what was written.
                if t <= slot.newest {
                    c.out_of_order += usize::from(t < slot.newest);
                    continue;
                }
                self.exposed.push((e_slot, t));
            }
            // The limits may lower a histogram's resolution (a copy: the decoded one is the
            // target's), or fail the scrape.
            let histogram = match histogram {
                Some(h) => {
                    let mut h = h.clone();
                    h.apply_limits(self.bucket_limit, self.max_schema)
                        .map_err(|e| e.to_string())?;
                    Some(Arc::new(h))
                }
                None => None,
            };
            // A native histogram is one series here, as in Prometheus's `scrape_series_added`.
            c.series_added += usize::from(cache_miss);
            let mut sample = slot.sample(generation, explicit_ts.unwrap_or(ts), value);
            sample.histogram = histogram;
            if sample.series.is_some() {
                self.announcing.push(e_slot);
            }
            samples.push(sample);
        }
        self.order = order;
        if limit_exceeded {
            return Err(format!(
                "sample limit exceeded (limit {})",
                self.sample_limit
            ));
        }
        let hash = meta.hash.finish();
        let due = self
            .metadata_sent
            .is_none_or(|t| t.elapsed() >= crate::remote_write::METADATA_REFRESH);
        let metadata = if hash != self.metadata_hash || due {
            self.metadata_hash = hash;
            self.metadata_sent = Some(std::time::Instant::now());
            meta.families()
        } else {
            Vec::new()
        };
        Ok((samples, metadata))
    }

    /// Prometheus's `mutateSampleLabels`, then limits. `Ok(None)`: dropped by relabeling.
    fn mutate(&self, mut lb: LabelsBuilder) -> Result<Option<Labels>, String> {
        if self.honor_labels {
            for l in &self.target {
                if lb.get(&l.name).is_none() {
                    lb.set(l.name.clone(), l.value.clone());
                }
            }
        } else {
            let mut conflicts: Vec<(String, String)> = Vec::new();
            for l in &self.target {
                if let Some(v) = lb.get(&l.name) {
                    conflicts.push((l.name.clone(), v.to_string()));
                }
                lb.set(l.name.clone(), l.value.clone());
            }
            // Shorter names first, so `exported_a` is claimed before `a` would need it.
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut new = name;
                loop {
                    new = format!("{EXPORTED_PREFIX}{new}");
                    if lb.get(&new).is_none() {
                        lb.set(new, value);
                        break;
                    }
                }
            }
        }
        if !relabel::process(&self.metric_relabel, &mut lb) {
            return Ok(None);
        }
        let labels = lb.into_labels();
        if labels.is_empty() {
            return Ok(None);
        }
        let Some(name) = labels.get(METRIC_NAME) else {
            return Err("__name__ label is missing after relabeling".into());
        };
        if name.is_empty() {
            return Err("__name__ label is missing after relabeling".into());
        }
        if self.label_limit > 0 && labels.len() > self.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
                labels.len(),
                self.label_limit
            ));
        }
        if self.legacy_names
            && (!is_valid_metric_name(name)
                || labels
                    .iter()
                    .any(|l| l.name != METRIC_NAME && !is_valid_label_name(&l.name)))
        {
            // Prometheus's message with the legacy scheme.
            return Err(format!("invalid metric name or label names: {labels}"));
        }
        for l in &labels {
            // Prometheus 3 accepts any non-empty UTF-8 label name (UTF-8 is guaranteed here).
            if l.name.is_empty() {
                return Err(format!("empty label name in series of {name}"));
            }
            if self.label_name_length_limit > 0 && l.name.len() > self.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {name}, label name: {}, limit: {})",
                    l.name, self.label_name_length_limit
                ));
            }
            if self.label_value_length_limit > 0 && l.value.len() > self.label_value_length_limit {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {name}, label name: {}, value: {:?}, limit: {})",
                    l.name, l.value, self.label_value_length_limit
                ));
            }
        }
        Ok(Some(labels))
    }
}

/// One `# HELP`, `# TYPE` or `# UNIT` line's content.
enum MetaField<'a> {
    Help(Cow<'a, str>),
    Type(MetricType),
    Unit(Cow<'a, str>),
}

/// A scrape's metadata lines as the body has them (borrowed), and their hash: turned into
/// [`MetricMetadata`] only when they changed (or are due to be sent again).
struct MetadataLines<'a> {
    lines: Vec<(Cow<'a, str>, MetaField<'a>)>,
    hash: xxhash_rust::xxh3::Xxh3Default,
}

impl Default for MetadataLines<'_> {
    fn default() -> Self {
        MetadataLines {
            lines: Vec::new(),
            hash: xxhash_rust::xxh3::Xxh3Default::new(),
        }
    }
}

impl<'a> MetadataLines<'a> {
    fn push(&mut self, name: Cow<'a, str>, field: MetaField<'a>) {
        let (tag, text): (u8, &str) = match &field {
            MetaField::Help(h) => (1, h),
            MetaField::Type(k) => (2, k.as_str()),
            MetaField::Unit(u) => (3, u),
        };
        // Lengths first, so no two different sets of lines hash the same bytes.
        self.hash.update(&[tag]);
        self.hash.update(&(name.len() as u64).to_le_bytes());
        self.hash.update(name.as_bytes());
        self.hash.update(&(text.len() as u64).to_le_bytes());
        self.hash.update(text.as_bytes());
        self.lines.push((name, field));
    }

    /// One entry per family, in first-mention order; a family's later line of the same kind
    /// wins, as before.
    fn families(self) -> Vec<MetricMetadata> {
        let mut out: Vec<MetricMetadata> = Vec::new();
        let mut index: HashMap<Cow<'a, str>, usize> = HashMap::new();
        for (name, field) in self.lines {
            let i = *index.entry(name.clone()).or_insert_with(|| {
                out.push(MetricMetadata {
                    family: name.into_owned(),
                    kind: "unknown".to_owned(),
                    ..MetricMetadata::default()
                });
                out.len() - 1
            });
            let m = &mut out[i];
            match field {
                MetaField::Help(h) => m.help = h.into_owned(),
                MetaField::Type(k) => m.kind = k.as_str().to_owned(),
                MetaField::Unit(u) => m.unit = u.into_owned(),
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
