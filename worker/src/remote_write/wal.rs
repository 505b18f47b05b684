//! The write-ahead log of one remote-write endpoint: what was scraped and not yet delivered,
//! on disk, bounded in size, replayed after a restart.
//!
//! Layout under `<data-dir>/wal/<endpoint name>/`: segment files `00000000000000000001.seg`,
//! `...02.seg`, ... and `progress` (the committed read position, `segment offset`). A segment
//! is a sequence of records, each `[u32 LE payload length][u32 LE crc32 of payload][payload]`;
//! a payload is one scrape's batch of samples (see [`encode_batch`]). Records never span
//! segments, so dropping a segment drops whole scrapes.
//!
//! Durability (the fsync policy): every append is one `write(2)` of whole records, so a killed
//! worker process (`kill -9`, OOM, panic) loses nothing that was appended: the data is in the
//! kernel's page cache. `fdatasync` runs every [`SYNC_EVERY`] on a blocking thread, for the
//! current segment and any finished since, so a machine crash or power loss loses at most the
//! last second of scrapes, and no scrape ever waits for the disk. A record torn by such a crash
//! fails its CRC and the segment is truncated there at start-up.
//! The progress file is written (tmp file + rename) whenever the committed position moves and
//! is not fsynced: losing it only rewinds the reader, which re-sends (at-least-once), never
//! loses.
//!
//! Bound: when the segments together exceed `max_bytes`, the oldest segments are deleted,
//! whether sent or not, and the samples in them that the reader had not read yet are counted
//! as dropped. The segment being written is never deleted, so a single segment (an eighth of
//! the bound) is the smallest backlog kept.
//!
//! There is one reader per WAL (the endpoint's queue manager). Its position lives here, under
//! the same lock as the segment list, so "the reader read it" and "the bound dropped it" can
//! never both happen to one record: a record is either handed to the senders or counted
//! dropped, exactly once.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use promshard_model::{Labels, LabelsBuilder};
use tokio::sync::Notify;

use super::{MetricMetadata, Sample};

/// How often appended data is fsynced at the latest.
pub(super) const SYNC_EVERY: Duration = Duration::from_secs(1);

const HEADER: usize = 8;
/// Largest payload accepted when reading: anything bigger is corruption.
const MAX_RECORD: u32 = 256 << 20;
/// Payload kinds; the first byte of every payload.
const KIND_SAMPLES: u8 = 1;
const KIND_METADATA: u8 = 2;
const SEGMENT_SUFFIX: &str = ".seg";
const PROGRESS: &str = "progress";
/// Room kept for the progress file inside the bound.
const PROGRESS_RESERVE: u64 = 64;

/// A position in the log: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    pub(super) segment: u64,
    pub(super) offset: u64,
}

#[derive(Debug)]
struct SegmentMeta {
    index: u64,
    /// Bytes of complete records.
    bytes: u64,
    samples: u64,
}

#[derive(Debug)]
struct ReaderState {
    pos: Position,
    /// Samples in the reader's segment before `pos.offset`.
    samples_read: u64,
}

struct State {
    segments: VecDeque<SegmentMeta>,
    /// Open for appending to the last segment.
    file: File,
    total_bytes: u64,
    reader: ReaderState,
    committed: Position,
    /// Appended since the last fsync.
    dirty: bool,
    /// Segments finished since the last fsync.
    finished: Vec<File>,
}

/// What one `append` or drop did, for the caller's metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AppendOutcome {
    /// Unread samples deleted to keep the log under its bound.
    pub(super) dropped: u64,
}

pub(super) struct Wal {
    dir: PathBuf,
    budget: u64,
    segment_target: u64,
    state: Mutex<State>,
    /// Woken on every append, for the reader.
    pub(super) appended: Notify,
}

/// One record as the reader sees it.
#[derive(Debug)]
pub(super) struct Record {
    /// Where the record ends: once every sample in it is delivered, the committed position
    /// may move here.
    pub(super) end: Position,
    pub(super) samples: Vec<Sample>,
    /// Families whose metadata was declared (or changed) at this point of the log.
    pub(super) metadata: Vec<MetricMetadata>,
}

/// A decoded payload: samples, or metadata.
type Decoded = (Vec<Sample>, Vec<MetricMetadata>);

