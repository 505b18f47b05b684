//! The WAL's `progress` file: how far delivery has come, and which records behind that point
//! are held back by the delivery gate (`crate::gate`).
//!
//! ```text
//! <segment> <offset>                                     committed: everything before is done
//! hold <segment> <offset> <tag> <at_ms> <samples>        a held record before it (any number)
//! ```
//!
//! A held record is one the reader went past without sending (a fenced target, a scrape after
//! the lease ran out): the committed position may move beyond it, so a hold on one target never
//! keeps the rest of the log from being acknowledged, and the record itself stays in its segment
//! until it is sent or dropped. The file is replaced atomically (write + rename), not fsynced:
//! losing an update re-sends or re-holds, never loses. A file of the earlier format (one line)
//! reads as no holds.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

const FILE: &str = "progress";

/// A position in the log: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Position {
    pub(super) segment: u64,
    pub(super) offset: u64,
}

/// A held record: its target's tag, scrape time and sample count (for the gate's decision and
/// the drop accounting, without reading it again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hole {
    pub(super) tag: u64,
    pub(super) at_ms: i64,
    pub(super) samples: u64,
}

pub(super) fn read(dir: &Path) -> (Position, BTreeMap<Position, Hole>) {
    let text = fs::read_to_string(dir.join(FILE)).unwrap_or_default();
    let mut lines = text.lines();
    let committed = lines
        .next()
        .and_then(|l| {
            let mut it = l.split_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next()) {
                (Some(Ok(segment)), Some(Ok(offset))) => Some(Position { segment, offset }),
                _ => None,
            }
        })
        .unwrap_or_default();
    let mut holes = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let parsed = match f.as_slice() {
            ["hold", seg, off, tag, at, n] => (|| {
                Some((
                    Position {
                        segment: seg.parse().ok()?,
                        offset: off.parse().ok()?,
                    },
                    Hole {
                        tag: tag.parse().ok()?,
                        at_ms: at.parse().ok()?,
                        samples: n.parse().ok()?,
                    },
                ))
            })(),
            _ => None,
        };
        match parsed {
            Some((pos, hole)) => {
                holes.insert(pos, hole);
            }
            None => {
                tracing::warn!(dir = %dir.display(), %line, "ignoring an unreadable line of the WAL progress file")
            }
        }
    }
    (committed, holes)
}

pub(super) fn write<'a>(
    dir: &Path,
    committed: Position,
    holes: impl Iterator<Item = (&'a Position, &'a Hole)>,
) -> io::Result<()> {
    use std::fmt::Write as _;
    let mut text = format!("{} {}\n", committed.segment, committed.offset);
    for (p, h) in holes {
        let _ = writeln!(
            text,
            "hold {} {} {} {} {}",
            p.segment, p.offset, h.tag, h.at_ms, h.samples
        );
    }
    let tmp = dir.join("progress.tmp");
    fs::write(&tmp, text)?;
    fs::rename(tmp, dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_holes_and_reads_the_old_one_line_format() {
        let dir = tempfile::tempdir().unwrap();
        let pos = |segment, offset| Position { segment, offset };
        let holes = BTreeMap::from([
            (
                pos(3, 10),
                Hole {
                    tag: u64::MAX,
                    at_ms: -5,
                    samples: 7,
                },
            ),
            (
                pos(4, 0),
                Hole {
                    tag: 1,
                    at_ms: 1_700_000_000_000,
                    samples: 0,
                },
            ),
        ]);
        write(dir.path(), pos(5, 99), holes.iter()).unwrap();
        assert_eq!(read(dir.path()), (pos(5, 99), holes));

        fs::write(dir.path().join(FILE), "2 40\n").unwrap();
        assert_eq!(read(dir.path()), (pos(2, 40), BTreeMap::new()));
        fs::remove_file(dir.path().join(FILE)).unwrap();
        assert_eq!(read(dir.path()), (Position::default(), BTreeMap::new()));
    }
}
