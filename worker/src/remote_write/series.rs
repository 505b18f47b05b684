//! Series identity on the write path: a label set encoded once, when a scrape first sees the
//! series, and referred to by id from then on.
//!
//! [`Series`] holds the labels as the bytes of remote write 1.0's repeated
//! `TimeSeries.labels` field (`Label{name = 1, value = 2}` messages, sorted by name), so a 1.0
//! request copies them with one `memcpy`, the WAL writes them once per series (its samples
//! are `(id, timestamp, value)`), and 2.0 or relabeling read the pairs back without
//! allocating. Labels were a `Vec<Label>` of `String`s before: encoding, WAL records and
//! relabeling then cost an allocation per label per sample (docs/BENCHMARKS.md).
//!
//! Ids are unique per process and, in practice, across restarts: they count up from the
//! process's start time in nanoseconds, and a WAL opened with older ids raises the counter
//! above them ([`reserve_ids_through`]). So a replayed WAL never mistakes an old series for a
//! new one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use promshard_model::histogram::Histogram;
use promshard_model::{Labels, LabelsBuilder};

use super::wire::{get_varint, put_nested, put_str, str_len};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id() -> u64 {
    if NEXT_ID.load(Ordering::Relaxed) == 0 {
        // First use in this process: start from the clock (see the module comment). One
        // caller wins; the others see its start.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            .max(1);
        let _ = NEXT_ID.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Makes every id handed out from now on greater than `id` (a WAL written by an earlier
/// process holds ids up to it).
pub(crate) fn reserve_ids_through(id: u64) {
    // Initialize from the clock first so the clock start is not lost to a smaller bump.
    let _ = next_id();
    NEXT_ID.fetch_max(id.saturating_add(1), Ordering::Relaxed);
}

/// One series: its id and its labels, encoded (see the module comment). Cheap to share
/// (`Arc<Series>`); immutable.
pub struct Series {
    id: u64,
    /// xxh3 of the encoded labels: picks the remote-write shard, so a series keeps its shard
    /// across restarts (ids change, labels do not) and its samples stay in order.
    hash: u64,
    encoded: Box<[u8]>,
}

/// Two series are equal when their label sets are (ids aside): what tests compare.
impl PartialEq for Series {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Series {
    /// A new series with a fresh id.
    pub fn new(labels: &Labels) -> Arc<Series> {
        Arc::new(Series::with_id(next_id(), labels))
    }

    /// The same label set under a given id (relabeled copies keep their source's id).
    pub fn with_id(id: u64, labels: &Labels) -> Series {
        let mut encoded = Vec::with_capacity(
            labels
                .iter()
                .map(|l| 6 + l.name.len() + l.value.len())
                .sum(),
        );
        for l in labels {
            put_label(&mut encoded, &l.name, &l.value);
        }
        Series::from_encoded_unchecked(id, encoded.into_boxed_slice())
    }

    /// A series read back from disk: the bytes must be well-formed label messages.
    pub(crate) fn from_encoded(id: u64, encoded: &[u8]) -> Result<Series, &'static str> {
        let mut it = LabelIter(encoded);
        while !it.0.is_empty() {
            it.next_checked()?;
        }
        Ok(Series::from_encoded_unchecked(id, encoded.into()))
    }

    fn from_encoded_unchecked(id: u64, encoded: Box<[u8]>) -> Series {
        Series {
            id,
            hash: xxhash_rust::xxh3::xxh3_64(&encoded),
            encoded,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The repeated `TimeSeries.labels` field of remote write 1.0, ready to copy.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> LabelIter<'_> {
        LabelIter(&self.encoded)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn labels(&self) -> Labels {
        let mut b = LabelsBuilder::new();
        for (n, v) in self.iter() {
            b.set(n, v);
        }
        b.into_labels()
    }

    /// Heap bytes this series holds (for memory accounting).
    pub(crate) fn encoded_len(&self) -> usize {
        self.encoded.len()
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `TimeSeries.labels = 1 { Label.name = 1, Label.value = 2 }`.
fn put_label(buf: &mut Vec<u8>, name: &str, value: &str) {
    put_nested(buf, 0x0a, str_len(name) + str_len(value));
    put_str(buf, 0x0a, name);
    put_str(buf, 0x12, value);
}

/// Iterates the label pairs of an encoded label set.
pub struct LabelIter<'a>(&'a [u8]);

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if b.len() < n {
        return Err("truncated label");
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

impl<'a> LabelIter<'a> {
    fn next_checked(&mut self) -> Result<(&'a str, &'a str), &'static str> {
        let mut b = self.0;
        if take(&mut b, 1)? != [0x0a] {
            return Err("not a label field");
        }
        let len = get_varint(&mut b)? as usize;
        let mut inner = take(&mut b, len)?;
        self.0 = b;
        let (mut name, mut value) = ("", "");
        while !inner.is_empty() {
            let key = take(&mut inner, 1)?[0];
            let n = get_varint(&mut inner)? as usize;
            let s = std::str::from_utf8(take(&mut inner, n)?).map_err(|_| "label is not UTF-8")?;
            match key {
                0x0a => name = s,
                0x12 => value = s,
                _ => return Err("unknown label field"),
            }
        }
        Ok((name, value))
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        // Only well-formed bytes become a `Series` (built here, or checked when read back).
        self.next_checked().ok()
    }
}

/// One sample as a scrape hands it to the WALs: by id. `series` is there only when the
/// series may be new to the WALs (the scrape side has not announced it under the current
/// [`Writer`](super::Writer) generation): the steady state touches no label set at all, and
/// on 100 cAdvisor targets touching each sample's `Series` (a refcount) was a cache miss that
/// cost 8 % of the worker's CPU.
#[derive(Clone, Debug)]
pub struct AppendSample {
    pub id: u64,
    pub timestamp_ms: i64,
    /// NaN for a native histogram (`histogram` set).
    pub value: f64,
    pub series: Option<Arc<Series>>,
    /// A native histogram sample instead of a float one.
    pub histogram: Option<Arc<Histogram>>,
}

impl AppendSample {
    /// A sample that carries its series (always correct; the scrape side omits it when it
    /// knows the WALs have it).
    pub fn of(series: &Arc<Series>, timestamp_ms: i64, value: f64) -> AppendSample {
        AppendSample {
            id: series.id(),
            timestamp_ms,
            value,
            series: Some(series.clone()),
            histogram: None,
        }
    }
}

impl From<&Sample> for AppendSample {
    fn from(s: &Sample) -> AppendSample {
        AppendSample {
            histogram: s.histogram.clone(),
            ..AppendSample::of(&s.series, s.timestamp_ms, s.value)
        }
    }
}

/// Reads each series' header ahead of a pass that clones or drops their `Arc`s. A refcount
/// update is a locked instruction: it waits for its cache line and for every load before it,
/// so on a batch whose series are not in cache (825k series are ~300 MB) the misses are taken
/// one at a time. Plain loads in a pass of their own overlap, and the refcount pass that
/// follows hits cache: taking a WAL record's refcounts cost 8 % of the worker's CPU before.
pub(crate) fn warm<'a>(series: impl Iterator<Item = &'a Series>) {
    let mut acc = 0u64;
    for s in series {
        acc ^= s.id;
    }
    std::hint::black_box(acc);
}

/// [`warm`] for an encoder: the headers and every cache line of the labels, which a request
/// copies. One series' lines overlap within its `memcpy`, but series came one miss after
/// another.
pub(crate) fn warm_labels<'a>(series: impl Iterator<Item = &'a Series>) {
    let mut acc = 0u8;
    for s in series {
        for b in s.encoded.iter().step_by(64) {
            acc ^= *b;
        }
    }
    std::hint::black_box(acc);
}

/// One sample on the read side of the write path (WAL reader, shards, encoders).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub series: Arc<Series>,
    pub timestamp_ms: i64,
    /// NaN for a native histogram (`histogram` set).
    pub value: f64,
    /// A native histogram sample instead of a float one: one pointer on every sample in
    /// flight (24 bytes to 32), nothing per series.
    pub histogram: Option<Arc<Histogram>>,
}

impl Sample {
    /// A sample of a new series with these labels (tests and benchmarks; the scrape path
    /// reuses its series).
    pub fn new(labels: &Labels, timestamp_ms: i64, value: f64) -> Sample {
        Sample {
            series: Series::new(labels),
            timestamp_ms,
            value,
            histogram: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_through_the_encoding() {
        let l = Labels::from_pairs([("__name__", "m"), ("a", "x\"y"), ("ü", "1")]);
        let s = Series::new(&l);
        assert_eq!(s.labels(), l);
        assert_eq!(s.get("a"), Some("x\"y"));
        assert_eq!(s.to_string(), l.to_string());
        let back = Series::from_encoded(7, s.encoded()).unwrap();
        assert_eq!(back, *s);
        assert_eq!(back.hash(), s.hash());
        assert!(Series::from_encoded(1, &s.encoded()[..3]).is_err());
    }

    #[test]
    fn ids_are_unique_and_reservable() {
        let a = Series::new(&Labels::empty()).id();
        let b = Series::new(&Labels::empty()).id();
        assert!(b > a);
        reserve_ids_through(b + 1000);
        assert!(Series::new(&Labels::empty()).id() > b + 1000);
    }
}