/// The reader's open segment file.
#[derive(Default)]
pub(super) struct Cursor {
    file: Option<(u64, File)>,
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}{SEGMENT_SUFFIX}"))
}

impl Wal {
    /// Opens (or creates) the log in `dir`, checks every record, truncates a torn tail, and
    /// starts a fresh segment for appends. The reader resumes at the committed position.
    pub(super) fn open(dir: &Path, max_bytes: u64) -> io::Result<Arc<Wal>> {
        fs::create_dir_all(dir)?;
        let budget = max_bytes.saturating_sub(PROGRESS_RESERVE).max(4096);
        let segment_target = (budget / 8).clamp(1024, 64 << 20);
        let committed = read_progress(dir);
        let mut indexes: Vec<u64> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(SEGMENT_SUFFIX)?.parse().ok()
            })
            .collect();
        indexes.sort_unstable();
        let mut segments = VecDeque::new();
        let mut reader = None;
        for index in indexes {
            let path = segment_path(dir, index);
            if index < committed.segment {
                // Fully delivered before the restart.
                let _ = fs::remove_file(&path);
                continue;
            }
            let scan = scan_segment(
                &path,
                (index == committed.segment).then_some(committed.offset),
            )?;
            if scan.torn {
                tracing::warn!(segment = %path.display(), valid_bytes = scan.bytes, "WAL segment has a torn or corrupt record; truncating it there");
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.bytes)?;
            }
            if index == committed.segment {
                reader = Some(ReaderState {
                    pos: Position {
                        segment: index,
                        offset: committed.offset.min(scan.bytes),
                    },
                    samples_read: scan.samples_before,
                });
            }
            segments.push_back(SegmentMeta {
                index,
                bytes: scan.bytes,
                samples: scan.samples,
            });
        }
        let next = segments.back().map_or(1, |s| s.index + 1);
        let reader = reader.unwrap_or(ReaderState {
            pos: Position {
                segment: segments.front().map_or(next, |s| s.index),
                offset: 0,
            },
            samples_read: 0,
        });
        let file = create_segment(dir, next)?;
        segments.push_back(SegmentMeta {
            index: next,
            bytes: 0,
            samples: 0,
        });
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let committed = reader.pos;
        Ok(Arc::new(Wal {
            dir: dir.to_path_buf(),
            budget,
            segment_target,
            state: Mutex::new(State {
                segments,
                file,
                total_bytes,
                reader,
                committed,
                dirty: false,
                finished: Vec::new(),
            }),
            appended: Notify::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of records on disk.
    pub(super) fn bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// Bytes appended but not read yet (the backlog).
    pub(super) fn unread_bytes(&self) -> u64 {
        let st = self.lock();
        st.segments
            .iter()
            .filter(|s| s.index >= st.reader.pos.segment)
            .map(|s| {
                if s.index == st.reader.pos.segment {
                    s.bytes.saturating_sub(st.reader.pos.offset)
                } else {
                    s.bytes
                }
            })
            .sum()
    }

    /// Appends one encoded batch ([`encode_batch`]) of `samples` samples, then deletes the
    /// oldest segments while the log is over its bound.
    pub(super) fn append(&self, record: &[u8], samples: u64) -> io::Result<AppendOutcome> {
        let mut st = self.lock();
        let last = st.segments.back().map_or(0, |s| s.bytes);
        if last > 0 && last + record.len() as u64 > self.segment_target {
            self.roll(&mut st)?;
        }
        st.file.write_all(record)?;
        st.dirty = true;
        st.total_bytes += record.len() as u64;
        if let Some(seg) = st.segments.back_mut() {
            seg.bytes += record.len() as u64;
            seg.samples += samples;
        }
        let mut outcome = AppendOutcome::default();
        while st.total_bytes > self.budget && st.segments.len() > 1 {
            outcome.dropped += self.drop_oldest(&mut st);
        }
        drop(st);
        self.appended.notify_one();
        Ok(outcome)
    }

    /// Finishes the current segment (fsynced by the next [`Wal::sync`]) and starts the next.
    fn roll(&self, st: &mut State) -> io::Result<()> {
        let next = st.segments.back().map_or(1, |s| s.index + 1);
        let old = std::mem::replace(&mut st.file, create_segment(&self.dir, next)?);
        st.finished.push(old);
        st.segments.push_back(SegmentMeta {
            index: next,
            bytes: 0,
            samples: 0,
        });
        Ok(())
    }

    /// Deletes the oldest segment; returns how many of its samples the reader had not read.
    fn drop_oldest(&self, st: &mut State) -> u64 {
        let Some(seg) = st.segments.pop_front() else {
            return 0;
        };
        st.total_bytes -= seg.bytes;
        let _ = fs::remove_file(segment_path(&self.dir, seg.index));
        let unread = if seg.index < st.reader.pos.segment {
            // Read already: its samples are with the senders.
            0
        } else {
            let unread = seg.samples - st.reader.samples_read.min(seg.samples);
            let next = st.segments.front().map_or(seg.index + 1, |s| s.index);
            st.reader = ReaderState {
                pos: Position {
                    segment: next,
                    offset: 0,
                },
                samples_read: 0,
            };
            unread
        };
        if unread > 0 {
            tracing::warn!(
                wal = %self.dir.display(),
                segment = seg.index,
                samples = unread,
                "WAL over its size bound: dropped the oldest segment before it was sent"
            );
        }
        unread
    }

    /// fsyncs appended data (called every [`SYNC_EVERY`], off the async threads).
    pub(super) fn sync(&self) -> io::Result<()> {
        let (finished, current) = {
            let mut st = self.lock();
            let finished = std::mem::take(&mut st.finished);
            let current = if st.dirty {
                st.dirty = false;
                Some(st.file.try_clone()?)
            } else {
                None
            };
            (finished, current)
        };
        // Outside the lock: appends (scrapes) must not wait for the disk.
        for f in finished.iter().chain(&current) {
            f.sync_data()?;
        }
        Ok(())
    }

    /// The next unread record, or `None` when the reader has caught up.
    pub(super) fn read_next(&self, cursor: &mut Cursor) -> io::Result<Option<Record>> {
        loop {
            let (pos, avail) = {
                let mut st = self.lock();
                let pos = st.reader.pos;
                let Some(i) = st.segments.iter().position(|s| s.index == pos.segment) else {
                    // The segment is gone (cannot normally happen: drops move the reader).
                    let first = st.segments.front().map_or(pos.segment, |s| s.index);
                    st.reader = ReaderState {
                        pos: Position {
                            segment: first,
                            offset: 0,
                        },
                        samples_read: 0,
                    };
                    continue;
                };
                let seg = &st.segments[i];
                if pos.offset >= seg.bytes {
                    if i + 1 < st.segments.len() {
                        let next = st.segments[i + 1].index;
                        st.reader = ReaderState {
                            pos: Position {
                                segment: next,
                                offset: 0,
                            },
                            samples_read: 0,
                        };
                        continue;
                    }
                    return Ok(None);
                }
                (pos, seg.bytes)
            };
            let read = self.read_record(cursor, pos, avail);
            let mut st = self.lock();
            if st.reader.pos != pos {
                // The bound dropped this segment while we read: the record is counted as
                // dropped, so it must not be sent as well.
                continue;
            }
            match read {
                Ok((len, (samples, metadata))) => {
                    st.reader.pos.offset += len;
                    st.reader.samples_read += samples.len() as u64;
                    return Ok(Some(Record {
                        end: st.reader.pos,
                        samples,
                        metadata,
                    }));
                }
                Err(e) => {
                    // A corrupt record mid-log: the rest of the segment cannot be framed.
                    tracing::error!(wal = %self.dir.display(), segment = pos.segment, offset = pos.offset, error = %e, "unreadable WAL record; skipping the rest of the segment");
                    if let Some(seg) = st.segments.iter_mut().find(|s| s.index == pos.segment) {
                        st.reader.pos.offset = seg.bytes;
                    }
                    cursor.file = None;
                }
            }
        }
    }

    fn read_record(
        &self,
        cursor: &mut Cursor,
        pos: Position,
        avail: u64,
    ) -> io::Result<(u64, Decoded)> {
        if cursor.file.as_ref().is_none_or(|(i, _)| *i != pos.segment) {
            cursor.file = Some((
                pos.segment,
                File::open(segment_path(&self.dir, pos.segment))?,
            ));
        }
        let Some((_, file)) = cursor.file.as_mut() else {
            return Err(io::Error::other("no segment open"));
        };
        file.seek(SeekFrom::Start(pos.offset))?;
        let payload = read_frame(file, avail - pos.offset)?;
        let decoded = match payload.first() {
            Some(&KIND_METADATA) => (Vec::new(), decode_metadata(&payload)?),
            _ => (decode_batch(&payload)?, Vec::new()),
        };
        Ok(((HEADER + payload.len()) as u64, decoded))
    }

    /// Moves the reader back to the committed position: what was read but not delivered is
    /// read again (a queue manager restarted with new settings).
    pub(super) fn rewind(&self) {
        let mut st = self.lock();
        let committed = st.committed;
        if st.segments.iter().any(|s| s.index == committed.segment) {
            let samples_before = scan_segment(
                &segment_path(&self.dir, committed.segment),
                Some(committed.offset),
            )
            .map(|s| s.samples_before)
            .unwrap_or(0);
            st.reader = ReaderState {
                pos: committed,
                samples_read: samples_before,
            };
        } else if let Some(first) = st.segments.front() {
            let pos = Position {
                segment: first.index,
                offset: 0,
            };
            st.reader = ReaderState {
                pos,
                samples_read: 0,
            };
        }
    }

    /// Everything before `pos` is delivered: remember it, and delete segments wholly before it.
    pub(super) fn commit(&self, pos: Position) -> io::Result<()> {
        let mut st = self.lock();
        if pos <= st.committed {
            return Ok(());
        }
        st.committed = pos;
        while st.segments.len() > 1 && st.segments.front().is_some_and(|s| s.index < pos.segment) {
            if let Some(seg) = st.segments.pop_front() {
                st.total_bytes -= seg.bytes;
                let _ = fs::remove_file(segment_path(&self.dir, seg.index));
            }
        }
        drop(st);
        write_progress(&self.dir, pos)
    }
}

fn create_segment(dir: &Path, index: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(segment_path(dir, index))?;
    // The new name must survive a machine crash too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(file)
}

fn read_progress(dir: &Path) -> Position {
    let text = fs::read_to_string(dir.join(PROGRESS)).unwrap_or_default();
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Position { segment, offset },
        _ => Position::default(),
    }
}

fn write_progress(dir: &Path, pos: Position) -> io::Result<()> {
    let tmp = dir.join("progress.tmp");
    fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))?;
    fs::rename(tmp, dir.join(PROGRESS))
}

