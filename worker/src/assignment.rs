//! The worker's assignment: what it must scrape, as a pure state machine over control-plane
//! messages (snapshot chunks and deltas), plus its on-disk copy.
//!
//! Kept free of I/O except `save`/`load` so transitions are unit-tested without a network.
//! The copy on disk lets a worker keep scraping across its own restart while the master is
//! unreachable (workers are autonomous).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use promshard_model::Labels;
use promshard_model::config::Config;
use promshard_proto::control::{
    Cut, MasterMessage, Snapshot, Target as WireTarget, master_message::Msg,
};
use prost::Message;

const FILE: &str = "assignment.pb";

#[derive(Clone, Debug, PartialEq)]
pub struct AssignedTarget {
    pub id: String,
    pub job: String,
    /// Final labels including `__address__`, `__scheme__`, `__metrics_path__`, ...
    pub labels: Labels,
    pub placement_key: u64,
    /// Unix ms before which the target is not scraped (it is being handed over to this worker
    /// and the previous owner scrapes the slots before); 0 = scrape from the next slot.
    pub start_at_ms: i64,
    /// The fence's deadline (Unix ms; 0 = no fence): until the previous owner reports delivery
    /// through the master, or until then, this worker holds the target's samples (see
    /// `crate::gate`).
    pub fence_until_ms: i64,
    /// Endpoints the fence is already released for.
    pub released: Vec<String>,
}

/// An applied assignment, immutable once published.
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    pub generation: u64,
    pub config: Arc<Config>,
    pub config_yaml: String,
    pub targets: BTreeMap<String, Arc<AssignedTarget>>,
    /// Targets taken from this worker while it was away from the master, from the latest
    /// snapshot (kept on disk so a restart still drops what another worker delivers).
    pub cuts: Vec<Cut>,
}

/// What applying a message changed, beyond the new target map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub generation: u64,
    /// Targets that no longer exist anywhere: stop them with stale markers.
    pub removed: Vec<String>,
    /// Targets another worker now owns, and (after a snapshot) targets that simply are not in
    /// it: stop them WITHOUT stale markers. When unsure we prefer a series lingering for the
    /// staleness window over a gap in a series that another worker keeps scraping.
    pub handed_off: Vec<String>,
    /// Make-before-break moves away from this worker: (target id, stop at Unix ms). The target
    /// is already out of the assignment (a restart does not resume it); its loop scrapes the
    /// slots before the instant and stops without stale markers.
    pub handoffs: Vec<(String, i64)>,
    /// Targets that moved away while this worker was away (a snapshot after a partition).
    pub cuts: Vec<Cut>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("delta for base generation {base} but the worker holds {held}")]
    BaseMismatch { base: u64, held: u64 },
    #[error("snapshot chunk for generation {got} while assembling {expected}")]
    ChunkMismatch { got: u64, expected: u64 },
    #[error("invalid config from master: {0}")]
    Config(String),
    #[error("empty message")]
    Empty,
    #[error("not an assignment message")]
    NotAssignment,
}

#[derive(Default)]
pub struct AssignmentState {
    pub current: Assignment,
    /// A snapshot being assembled from chunks: (generation, config yaml, targets so far, cuts).
    pending: Option<(u64, String, Vec<WireTarget>, Vec<Cut>)>,
}

fn convert(t: WireTarget) -> Arc<AssignedTarget> {
    Arc::new(AssignedTarget {
        labels: Labels::from_pairs(t.labels.into_iter().map(|l| (l.name, l.value))),
        placement_key: u64::from_str_radix(&t.placement_key, 16).unwrap_or(0),
        id: t.id,
        job: t.job,
        start_at_ms: t.start_at_ms,
        fence_until_ms: t.fence_until_ms,
        released: t.released,
    })
}

impl AssignmentState {
    pub fn new(current: Assignment) -> Self {
        AssignmentState {
            current,
            pending: None,
        }
    }

    /// Forgets a half-received snapshot (the stream it came on is gone).
    pub fn reset_pending(&mut self) {
        self.pending = None;
    }

