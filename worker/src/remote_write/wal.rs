//! The write-ahead log of one remote-write endpoint: what was scraped and not yet delivered,
//! on disk, bounded in size, replayed after a restart.
//!
//! Layout under `<data-dir>/wal/<endpoint name>/`: segment files `00000000000000000001.seg`,
//! `...02.seg`, ..., `series` and `progress` (the committed read position, `segment offset`).
//! Every file is a sequence of records, each
//! `[u32 LE payload length][u32 LE crc32 of payload][payload]`. A segment's payload is one
//! scrape's batch of samples as `(series id, timestamp, value)` (see [`encode_samples`]) or
//! metadata; records never span segments, so dropping a segment drops whole scrapes.
//!
//! Series: the `series` file maps ids to label sets; a series is written there the first time
//! this WAL sees it, before the first sample record that refers to it, and kept in memory
//! (`State::series`) for the reader. Labels are ~95 % of a cAdvisor sample's bytes: writing
//! them with every sample made the WAL write ~60 MB/s at 100 targets and fill its bound in
//! 20 s (docs/BENCHMARKS.md). A series the scrape side retired ([`Wal::forget`]) is dropped
//! from memory once every segment that can hold its samples is deleted (delivered, or dropped
//! by the bound), and the `series` file is rewritten with the live series only when it has
//! grown past twice their size. The `series` file counts towards the bound but is never cut
//! by it: samples without their labels would be useless.
//!
//! Durability (the fsync policy): every append is one `write(2)` of whole records, so a killed
//! worker process (`kill -9`, OOM, panic) loses nothing that was appended: the data is in the
//! kernel's page cache. `fdatasync` runs every [`SYNC_EVERY`] on a blocking thread, for the
//! current segment and any finished since, so a machine crash or power loss loses at most the
//! last second of scrapes, and no scrape ever waits for the disk. A record torn by such a crash
//! fails its CRC and the segment is truncated there at start-up.
//! The progress file ([`progress`](super::progress)) is written (tmp file + rename) whenever the
//! committed position moves and is not fsynced: losing it only rewinds the reader, which re-sends
//! (at-least-once), never loses.
//!
//! Held records: a sample record carries its target's tag and scrape time, and the delivery gate
//! (`crate::gate`) may hold it back (a fenced handoff, a lapsed lease). The reader goes past it and
//! the queue manager registers it as a *hole* ([`Wal::hold`]): the committed position moves on,
//! the hole is listed in the progress file, and its segment is kept until the record is sent
//! ([`Wal::read_hole`], [`Wal::unhold`]) or dropped. The bound may delete a segment with holes like
//! any other; their samples are counted as dropped then.
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

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use promshard_model::LabelsBuilder;
use tokio::sync::Notify;

pub(super) use super::progress::Position;
use super::progress::{self, Hole};
use super::series::{AppendSample, Series, reserve_ids_through, warm};
use super::series_table::{IdMap, SeriesTable};
use super::wire::put_varint;
use super::{MetricMetadata, Sample};

/// How often appended data is fsynced at the latest.
pub(super) const SYNC_EVERY: Duration = Duration::from_secs(1);

const HEADER: usize = 8;
/// Largest payload accepted when reading: anything bigger is corruption.
const MAX_RECORD: u32 = 256 << 20;
/// Payload kinds; the first byte of every payload.
/// Samples with their full label sets (written before series ids; still read, so a WAL
/// written by an older worker is delivered after an upgrade).
const KIND_SAMPLES: u8 = 1;
const KIND_METADATA: u8 = 2;
/// Samples as `(series id, timestamp, value)`.
const KIND_REFS: u8 = 3;
/// Series definitions, in the `series` file.
const KIND_SERIES: u8 = 4;
/// Samples as in [`KIND_REFS`], then the target's tag and the scrape time (for the gate).
const KIND_TAGGED: u8 = 5;
/// As [`KIND_TAGGED`], each sample followed by `[u8 0]`, or `[u8 1][varint len][histogram]`
/// for a native histogram (the remote-write `Histogram` message without its timestamp).
/// Written only for a scrape with native histograms: float-only scrapes stay kind 5.
const KIND_TAGGED_HISTOGRAMS: u8 = 6;
const SEGMENT_SUFFIX: &str = ".seg";
const SERIES_FILE: &str = "series";
/// The `series` file is rewritten once it is this much larger than twice its live series.
const COMPACT_SLACK: u64 = 16 << 20;