struct Scan {
    /// Bytes of valid records.
    bytes: u64,
    samples: u64,
    /// Samples in records that end at or before the given offset.
    samples_before: u64,
    torn: bool,
}

fn scan_segment(path: &Path, before: Option<u64>) -> io::Result<Scan> {
    let data = fs::read(path)?;
    let mut scan = Scan {
        bytes: 0,
        samples: 0,
        samples_before: 0,
        torn: false,
    };
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        let mut r = rest;
        let Ok(payload) = read_frame(&mut r, rest.len() as u64) else {
            scan.torn = true;
            break;
        };
        let Ok(n) = batch_len(&payload) else {
            scan.torn = true;
            break;
        };
        let len = (HEADER + payload.len()) as u64;
        scan.bytes += len;
        scan.samples += n;
        if before.is_some_and(|b| scan.bytes <= b) {
            scan.samples_before += n;
        }
        rest = &rest[len as usize..];
    }
    Ok(scan)
}

/// Reads one `[len][crc][payload]` frame of at most `avail` bytes and checks its CRC.
fn read_frame(r: &mut impl Read, avail: u64) -> io::Result<Vec<u8>> {
    let mut header = [0u8; HEADER];
    if avail < HEADER as u64 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "torn header"));
    }
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD || u64::from(len) > avail - HEADER as u64 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("record length {len} past the end of the segment"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "CRC mismatch"));
    }
    Ok(payload)
}