    /// Applies one message. Returns what changed when the message completed a snapshot or
    /// applied a delta, `None` while a chunked snapshot is still arriving.
    pub fn apply(&mut self, msg: MasterMessage) -> Result<Option<Applied>, ProtocolError> {
        match msg.msg.ok_or(ProtocolError::Empty)? {
            Msg::Lease(_) | Msg::Release(_) => Err(ProtocolError::NotAssignment),
            Msg::Snapshot(s) => {
                let (generation, mut yaml, mut targets, mut cuts) = match self.pending.take() {
                    None => (s.generation, s.config_yaml, Vec::new(), Vec::new()),
                    Some((g, y, t, c)) if g == s.generation => (g, y, t, c),
                    Some((g, _, _, _)) => {
                        return Err(ProtocolError::ChunkMismatch {
                            got: s.generation,
                            expected: g,
                        });
                    }
                };
                targets.extend(s.targets);
                cuts.extend(s.cuts);
                if !s.last_chunk {
                    if yaml.is_empty() {
                        yaml = String::new();
                    }
                    self.pending = Some((generation, yaml, targets, cuts));
                    return Ok(None);
                }
                let config = if yaml == self.current.config_yaml {
                    self.current.config.clone()
                } else {
                    Arc::new(
                        Config::parse(&yaml).map_err(|e| ProtocolError::Config(e.to_string()))?,
                    )
                };
                let targets: BTreeMap<_, _> = targets
                    .into_iter()
                    .map(|t| (t.id.clone(), convert(t)))
                    .collect();
                let handed_off = self
                    .current
                    .targets
                    .keys()
                    .filter(|k| !targets.contains_key(*k))
                    .cloned()
                    .collect();
                self.current = Assignment {
                    generation,
                    config,
                    config_yaml: yaml,
                    targets,
                    cuts: cuts.clone(),
                };
                Ok(Some(Applied {
                    generation,
                    removed: Vec::new(),
                    handed_off,
                    handoffs: Vec::new(),
                    cuts,
                }))
            }
            Msg::Delta(d) => {
                if d.base_generation != self.current.generation {
                    return Err(ProtocolError::BaseMismatch {
                        base: d.base_generation,
                        held: self.current.generation,
                    });
                }
                let mut next = self.current.clone();
                for id in d.removed.iter().chain(&d.handed_off) {
                    next.targets.remove(id);
                }
                for h in &d.handoffs {
                    next.targets.remove(&h.target_id);
                }
                for t in d.added {
                    next.targets.insert(t.id.clone(), convert(t));
                }
                next.generation = d.generation;
                self.current = next;
                Ok(Some(Applied {
                    generation: d.generation,
                    removed: d.removed,
                    handed_off: d.handed_off,
                    handoffs: d
                        .handoffs
                        .into_iter()
                        .map(|h| (h.target_id, h.stop_at_ms))
                        .collect(),
                    cuts: Vec::new(),
                }))
            }
        }
    }