/// Room kept for the progress file inside the bound.
const PROGRESS_RESERVE: u64 = 64;

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
    /// Records the reader went past that the gate holds back, by start position; `true` while
    /// one is being sent (read back by [`Wal::read_hole`], not yet [`Wal::unhold`]).
    holes: BTreeMap<Position, (Hole, bool)>,
    /// Appended since the last fsync.
    dirty: bool,
    /// Segments finished since the last fsync.
    finished: Vec<File>,
    /// Every series this WAL has written and not yet let go of.
    series: SeriesTable,
    /// The `series` file, open for appending.
    series_file: File,
    series_file_bytes: u64,
    /// What `series` would take in a freshly written `series` file.
    series_live_bytes: u64,
    series_dirty: bool,
    /// Retired series: the newest segment that can hold their samples, and their ids.
    dead: VecDeque<(u64, Vec<u64>)>,
    /// The `series` file is due for a rewrite (done by the next [`Wal::sync`]).
    compact: bool,
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
    /// Where the record starts (a hole's key).
    pub(super) start: Position,
    /// Where the record ends: once every sample in it is delivered, the committed position
    /// may move here.
    pub(super) end: Position,
    /// The target it was scraped from ([`crate::gate::NO_TAG`] for metadata and old records).
    pub(super) tag: u64,
    /// Its scrape time (the first sample's time for untagged records).
    pub(super) at_ms: i64,
    pub(super) samples: Vec<Sample>,
    /// Families whose metadata was declared (or changed) at this point of the log.
    pub(super) metadata: Vec<MetricMetadata>,
    /// Samples whose series id had no labels (a lost or damaged `series` file): dropped.
    pub(super) unknown: u64,
}

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
        let (committed, holes) = progress::read(dir);
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
            let holds = holes.keys().any(|p| p.segment == index);
            if index < committed.segment && !holds {
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
        let loaded = load_series(&dir.join(SERIES_FILE))?;
        if let Some(&max) = loaded.series.keys().max() {
            reserve_ids_through(max);
        }
        let series_live_bytes = loaded.series.values().map(|s| series_entry_len(s)).sum();
        // Nothing in this process will write these series again: they live as long as the
        // segments written before it.
        let dead = VecDeque::from([(next - 1, loaded.series.keys().copied().collect())]);
        let mut table = SeriesTable::default();
        for s in loaded.series.into_values() {
            table.insert_sparse(s);
        }
        let wal = Wal {
            dir: dir.to_path_buf(),
            budget,
            segment_target,
            state: Mutex::new(State {
                segments,
                file,
                total_bytes,
                reader,
                committed,
                holes: BTreeMap::new(),
                dirty: false,
                finished: Vec::new(),
                series: table,
                series_file: loaded.file,
                series_file_bytes: loaded.bytes,
                series_live_bytes,
                series_dirty: false,
                dead,
                compact: false,
            }),
            appended: Notify::new(),
        };
        {
            let mut st = wal.lock();
            // Holes whose segment is gone (deleted by hand, or the bound before the progress
            // file caught up) cannot be sent: forget them.
            for (pos, hole) in holes {
                if st.segments.iter().any(|s| s.index == pos.segment) {
                    st.holes.insert(pos, (hole, false));
                } else {
                    tracing::warn!(wal = %dir.display(), segment = pos.segment, samples = hole.samples, "a held WAL record's segment is missing; its samples are lost");
                }
            }
            wal.gc_series(&mut st);
            if st.compact {
                wal.compact_series(&mut st)?;
            }
        }
        Ok(Arc::new(wal))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of records on disk (segments and the `series` file).
    pub(super) fn bytes(&self) -> u64 {
        let st = self.lock();
        st.total_bytes + st.series_file_bytes
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

    /// Appends one batch of samples: the series this WAL has not seen yet to the `series`
    /// file, then `record` (the batch encoded by [`encode_samples`]). Only samples that
    /// carry their series can be new; the others must be known already.
    pub(super) fn append_samples(
        &self,
        samples: &[AppendSample],
        record: &[u8],
    ) -> io::Result<AppendOutcome> {
        let mut st = self.lock();
        let mut new: Vec<&Arc<Series>> = samples
            .iter()
            .filter_map(|s| s.series.as_ref())
            .filter(|s| !st.series.contains_key(s.id()))
            .collect();
        if !new.is_empty() {
            new.sort_unstable_by_key(|s| s.id());
            new.dedup_by_key(|s| s.id());
            let rec = encode_series(&new);
            let before = st.series_file_bytes;
            write_record(&mut st.series_file, &rec, before)?;
            st.series_file_bytes += rec.len() as u64;
            st.series_dirty = true;
            for s in new {
                st.series_live_bytes += series_entry_len(s);
                st.series.insert(s.clone());
            }
        }
        self.append_locked(st, record, samples.len() as u64)
    }

    /// Appends one framed record of `samples` samples (or metadata, 0), then deletes the
    /// oldest segments while the log is over its bound.
    pub(super) fn append(&self, record: &[u8], samples: u64) -> io::Result<AppendOutcome> {
        self.append_locked(self.lock(), record, samples)
    }

    fn append_locked(
        &self,
        mut st: MutexGuard<'_, State>,
        record: &[u8],
        samples: u64,
    ) -> io::Result<AppendOutcome> {
        let last = st.segments.back().map_or(0, |s| s.bytes);
        if last > 0 && last + record.len() as u64 > self.segment_target {
            self.roll(&mut st)?;
        }
        write_record(&mut st.file, record, last)?;
        st.dirty = true;
        st.total_bytes += record.len() as u64;
        if let Some(seg) = st.segments.back_mut() {
            seg.bytes += record.len() as u64;
            seg.samples += samples;
        }
        let mut outcome = AppendOutcome::default();
        if st.total_bytes + st.series_file_bytes > self.budget
            && st.series_file_bytes > 2 * st.series_live_bytes + self.budget / 16
        {
            // Labels of retired series are taking room unsent samples need: rewrite the
            // series file before dropping any of them.
            if let Err(e) = self.compact_series(&mut st) {
                tracing::warn!(wal = %self.dir.display(), error = %e, "cannot rewrite the WAL's series file");
            }
        }
        while st.total_bytes + st.series_file_bytes > self.budget && st.segments.len() > 1 {
            outcome.dropped += self.drop_oldest(&mut st);
        }
        if outcome.dropped > 0 {
            self.gc_series(&mut st);
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
        // Held records in it are lost with it; one being sent is in the senders' hands already.
        let held: Vec<Position> = st
            .holes
            .keys()
            .filter(|p| p.segment == seg.index)
            .copied()
            .collect();
        let mut lost_held = 0;
        for p in held {
            if let Some((hole, sending)) = st.holes.remove(&p)
                && !sending
            {
                lost_held += hole.samples;
            }
        }
        let unread = lost_held
            + if seg.index < st.reader.pos.segment {
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

    /// The scrape side will not write these series again: let go of them once the
    /// segments that can hold their samples (up to the current one) are deleted.
    pub(super) fn forget(&self, ids: &[u64]) {
        let mut st = self.lock();
        let current = st.segments.back().map_or(0, |s| s.index);
        match st.dead.back_mut() {
            Some((seg, dead)) if *seg == current => dead.extend_from_slice(ids),
            _ => st.dead.push_back((current, ids.to_vec())),
        }
    }

    /// Drops retired series whose segments are all gone; marks the `series` file for a
    /// rewrite when most of it is dead.
    fn gc_series(&self, st: &mut State) {
        let oldest = st.segments.front().map_or(u64::MAX, |s| s.index);
        while st.dead.front().is_some_and(|(seg, _)| *seg < oldest) {
            let Some((_, ids)) = st.dead.pop_front() else {
                break;
            };
            for id in ids {
                if let Some(s) = st.series.remove(id) {
                    st.series_live_bytes -= series_entry_len(&s);
                }
            }
        }
        if st.series_file_bytes > 2 * st.series_live_bytes + COMPACT_SLACK {
            st.compact = true;
        }
    }

    /// Rewrites the `series` file with the live series only (tmp file, fsync, rename).
    /// Under the lock: appends wait for it; it runs only after heavy churn. On failure the
    /// old file stays in use and the tmp file is removed.
    fn compact_series(&self, st: &mut State) -> io::Result<()> {
        let tmp = self.dir.join("series.tmp");
        let written = (|| {
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&tmp)?;
            let mut out = io::BufWriter::new(&file);
            let mut bytes = 0u64;
            let all: Vec<&Arc<Series>> = st.series.values().collect();
            for chunk in all.chunks(4096) {
                let rec = encode_series(chunk);
                out.write_all(&rec)?;
                bytes += rec.len() as u64;
            }
            out.flush()?;
            drop(out);
            file.sync_data()?;
            fs::rename(&tmp, self.dir.join(SERIES_FILE))?;
            Ok::<_, io::Error>((file, bytes))
        })();
        // The rewrite is only due again after more churn, success or not.
        st.compact = false;
        let (file, bytes) = written.inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        tracing::info!(wal = %self.dir.display(), series = st.series.len(), from_bytes = st.series_file_bytes, to_bytes = bytes, "rewrote the WAL's series file without retired series");
        // The handle written through is the renamed file; its cursor is at the end.
        st.series_file = file;
        st.series_file_bytes = bytes;
        st.series_dirty = false;
        Ok(())
    }

    /// fsyncs appended data (called every [`SYNC_EVERY`], off the async threads), and
    /// rewrites the `series` file when it is due.
    pub(super) fn sync(&self) -> io::Result<()> {
        let (finished, current, series) = {
            let mut st = self.lock();
            if st.compact
                && let Err(e) = self.compact_series(&mut st)
            {
                tracing::warn!(wal = %self.dir.display(), error = %e, "cannot rewrite the WAL's series file; keeping the old one");
            }
            let finished = std::mem::take(&mut st.finished);
            let current = if st.dirty {
                st.dirty = false;
                Some(st.file.try_clone()?)
            } else {
                None
            };
            let series = if st.series_dirty {
                st.series_dirty = false;
                Some(st.series_file.try_clone()?)
            } else {
                None
            };
            (finished, current, series)
        };
        // Outside the lock: appends (scrapes) must not wait for the disk. Labels first: a
        // synced sample record must never refer to labels that were not.
        for f in series.iter().chain(&finished).chain(&current) {
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
            match read.and_then(|(len, payload)| {
                decode_payload(&payload, &st.series).map(|decoded| (len, decoded))
            }) {
                Ok((len, decoded)) => {
                    st.reader.pos.offset += len;
                    st.reader.samples_read += decoded.samples.len() as u64 + decoded.unknown;
                    return Ok(Some(decoded.into_record(pos, st.reader.pos)));
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

    /// Reads the framed record at `pos`: its length and payload.
    fn read_record(
        &self,
        cursor: &mut Cursor,
        pos: Position,
        avail: u64,
    ) -> io::Result<(u64, Vec<u8>)> {
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
        Ok(((HEADER + payload.len()) as u64, payload))
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

    /// Everything before `pos` is delivered, or held as a hole: remember it, and delete
    /// segments wholly before it that hold no hole.
    pub(super) fn commit(&self, pos: Position) -> io::Result<()> {
        let mut st = self.lock();
        if pos <= st.committed {
            return Ok(());
        }
        st.committed = pos;
        self.persist(st)
    }

    /// Deletes the segments nothing needs any more, then writes the progress file.
    fn persist(&self, mut st: MutexGuard<'_, State>) -> io::Result<()> {
        let keep_from = st.holes.keys().next().map_or(st.committed.segment, |p| {
            p.segment.min(st.committed.segment)
        });
        while st.segments.len() > 1 && st.segments.front().is_some_and(|s| s.index < keep_from) {
            if let Some(seg) = st.segments.pop_front() {
                st.total_bytes -= seg.bytes;
                let _ = fs::remove_file(segment_path(&self.dir, seg.index));
            }
        }
        self.gc_series(&mut st);
        let holes: Vec<(Position, Hole)> = st
            .holes
            .iter()
            .filter(|(p, _)| **p < st.committed)
            .map(|(p, (h, _))| (*p, *h))
            .collect();
        let committed = st.committed;
        drop(st);
        progress::write(&self.dir, committed, holes.iter().map(|(p, h)| (p, h)))
    }

    /// The reader went past the record at `start` without sending it: keep it until
    /// [`Wal::unhold`] (idempotent).
    pub(super) fn hold(&self, start: Position, hole: Hole) {
        self.lock().holes.entry(start).or_insert((hole, false));
    }

    /// The holes, in log order (a queue manager starting on this WAL takes them over).
    pub(super) fn holes(&self) -> Vec<(Position, Hole)> {
        self.lock()
            .holes
            .iter()
            .map(|(p, (h, _))| (*p, *h))
            .collect()
    }

    /// Reads a held record back to send it; `None` when it is gone (the bound dropped its
    /// segment, and counted it). It stays a hole, marked as being sent, until [`Wal::unhold`].
    pub(super) fn read_hole(&self, start: Position) -> io::Result<Option<Record>> {
        let avail = {
            let st = self.lock();
            if !st.holes.contains_key(&start) {
                return Ok(None);
            }
            let Some(seg) = st.segments.iter().find(|s| s.index == start.segment) else {
                return Ok(None);
            };
            seg.bytes
        };
        let (len, payload) = self.read_record(&mut Cursor::default(), start, avail)?;
        let mut st = self.lock();
        let Some((_, sending)) = st.holes.get_mut(&start) else {
            return Ok(None);
        };
        *sending = true;
        let decoded = decode_payload(&payload, &st.series)?;
        let end = Position {
            segment: start.segment,
            offset: start.offset + len,
        };
        Ok(Some(decoded.into_record(start, end)))
    }

    /// The held record at `start` was sent or dropped: its segment may go.
    pub(super) fn unhold(&self, start: Position) -> io::Result<()> {
        let mut st = self.lock();
        if st.holes.remove(&start).is_none() {
            return Ok(());
        }
        self.persist(st)
    }

    /// Whether everything this WAL got before `end` of the target `tag` is done: committed,
    /// and none of it held.
    pub(super) fn delivered_through(&self, end: Position, tag: u64) -> bool {
        let st = self.lock();
        st.committed >= end && !st.holes.range(..end).any(|(_, (h, _))| h.tag == tag)
    }

    /// Where the next record will start: everything appended so far is before it.
    pub(super) fn end_position(&self) -> Position {
        let st = self.lock();
        st.segments
            .back()
            .map_or(Position::default(), |s| Position {
                segment: s.index,
                offset: s.bytes,
            })
    }
}

/// Writes one whole record at `len_before`; a failed write (disk full) is cut off again, so
/// the next record does not follow a torn one (start-up would truncate there and lose it).
fn write_record(file: &mut File, record: &[u8], len_before: u64) -> io::Result<()> {
    file.write_all(record).inspect_err(|_| {
        let _ = file.set_len(len_before);
        let _ = file.seek(SeekFrom::Start(len_before));
    })
}

/// The `series` file's bytes for one series (without its record's share of framing).
fn series_entry_len(s: &Series) -> u64 {
    12 + s.encoded_len() as u64
}

struct LoadedSeries {
    series: IdMap<Arc<Series>>,
    file: File,
    bytes: u64,
}

/// Reads the `series` file (a torn tail is truncated) and opens it for appending.
fn load_series(path: &Path) -> io::Result<LoadedSeries> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut series = IdMap::default();
    let mut rest = data.as_slice();
    let mut valid = 0u64;
    while !rest.is_empty() {
        let mut r = rest;
        let decoded = read_frame(&mut r, rest.len() as u64)
            .and_then(|payload| decode_series(&payload).map(|s| (payload.len(), s)));
        let Ok((len, list)) = decoded else {
            tracing::warn!(file = %path.display(), valid_bytes = valid, "WAL series file has a torn or corrupt record; truncating it there");
            break;
        };
        for s in list {
            series.insert(s.id(), Arc::new(s));
        }
        valid += (HEADER + len) as u64;
        rest = &rest[HEADER + len..];
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    if valid < data.len() as u64 {
        file.set_len(valid)?;
    }
    Ok(LoadedSeries {
        series,
        file,
        bytes: valid,
    })
}

/// Fills in a record's `[len][crc]` header (`out` starts with [`HEADER`] placeholder bytes).
fn finish_frame(out: &mut [u8]) {
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// One framed `series` record: payload `[kind=4][u32 count]` then per series
/// `[u64 id][u32 len][encoded labels]`, little-endian.
fn encode_series(series: &[&Arc<Series>]) -> Vec<u8> {
    let size: usize = series.iter().map(|s| 12 + s.encoded_len()).sum();
    let mut out = Vec::with_capacity(HEADER + 5 + size);
    out.resize(HEADER, 0);
    out.push(KIND_SERIES);
    out.extend_from_slice(&(series.len() as u32).to_le_bytes());
    for s in series {
        out.extend_from_slice(&s.id().to_le_bytes());
        out.extend_from_slice(&(s.encoded_len() as u32).to_le_bytes());
        out.extend_from_slice(s.encoded());
    }
    finish_frame(&mut out);
    out
}

fn decode_series(payload: &[u8]) -> io::Result<Vec<Series>> {
    let [KIND_SERIES, a, b, c, d, rest @ ..] = payload else {
        return Err(corrupt("not a series record"));
    };
    let count = u32::from_le_bytes([*a, *b, *c, *d]);
    let mut buf = Buf(rest);
    let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let id = u64::from_le_bytes(buf.array()?);
        let n = u32::from_le_bytes(buf.array()?) as usize;
        out.push(Series::from_encoded(id, buf.take(n)?).map_err(corrupt)?);
    }
    Ok(out)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// One framed record of one scrape's samples by series id: payload
/// `[kind=5][u32 count][i64 base ts][u64 tag][i64 scrape ts]` then per sample
/// `[varint zigzag(id - previous id)][varint zigzag(ts - base ts)][u64 value bits]`,
/// little-endian: ~11 bytes a sample where labels took ~370. (Kind 3, written before tags, has
/// no tag and scrape time.)
pub(super) fn encode_samples(samples: &[AppendSample], tag: u64, at_ms: i64) -> Vec<u8> {
    let base = samples.first().map_or(0, |s| s.timestamp_ms);
    let histograms = samples.iter().any(|s| s.histogram.is_some());
    let mut out = Vec::with_capacity(HEADER + 29 + samples.len() * 12);
    out.resize(HEADER, 0);
    out.push(if histograms {
        KIND_TAGGED_HISTOGRAMS
    } else {
        KIND_TAGGED
    });
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&at_ms.to_le_bytes());
    let mut prev = 0u64;
    for s in samples {
        let id = s.id;
        put_varint(&mut out, zigzag(id.wrapping_sub(prev) as i64));
        prev = id;
        put_varint(&mut out, zigzag(s.timestamp_ms.wrapping_sub(base)));
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        if histograms {
            match &s.histogram {
                None => out.push(0),
                Some(h) => {
                    out.push(1);
                    let b = super::histogram::encode(h, 0);
                    put_varint(&mut out, b.len() as u64);
                    out.extend_from_slice(&b);
                }
            }
        }
    }
    finish_frame(&mut out);
    out
}

/// A decoded segment payload.
struct Decoded {
    samples: Vec<Sample>,
    metadata: Vec<MetricMetadata>,
    unknown: u64,
    tag: u64,
    at_ms: i64,
}

impl Decoded {
    fn into_record(self, start: Position, end: Position) -> Record {
        Record {
            start,
            end,
            tag: self.tag,
            at_ms: self.at_ms,
            samples: self.samples,
            metadata: self.metadata,
            unknown: self.unknown,
        }
    }
}

fn decode_payload(payload: &[u8], series: &SeriesTable) -> io::Result<Decoded> {
    let mut d = Decoded {
        samples: Vec::new(),
        metadata: Vec::new(),
        unknown: 0,
        tag: crate::gate::NO_TAG,
        at_ms: 0,
    };
    match payload.first() {
        Some(&KIND_METADATA) => d.metadata = decode_metadata(payload)?,
        Some(&KIND_REFS | &KIND_TAGGED | &KIND_TAGGED_HISTOGRAMS) => {
            (d.samples, d.unknown, d.tag, d.at_ms) = decode_refs(payload, series)?
        }
        _ => {
            d.samples = decode_batch(payload)?;
            d.at_ms = d.samples.first().map_or(0, |s| s.timestamp_ms);
        }
    }
    Ok(d)
}

/// Samples, unknown ids, tag and scrape time of a kind 3 or 5 record.
fn decode_refs(payload: &[u8], series: &SeriesTable) -> io::Result<(Vec<Sample>, u64, u64, i64)> {
    let count = batch_len(payload)?;
    let mut b = Buf(payload
        .get(5..)
        .ok_or_else(|| corrupt("record ends early"))?);
    let base = i64::from_le_bytes(b.array()?);
    let (tag, at_ms) = if payload[0] != KIND_REFS {
        (
            u64::from_le_bytes(b.array()?),
            i64::from_le_bytes(b.array()?),
        )
    } else {
        (crate::gate::NO_TAG, base)
    };
    let mut found = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut unknown = 0;
    let mut prev = 0u64;
    for _ in 0..count {
        let id = prev.wrapping_add(unzigzag(b.varint()?) as u64);
        prev = id;
        let timestamp_ms = base.wrapping_add(unzigzag(b.varint()?));
        let value = f64::from_bits(u64::from_le_bytes(b.array()?));
        let histogram = if payload[0] == KIND_TAGGED_HISTOGRAMS && b.take(1)?[0] == 1 {
            let n = b.varint()? as usize;
            let h = super::histogram::decode(b.take(n)?)
                .map_err(|e| corrupt(&format!("histogram: {e}")))?;
            Some(Arc::new(h))
        } else {
            None
        };
        match series.get(id) {
            Some(s) => found.push((s, timestamp_ms, value, histogram)),
            None => unknown += 1,
        }
    }
    if unknown > 0 {
        tracing::error!(
            samples = unknown,
            "WAL samples refer to series whose labels are missing (series file lost or damaged); dropping them"
        );
    }
    // All ids first, then the series' headers in a loop of their own, then the refcounts.
    warm(found.iter().map(|(s, _, _, _)| &***s));
    let out = found
        .into_iter()
        .map(|(s, timestamp_ms, value, histogram)| Sample {
            series: s.clone(),
            timestamp_ms,
            value,
            histogram,
        })
        .collect();
    Ok((out, unknown, tag, at_ms))
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

/// The record format of workers before series ids (kind 1), kept to test that such a WAL is
/// still delivered: `[len][crc][payload]`, payload `[kind=1][u32 count]` then per sample
/// `[i64 ts][u64 value bits][u16 labels]` and per label
/// `[u16 name len][name][u32 value len][value]`, little-endian.
#[cfg(test)]
fn encode_batch(samples: &[Sample]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out.push(KIND_SAMPLES);
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        let labels: Vec<(&str, &str)> = s.series.iter().collect();
        out.extend_from_slice(&(labels.len() as u16).to_le_bytes());
        for (name, value) in labels {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        }
    }
    finish_frame(&mut out);
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
    finish_frame(&mut out);
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
        [
            KIND_SAMPLES | KIND_REFS | KIND_TAGGED | KIND_TAGGED_HISTOGRAMS,
            a,
            b,
            c,
            d,
            ..,
        ] => Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d]))),
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
    fn varint(&mut self) -> io::Result<u64> {
        super::wire::get_varint(&mut self.0).map_err(corrupt)
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
        out.push(Sample::new(&lb.into_labels(), timestamp_ms, value));
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
        Sample::new(&lb.into_labels(), ts, ts as f64 / 2.0)
    }

    /// `n` samples of new series (equal to other batches' by labels, not by id).
    fn batch(ts: i64, n: usize) -> Vec<Sample> {
        (0..n).map(|i| sample(&format!("m{i}"), ts)).collect()
    }

    fn put(wal: &Wal, samples: &[Sample]) -> AppendOutcome {
        let samples: Vec<AppendSample> = samples.iter().map(AppendSample::from).collect();
        put_tagged(wal, &samples, 1)
    }

    /// Appends a scrape of the target `tag`, at its first sample's time.
    fn put_tagged(wal: &Wal, samples: &[AppendSample], tag: u64) -> AppendOutcome {
        let at = samples.first().map_or(0, |s| s.timestamp_ms);
        wal.append_samples(samples, &encode_samples(samples, tag, at))
            .unwrap()
    }

    fn encode(samples: &[Sample]) -> Vec<u8> {
        let samples: Vec<AppendSample> = samples.iter().map(AppendSample::from).collect();
        let at = samples.first().map_or(0, |s| s.timestamp_ms);
        encode_samples(&samples, 1, at)
    }

    /// The same series at a new timestamp.
    fn again(samples: &[Sample], ts: i64) -> Vec<Sample> {
        samples
            .iter()
            .map(|s| Sample {
                timestamp_ms: ts,
                ..s.clone()
            })
            .collect()
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).map_or(0, |m| m.len())
    }

    fn read_all(wal: &Wal, cursor: &mut Cursor) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(r) = wal.read_next(cursor).unwrap() {
            out.push(r);
        }
        out
    }

    /// A held record as the queue manager registers it.
    fn hole_of(r: &Record) -> Hole {
        Hole {
            tag: r.tag,
            at_ms: r.at_ms,
            samples: r.samples.len() as u64,
        }
    }

    #[test]
    fn a_records_tag_and_scrape_time_come_back_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let s: Vec<AppendSample> = batch(5, 2).iter().map(AppendSample::from).collect();
        wal.append_samples(&s, &encode_samples(&s, 77, 4_999))
            .unwrap();
        let r = read_all(&wal, &mut Cursor::default());
        assert_eq!((r[0].tag, r[0].at_ms), (77, 4_999));
        assert_eq!(
            r[0].start,
            Position {
                segment: 1,
                offset: 0
            }
        );
    }

    #[test]
    fn a_held_record_survives_commits_past_it_and_a_restart_then_goes_when_unheld() {
        let dir = tempfile::tempdir().unwrap();
        // Segments of 8 KiB and records of ~10 KiB: one record a segment, so what is kept
        // and deleted is visible.
        let max = 64 * 1024;
        let wal = Wal::open(dir.path(), max).unwrap();
        let series = batch(0, 800);
        let scrape = |ts: i64| -> Vec<AppendSample> {
            again(&series, ts).iter().map(AppendSample::from).collect()
        };
        put_tagged(&wal, &scrape(1), 9);
        put_tagged(&wal, &scrape(2), 5);
        put_tagged(&wal, &scrape(3), 5);
        let mut cursor = Cursor::default();
        let r = read_all(&wal, &mut cursor);
        assert_eq!(r.len(), 3);
        assert!(r[0].start.segment < r[2].start.segment, "{r:?}");
        // Tag 9's record is held; the others are delivered.
        wal.hold(r[0].start, hole_of(&r[0]));
        wal.commit(r[2].end).unwrap();
        assert!(!wal.delivered_through(r[2].end, 9), "tag 9 is held");
        assert!(wal.delivered_through(r[2].end, 5), "tag 5 is not");
        assert!(
            segment_path(dir.path(), r[0].start.segment).exists(),
            "a held record's segment is kept"
        );
        drop(wal);

        let wal = Wal::open(dir.path(), max).unwrap();
        assert_eq!(wal.holes(), vec![(r[0].start, hole_of(&r[0]))]);
        assert!(
            read_all(&wal, &mut Cursor::default()).is_empty(),
            "the reader resumes after the committed position"
        );
        let back = wal.read_hole(r[0].start).unwrap().unwrap();
        assert_eq!(back.samples, r[0].samples);
        assert_eq!((back.tag, back.end), (9, r[0].end));
        wal.unhold(r[0].start).unwrap();
        assert!(wal.holes().is_empty());
        assert!(wal.delivered_through(r[2].end, 9));
        assert!(!segment_path(dir.path(), r[0].start.segment).exists());
        drop(wal);
        assert!(Wal::open(dir.path(), max).unwrap().holes().is_empty());
    }

    #[test]
    fn the_bound_drops_held_records_with_their_segment_and_counts_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let max = 16 * 1024;
        let wal = Wal::open(dir.path(), max).unwrap();
        let series = batch(0, 10);
        put(&wal, &again(&series, 0));
        let first = read_all(&wal, &mut Cursor::default()).remove(0);
        wal.hold(first.start, hole_of(&first));
        wal.commit(first.end).unwrap();
        let mut dropped = 0;
        for ts in 1..200 {
            dropped += put(&wal, &again(&series, ts)).dropped;
        }
        // The held record's 10 samples are among the dropped ones (once), and reading it
        // back finds it gone.
        let replay = read_all(&wal, &mut Cursor::default());
        let kept: u64 = replay.iter().map(|r| r.samples.len() as u64).sum();
        assert_eq!(kept + dropped, 200 * 10);
        assert!(wal.holes().is_empty());
        assert!(wal.read_hole(first.start).unwrap().is_none());

        // One being sent (read back) when its segment goes is not counted: the senders
        // have it.
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), max).unwrap();
        put(&wal, &again(&series, 0));
        let first = read_all(&wal, &mut Cursor::default()).remove(0);
        wal.hold(first.start, hole_of(&first));
        wal.commit(first.end).unwrap();
        assert!(wal.read_hole(first.start).unwrap().is_some());
        let mut dropped = 0;
        for ts in 1..200 {
            dropped += put(&wal, &again(&series, ts)).dropped;
        }
        let replay = read_all(&wal, &mut Cursor::default());
        let kept: u64 = replay.iter().map(|r| r.samples.len() as u64).sum();
        assert_eq!(kept + dropped, 199 * 10);
    }

    #[test]
    fn records_round_trip_and_replay_from_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        for ts in 1..=3 {
            put(&wal, &batch(ts, 2));
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

    /// A scrape with native histograms is a kind 6 record: histograms and floats come back
    /// as written, after a restart too; a float-only scrape stays kind 5.
    #[test]
    fn native_histograms_round_trip_in_their_own_record_kind() {
        use promshard_model::histogram::{Counts, Histogram, Span};
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let h = Histogram {
            schema: -53,
            zero_threshold: 0.0,
            sum: 7.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            negative_spans: vec![],
            counts: Counts::Float {
                count: 3.0,
                zero_count: 0.0,
                positive: vec![1.0, 2.0],
                negative: vec![],
            },
            custom_values: vec![0.5, 1.0],
            gauge: true,
        };
        let mut samples = batch(5, 2);
        samples[1].histogram = Some(Arc::new(h.clone()));
        assert_eq!(encode(&samples)[HEADER], KIND_TAGGED_HISTOGRAMS);
        assert_eq!(encode(&batch(5, 2))[HEADER], KIND_TAGGED);
        put(&wal, &samples);
        drop(wal);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let back = read_all(&wal, &mut Cursor::default()).remove(0).samples;
        assert_eq!(back, samples);
        assert_eq!(back[1].histogram.as_deref(), Some(&h));
        assert!(back[0].histogram.is_none());
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let first = batch(1, 3);
        put(&wal, &first);
        drop(wal);
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        let half = encode(&again(&first, 2));
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        // A torn series record too (a crash while a new series was written).
        let series = dir.path().join(SERIES_FILE);
        let whole = file_len(&series);
        let mut f = OpenOptions::new().append(true).open(&series).unwrap();
        let torn = encode_series(&[&batch(3, 1)[0].series]);
        f.write_all(&torn[..torn.len() - 1]).unwrap();
        drop(f);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let replay = read_all(&wal, &mut Cursor::default());
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].samples, first);
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            encode(&first).len() as u64
        );
        assert_eq!(file_len(&series), whole);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut rec = encode(&batch(1, 1));
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
        let series = batch(0, 10);
        let rec_len = encode(&series).len() as u64;
        let mut dropped = 0;
        let appended = 1000;
        for ts in 0..appended {
            dropped += put(&wal, &again(&series, ts)).dropped;
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
        let series = batch(0, 5);
        for ts in 0..400 {
            dropped += put(&wal, &again(&series, ts)).dropped;
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
        assert_eq!(read + dropped, 2000);
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
        put(&wal, &batch(1, 2));
        wal.append(&encode_metadata(&meta), 0).unwrap();
        put(&wal, &batch(2, 2));
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
            put(&wal, &batch(ts, 1));
        }
        let mut cursor = Cursor::default();
        let first = read_all(&wal, &mut cursor);
        wal.commit(first[1].end).unwrap();
        wal.rewind();
        let again = read_all(&wal, &mut cursor);
        let ts: Vec<i64> = again.iter().map(|r| r.samples[0].timestamp_ms).collect();
        assert_eq!(ts, [2, 3]);
    }

    #[test]
    fn a_series_labels_are_written_once_and_samples_are_small() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let series = batch(0, 100);
        put(&wal, &series);
        let series_bytes = file_len(&dir.path().join(SERIES_FILE));
        for ts in 1..10 {
            put(&wal, &again(&series, ts * 1000));
        }
        assert_eq!(
            file_len(&dir.path().join(SERIES_FILE)),
            series_bytes,
            "labels were written again"
        );
        let seg = file_len(&segment_path(dir.path(), 1));
        // id delta 1-2 bytes, ts delta 1 byte, value 8 bytes; 21 bytes of header and framing.
        assert!(seg <= 10 * (21 + 100 * 11), "{seg} bytes for 1000 samples");
        let records = read_all(&wal, &mut Cursor::default());
        assert_eq!(records[9].samples, again(&series, 9000));
        assert!(Arc::ptr_eq(
            &records[9].samples[0].series,
            &series[0].series
        ));
    }

    #[test]
    fn retired_series_go_once_their_segments_are_gone_and_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 64 << 20).unwrap();
        // Big label sets, so the series file passes the rewrite threshold.
        let big = |i: usize| {
            let mut lb = LabelsBuilder::new();
            lb.set("__name__", format!("m{i}"));
            lb.set("pad", "x".repeat(4096));
            Sample::new(&lb.into_labels(), 1, 1.0)
        };
        let old: Vec<Sample> = (0..5000).map(big).collect();
        put(&wal, &old);
        let keep = vec![big(99_999)];
        put(&wal, &keep);
        let before = file_len(&dir.path().join(SERIES_FILE));
        assert!(before > COMPACT_SLACK, "{before}");
        let ids: Vec<u64> = old.iter().map(|s| s.series.id()).collect();
        wal.forget(&ids);
        // Still needed: their samples are unread.
        assert_eq!(wal.lock().series.len(), 5001);
        let mut cursor = Cursor::default();
        let read = read_all(&wal, &mut cursor);
        assert_eq!(read.len(), 2);
        // Delivered, and a later segment exists: the first one can go, and with it the labels.
        {
            let mut st = wal.lock();
            wal.roll(&mut st).unwrap();
        }
        put(&wal, &again(&keep, 2));
        wal.commit(Position {
            segment: 2,
            offset: 0,
        })
        .unwrap();
        assert_eq!(wal.lock().series.len(), 1);
        wal.sync().unwrap();
        let after = file_len(&dir.path().join(SERIES_FILE));
        assert!(after < 8192, "rewritten to the live series: {after} bytes");
        // The survivor still resolves after a restart.
        drop(wal);
        let wal = Wal::open(dir.path(), 64 << 20).unwrap();
        let replay = read_all(&wal, &mut Cursor::default());
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].samples, again(&keep, 2));
    }

    #[test]
    fn ids_after_a_restart_do_not_reuse_the_wals() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let b = batch(1, 3);
        put(&wal, &b);
        let max = b.iter().map(|s| s.series.id()).max().unwrap();
        drop(wal);
        // As if the clock had gone back: the counter is moved past what the WAL holds.
        super::super::series::reserve_ids_through(max);
        let _wal = Wal::open(dir.path(), 1 << 20).unwrap();
        assert!(batch(2, 1)[0].series.id() > max);
    }

    #[test]
    fn a_wal_of_the_old_format_is_still_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let old = batch(1, 3);
        wal.append(&encode_batch(&old), 3).unwrap();
        drop(wal);
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let new = batch(2, 2);
        put(&wal, &new);
        let replay = read_all(&wal, &mut Cursor::default());
        assert_eq!(replay.len(), 2);
        assert_eq!(replay[0].samples, old);
        assert_eq!(replay[1].samples, new);
    }

    #[test]
    fn samples_whose_labels_are_lost_are_counted_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        put(&wal, &batch(1, 3));
        drop(wal);
        fs::remove_file(dir.path().join(SERIES_FILE)).unwrap();
        let wal = Wal::open(dir.path(), 1 << 20).unwrap();
        let replay = read_all(&wal, &mut Cursor::default());
        assert_eq!(replay.len(), 1);
        assert!(replay[0].samples.is_empty());
        assert_eq!(replay[0].unknown, 3);
    }
}