/// One framed record holding `samples`: `[len][crc][payload]`, payload
/// `[kind=1][u32 count]` then per sample `[i64 ts][u64 value bits][u16 labels]` and per label
/// `[u16 name len][name][u32 value len][value]`, little-endian.
pub(super) fn encode_batch(samples: &[Sample]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out.push(KIND_SAMPLES);
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        let n = s.labels.len().min(u16::MAX as usize);
        out.extend_from_slice(&(n as u16).to_le_bytes());
        for l in s.labels.iter().take(n) {
            let name = &l.name.as_bytes()[..l.name.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&(l.value.len() as u32).to_le_bytes());
            out.extend_from_slice(l.value.as_bytes());
        }
    }
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// One framed metadata record: payload `[kind=2][u32 count]` then per family
/// `[u16 len][family][u16 len][type][u32 len][help][u16 len][unit]`.
pub(super) fn encode_metadata(metadata: &[MetricMetadata]) -> Vec<u8> {
    fn short(out: &mut Vec<u8>, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(b.len() as u16).to_le_bytes());
        out.extend_from_slice(b);
    }
    let mut out = vec![0u8; HEADER];
    out.push(KIND_METADATA);
    out.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    for m in metadata {
        short(&mut out, &m.family);
        short(&mut out, &m.kind);
        out.extend_from_slice(&(m.help.len() as u32).to_le_bytes());
        out.extend_from_slice(m.help.as_bytes());
        short(&mut out, &m.unit);
    }
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_metadata(payload: &[u8]) -> io::Result<Vec<MetricMetadata>> {
    let mut b = Buf(payload
        .get(5..)
        .ok_or_else(|| corrupt("record ends early"))?);
    let count = u32::from_le_bytes(
        payload
            .get(1..5)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("record ends early"))?,
    );
    let mut out = Vec::new();
    for _ in 0..count {
        let n = u16::from_le_bytes(b.array()?) as usize;
        let family = b.string(n)?;
        let n = u16::from_le_bytes(b.array()?) as usize;
        let kind = b.string(n)?;
        let n = u32::from_le_bytes(b.array()?) as usize;
        let help = b.string(n)?;
        let n = u16::from_le_bytes(b.array()?) as usize;
        let unit = b.string(n)?;
        out.push(MetricMetadata {
            family,
            kind,
            help,
            unit,
        });
    }
    Ok(out)
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn batch_len(payload: &[u8]) -> io::Result<u64> {
    match payload {
        [KIND_SAMPLES, a, b, c, d, ..] => Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d]))),
        [KIND_METADATA, ..] => Ok(0),
        _ => Err(corrupt("unknown record kind")),
    }
}