    /// Writes the current assignment atomically (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let a = &self.current;
        let snap = Snapshot {
            generation: a.generation,
            config_yaml: a.config_yaml.clone(),
            targets: a
                .targets
                .values()
                .map(|t| WireTarget {
                    id: t.id.clone(),
                    job: t.job.clone(),
                    labels: t
                        .labels
                        .iter()
                        .map(|l| promshard_proto::prometheus::Label {
                            name: l.name.clone(),
                            value: l.value.clone(),
                        })
                        .collect(),
                    placement_key: format!("{:016x}", t.placement_key),
                    start_at_ms: t.start_at_ms,
                    fence_until_ms: t.fence_until_ms,
                    released: t.released.clone(),
                })
                .collect(),
            last_chunk: true,
            cuts: a.cuts.clone(),
        };
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&snap.encode_to_vec())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(FILE))
    }

    /// Loads a saved assignment; a missing or corrupt file yields an empty assignment.
    pub fn load(dir: &Path) -> Assignment {
        let Ok(bytes) = std::fs::read(dir.join(FILE)) else {
            return Assignment::default();
        };
        let mut st = AssignmentState::default();
        let msg = match Snapshot::decode(bytes.as_slice()) {
            Ok(s) => MasterMessage {
                msg: Some(Msg::Snapshot(Snapshot {
                    last_chunk: true,
                    ..s
                })),
            },
            Err(e) => {
                tracing::warn!(error = %e, "ignoring corrupt persisted assignment");
                return Assignment::default();
            }
        };
        match st.apply(msg) {
            Ok(_) => st.current,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unusable persisted assignment");
                Assignment::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promshard_proto::control::Delta;

    fn target(id: &str) -> WireTarget {
        WireTarget {
            id: id.into(),
            job: "j".into(),
            labels: vec![promshard_proto::prometheus::Label {
                name: "__address__".into(),
                value: format!("{id}:1"),
            }],
            placement_key: "00000000000000ff".into(),
            start_at_ms: 0,
            fence_until_ms: 0,
            released: Vec::new(),
        }
    }
    fn snap(generation: u64, ids: &[&str], last: bool, yaml: &str) -> MasterMessage {
        MasterMessage {
            msg: Some(Msg::Snapshot(Snapshot {
                generation,
                config_yaml: yaml.into(),
                targets: ids.iter().map(|i| target(i)).collect(),
                last_chunk: last,
                cuts: Vec::new(),
            })),
        }
    }
    fn delta(generation: u64, base: u64, add: &[&str], rm: &[&str]) -> MasterMessage {
        MasterMessage {
            msg: Some(Msg::Delta(Delta {
                generation,
                base_generation: base,
                added: add.iter().map(|i| target(i)).collect(),
                removed: rm.iter().map(|s| s.to_string()).collect(),
                handed_off: vec!["moved".into()],
                handoffs: Vec::new(),
            })),
        }
    }
    fn ids(st: &AssignmentState) -> Vec<&str> {
        st.current.targets.keys().map(String::as_str).collect()
    }

    const YAML: &str = "scrape_configs: [{job_name: j}]";

    #[test]
    fn chunked_snapshot_then_deltas() {
        let mut st = AssignmentState::default();
        assert_eq!(
            st.apply(snap(5, &["a", "b", "moved"], true, YAML))
                .unwrap()
                .unwrap()
                .generation,
            5
        );
        assert_eq!(st.apply(snap(6, &["a", "b"], false, YAML)), Ok(None));
        assert_eq!(
            ids(&st),
            ["a", "b", "moved"],
            "a partial snapshot is not applied"
        );
        let applied = st.apply(snap(6, &["c"], true, "")).unwrap().unwrap();
        assert_eq!(
            applied.handed_off,
            ["moved"],
            "absent from a snapshot: stop without stale markers"
        );
        assert_eq!(ids(&st), ["a", "b", "c"]);
        assert_eq!(st.current.config.scrape_configs[0].job_name, "j");
        assert_eq!(st.current.targets["a"].placement_key, 255);

        st.apply(delta(7, 6, &["moved"], &[])).unwrap();
        let applied = st.apply(delta(8, 7, &["d"], &["a"])).unwrap().unwrap();
        assert_eq!(
            applied,
            Applied {
                generation: 8,
                removed: vec!["a".into()],
                handed_off: vec!["moved".into()],
                handoffs: Vec::new(),
                cuts: Vec::new(),
            }
        );
        assert_eq!(ids(&st), ["b", "c", "d"]);
        assert_eq!(
            st.apply(delta(10, 9, &[], &["b"])),
            Err(ProtocolError::BaseMismatch { base: 9, held: 8 })
        );
        assert_eq!(
            ids(&st),
            ["b", "c", "d"],
            "a rejected delta changes nothing"
        );
    }

    #[test]
    fn handoffs_leave_the_assignment_and_are_reported_with_their_instant() {
        let mut st = AssignmentState::default();
        st.apply(snap(1, &["a", "b"], true, YAML)).unwrap();
        let mut d = delta(2, 1, &[], &[]);
        if let Some(Msg::Delta(d)) = &mut d.msg {
            d.handed_off.clear();
            d.handoffs.push(promshard_proto::control::HandOff {
                target_id: "a".into(),
                stop_at_ms: 1_234,
            });
        }
        let applied = st.apply(d).unwrap().unwrap();
        assert_eq!(applied.handoffs, vec![("a".to_string(), 1_234)]);
        assert_eq!(
            ids(&st),
            ["b"],
            "a restart after the handoff must not resume it"
        );
    }

    #[test]
    fn mixed_chunk_generations_are_rejected() {
        let mut st = AssignmentState::default();
        st.apply(snap(5, &["a"], false, YAML)).unwrap();
        assert_eq!(
            st.apply(snap(6, &["b"], true, YAML)),
            Err(ProtocolError::ChunkMismatch {
                got: 6,
                expected: 5
            })
        );
    }

    #[test]
    fn invalid_config_is_rejected() {
        let mut st = AssignmentState::default();
        assert!(matches!(
            st.apply(snap(1, &[], true, "scrape_configs: 3")),
            Err(ProtocolError::Config(_))
        ));
    }

    #[test]
    fn a_snapshots_cuts_come_with_it_from_any_chunk_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = AssignmentState::default();
        let cut = |id: &str| Cut {
            target_id: id.into(),
            at_ms: 5_000,
            send_before: true,
        };
        let mut first = snap(3, &["a"], false, YAML);
        let mut last = snap(3, &["b"], true, "");
        if let (Some(Msg::Snapshot(f)), Some(Msg::Snapshot(l))) = (&mut first.msg, &mut last.msg) {
            f.cuts.push(cut("x"));
            l.cuts.push(cut("y"));
        }
        assert_eq!(st.apply(first), Ok(None));
        let applied = st.apply(last).unwrap().unwrap();
        assert_eq!(applied.cuts, vec![cut("x"), cut("y")]);
        st.save(dir.path()).unwrap();
        assert_eq!(
            AssignmentState::load(dir.path()).cuts,
            vec![cut("x"), cut("y")]
        );
        // A lease is not an assignment: the control client handles it.
        assert_eq!(
            st.apply(MasterMessage {
                msg: Some(Msg::Lease(promshard_proto::control::Lease {
                    duration_ms: 1
                }))
            }),
            Err(ProtocolError::NotAssignment)
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = AssignmentState::default();
        let mut s = snap(9, &["a", "b"], true, YAML);
        if let Some(Msg::Snapshot(s)) = &mut s.msg {
            s.targets[0].start_at_ms = 1_000;
            s.targets[0].fence_until_ms = 9_000;
            s.targets[0].released = vec!["rw".into()];
        }
        st.apply(s).unwrap();
        st.save(dir.path()).unwrap();
        let loaded = AssignmentState::load(dir.path());
        assert_eq!(loaded.generation, 9);
        assert_eq!(loaded.config.scrape_configs[0].job_name, "j");
        assert_eq!(loaded.targets, st.current.targets);
        assert_eq!(loaded.targets["a"].fence_until_ms, 9_000);
        assert_eq!(
            AssignmentState::load(&dir.path().join("missing")).generation,
            0
        );
    }
}