struct Buf<'a>(&'a [u8]);

impl<'a> Buf<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("record ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn string(&mut self, n: usize) -> io::Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("label is not UTF-8"))
    }
}

fn decode_batch(payload: &[u8]) -> io::Result<Vec<Sample>> {
    let count = batch_len(payload)?;
    let mut b = Buf(&payload[5..]);
    let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let timestamp_ms = i64::from_le_bytes(b.array()?);
        let value = f64::from_bits(u64::from_le_bytes(b.array()?));
        let n = u16::from_le_bytes(b.array()?);
        let mut lb = LabelsBuilder::new();
        for _ in 0..n {
            let nl = u16::from_le_bytes(b.array()?) as usize;
            let name = b.string(nl)?;
            let vl = u32::from_le_bytes(b.array()?) as usize;
            let value = b.string(vl)?;
            lb.set(name, value);
        }
        let labels: Labels = lb.into_labels();
        out.push(Sample {
            labels,
            timestamp_ms,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, ts: i64) -> Sample {
        let mut lb = LabelsBuilder::new();
        lb.set("__name__", name);
        lb.set("job", "j");
        Sample {
            labels: lb.into_labels(),
            timestamp_ms: ts,
            value: ts as f64 / 2.0,
        }
    }

    fn batch(ts: i64, n: usize) -> Vec<Sample> {
        (0..n).map(|i| sample(&format!("m{i}"), ts)).collect()
    }

    fn read_all(wal: &Wal, cursor: &mut Cursor) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(r) = wal.read_next(cursor).unwrap() {
            out.push(r);
        }
        out
    }

    #[test]
    fn records_round_trip_and_replay_from_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        for ts in 1..=3 {
            let b = batch(ts, 2);
            wal.append(&encode_batch(&b), 2).unwrap();
        }
        let mut cursor = Cursor::default();
        let records = read_all(&wal, &mut cursor);
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].samples, batch(2, 2));
        // Only the first record is delivered before the "crash".
        wal.commit(records[0].end).unwrap();
        drop(wal);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let replay = read_all(&wal, &mut Cursor::default());
        let ts: Vec<i64> = replay.iter().map(|r| r.samples[0].timestamp_ms).collect();
        assert_eq!(ts, [2, 3]);
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        wal.append(&encode_batch(&batch(1, 3)), 3).unwrap();
        drop(wal);
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        let half = encode_batch(&batch(2, 3));
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let replay = read_all(&wal, &mut Cursor::default());
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].samples, batch(1, 3));
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            encode_batch(&batch(1, 3)).len() as u64
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut rec = encode_batch(&batch(1, 1));
        let last = rec.len() - 1;
        rec[last] ^= 1;
        let err = read_frame(&mut rec.as_slice(), rec.len() as u64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn over_the_bound_the_oldest_unread_samples_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let max = 16 * 1024;
        let wal = Wal::open(dir.path(), max).unwrap();
        let rec_len = encode_batch(&batch(0, 10)).len() as u64;
        let mut dropped = 0;
        let appended = 200;
        for ts in 0..appended {
            dropped += wal
                .append(&encode_batch(&batch(ts, 10)), 10)
                .unwrap()
                .dropped;
            let on_disk: u64 = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            assert!(on_disk <= max, "{on_disk} bytes on disk, bound {max}");
        }
        assert!(dropped > 0);
        assert_eq!(dropped % 10, 0, "whole records are dropped");
        // Finished segments (some deleted since) and the current one sync without error.
        wal.sync().unwrap();
        assert!(wal.lock().finished.is_empty());
        let replay = read_all(&wal, &mut Cursor::default());
        let kept: u64 = replay.iter().map(|r| r.samples.len() as u64).sum();
        assert_eq!(kept + dropped, appended as u64 * 10);
        // The newest survive, the oldest went, in order.
        let ts: Vec<i64> = replay.iter().map(|r| r.samples[0].timestamp_ms).collect();
        let first = appended - ts.len() as i64;
        assert_eq!(ts, (first..appended).collect::<Vec<_>>());
        assert!(
            wal.bytes() <= max && wal.bytes() >= max / 2,
            "{}",
            wal.bytes()
        );
        assert!(rec_len < max / 8);
    }

    #[test]
    fn a_drop_while_the_reader_is_mid_segment_counts_only_unread_samples() {
        let dir = tempfile::tempdir().unwrap();
        let max = 8 * 1024;
        let wal = Wal::open(dir.path(), max).unwrap();
        let mut cursor = Cursor::default();
        let mut dropped = 0;
        let mut read = 0u64;
        for ts in 0..100 {
            dropped += wal.append(&encode_batch(&batch(ts, 5)), 5).unwrap().dropped;
            // The reader keeps up with every third record only.
            if ts % 3 == 0
                && let Some(r) = wal.read_next(&mut cursor).unwrap()
            {
                read += r.samples.len() as u64;
            }
        }
        read += read_all(&wal, &mut cursor)
            .iter()
            .map(|r| r.samples.len() as u64)
            .sum::<u64>();
        assert!(dropped > 0);
        assert_eq!(read + dropped, 500);
    }

    #[test]
    fn metadata_records_round_trip_between_sample_records() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let meta = vec![MetricMetadata {
            family: "rq".into(),
            kind: "counter".into(),
            help: "Requests, with \"quotes\".".into(),
            unit: "requests".into(),
        }];
        wal.append(&encode_batch(&batch(1, 2)), 2).unwrap();
        wal.append(&encode_metadata(&meta), 0).unwrap();
        wal.append(&encode_batch(&batch(2, 2)), 2).unwrap();
        drop(wal);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let records = read_all(&wal, &mut Cursor::default());
        let shape: Vec<(usize, usize)> = records
            .iter()
            .map(|r| (r.samples.len(), r.metadata.len()))
            .collect();
        assert_eq!(shape, [(2, 0), (0, 1), (2, 0)]);
        assert_eq!(records[1].metadata, meta);
    }

    #[test]
    fn rewind_rereads_what_was_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        for ts in 0..4 {
            wal.append(&encode_batch(&batch(ts, 1)), 1).unwrap();
        }
        let mut cursor = Cursor::default();
        let first = read_all(&wal, &mut cursor);
        wal.commit(first[1].end).unwrap();
        wal.rewind();
        let again = read_all(&wal, &mut cursor);
        let ts: Vec<i64> = again.iter().map(|r| r.samples[0].timestamp_ms).collect();
        assert_eq!(ts, [2, 3]);
    }
}
