//! The master's side of cluster-wide per-series order: fences on moved targets, cuts for
//! workers that come back after their targets moved, and the lease that bounds what a worker
//! cut off from the master may still send.
//!
//! A target that moves from worker A to worker B at the slot boundary H gets a **fence** at B:
//! B scrapes from H but holds the target's samples in its WAL until A reports, per remote-write
//! endpoint, that everything it scraped before H is delivered (`Delivered`); the master relays
//! each report to B (`Release`). The fence has a deadline (`--handoff.fence-timeout`, by default
//! three scrape intervals plus ten seconds): a dead or partitioned A costs B that long a delay,
//! never more.
//!
//! A target taken from a worker that went away (its grace period ran out) is an **orphan**; when
//! it is placed on B, the master fences it at B from B's first slot and keeps a **cut** for the
//! old worker. If that worker comes back (a partition healed), its snapshot carries the cut: it
//! drops what it scraped of the target from the boundary on (B has those slots), sends what came
//! before only while B's fence still waits for it (then reports `Delivered`, which opens B's
//! fence), and drops everything otherwise. The old worker held all of it back meanwhile: it
//! stopped sending when its **lease** ran out (`Lease` messages, renewed every few hundred ms
//! while its stream is up), and the grace period exceeds the lease by a margin, so nothing it
//! sent can be newer than what B scrapes.
//!
//! This module is state and decisions only; the coordinator sends the messages.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use promshard_proto::control::Cut;

/// How a fence's deadline is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceTimeout {
    /// Three of the target's scrape intervals plus ten seconds: the old owner's last scrape,
    /// a remote-write batch deadline (5 s by default) and a request, with room to spare.
    Auto,
    Fixed(Duration),
}

impl FenceTimeout {
    pub fn for_interval(self, interval: Duration) -> Duration {
        match self {
            FenceTimeout::Auto => interval * 3 + Duration::from_secs(10),
            FenceTimeout::Fixed(d) => d,
        }
    }
}

/// One fence as the master tracks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fence {
    pub target_id: String,
    /// The old owner, whose reports open the fence.
    pub from: String,
    /// The new owner, which holds the target's samples.
    pub to: String,
    pub at_ms: i64,
    pub until_ms: i64,
    pub released: BTreeSet<String>,
}

/// How a fence ended, for explain and metrics.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FenceRecord {
    pub target_id: String,
    pub from: String,
    pub to: String,
    pub at_ms: i64,
    pub until_ms: i64,
    /// "waiting" (for the old owner), "released" (every endpoint reported) or "timed_out".
    pub state: &'static str,
    pub released: Vec<String>,
}

/// A cut kept for a worker that is away.
#[derive(Clone, Debug, PartialEq)]
struct PendingCut {
    at_ms: i64,
    until_ms: i64,
    /// The generation of the snapshot that carried it, once sent.
    sent_in: Option<u64>,
}

/// Fences, cuts and orphans.
#[derive(Debug)]
pub struct FenceBook {
    timeout: FenceTimeout,
    fences: HashMap<String, Vec<Fence>>,
    /// Worker → target → cut, for workers that may come back.
    cuts: HashMap<String, HashMap<String, PendingCut>>,
    /// Target → the worker it was taken from (its grace period ran out).
    orphans: HashMap<String, String>,
}

/// How long a cut for a worker that never comes back is kept.
const CUT_MEMORY: Duration = Duration::from_secs(3600);

impl FenceBook {
    pub fn new(timeout: FenceTimeout) -> FenceBook {
        FenceBook {
            timeout,
            fences: HashMap::new(),
            cuts: HashMap::new(),
            orphans: HashMap::new(),
        }
    }

    /// A target moves from `from` to `to` at `at_ms`: fence it at `to`; returns the deadline.
    pub fn open(
        &mut self,
        target_id: &str,
        from: &str,
        to: &str,
        at_ms: i64,
        interval: Duration,
    ) -> i64 {
        let until_ms = at_ms + self.timeout.for_interval(interval).as_millis() as i64;
        let fences = self.fences.entry(target_id.to_string()).or_default();
        fences.retain(|f| !(f.to == to && f.at_ms == at_ms));
        fences.push(Fence {
            target_id: target_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            at_ms,
            until_ms,
            released: BTreeSet::new(),
        });
        until_ms
    }

    /// A handoff was cancelled before the target moved: its fence goes with it.
    pub fn cancel(&mut self, target_id: &str, to: &str, at_ms: i64) {
        if let Some(fs) = self.fences.get_mut(target_id) {
            fs.retain(|f| !(f.to == to && f.at_ms == at_ms));
            if fs.is_empty() {
                self.fences.remove(target_id);
            }
        }
    }

    /// The fence the target has at `to`, if any: its boundary, deadline and released
    /// endpoints, for the target's entry in a snapshot or delta.
    pub fn fence_at(&self, target_id: &str, to: &str) -> Option<&Fence> {
        self.fences
            .get(target_id)?
            .iter()
            .filter(|f| f.to == to)
            .max_by_key(|f| f.at_ms)
    }

    /// `worker` delivered what it scraped of `target_id` before `at_ms` to `endpoints`: the
    /// fence it is the old owner of opens for them. Returns the new owner and the endpoints
    /// newly released, for a Release message.
    pub fn delivered(
        &mut self,
        worker: &str,
        target_id: &str,
        at_ms: i64,
        endpoints: &[String],
    ) -> Option<(String, Vec<String>)> {
        let f = self
            .fences
            .get_mut(target_id)?
            .iter_mut()
            .find(|f| f.from == worker && f.at_ms == at_ms)?;
        let new: Vec<String> = endpoints
            .iter()
            .filter(|e| f.released.insert((*e).clone()))
            .cloned()
            .collect();
        (!new.is_empty()).then(|| (f.to.clone(), new))
    }

    /// Fences that are over: released for every endpoint of the config, or past their
    /// deadline. They are removed and returned.
    pub fn finish(&mut self, now_ms: i64, endpoints: &[String]) -> Vec<FenceRecord> {
        let mut out = Vec::new();
        self.fences.retain(|_, fs| {
            fs.retain(|f| {
                let released = endpoints.iter().all(|e| f.released.contains(e));
                let state = if released {
                    "released"
                } else if now_ms >= f.until_ms {
                    "timed_out"
                } else {
                    return true;
                };
                out.push(record(f, state));
                false
            });
            !fs.is_empty()
        });
        out
    }

    /// Fences still waiting, for explain.
    pub fn waiting(&self) -> Vec<FenceRecord> {
        self.fences
            .values()
            .flatten()
            .map(|f| record(f, "waiting"))
            .collect()
    }

    /// `worker` is gone (its grace period ran out): the targets it held become orphans, and
    /// fences it was to open (as the new owner) are moot.
    pub fn worker_gone(&mut self, worker: &str, held: impl IntoIterator<Item = String>) {
        for t in held {
            self.orphans.insert(t, worker.to_string());
        }
        self.fences.retain(|_, fs| {
            fs.retain(|f| f.to != worker);
            !fs.is_empty()
        });
    }

    /// A target is sent to `to` (not as a make-before-break handoff). If it is an orphan,
    /// fence it from `at_ms` (the first slot `to` will scrape) and keep a cut for the worker it
    /// was taken from; returns the fence's deadline.
    pub fn placed(
        &mut self,
        target_id: &str,
        to: &str,
        at_ms: i64,
        interval: Duration,
    ) -> Option<i64> {
        let from = self.orphans.remove(target_id)?;
        if from == to {
            return None;
        }
        let until_ms = self.open(target_id, &from, to, at_ms, interval);
        self.cuts.entry(from).or_default().insert(
            target_id.to_string(),
            PendingCut {
                at_ms,
                until_ms,
                sent_in: None,
            },
        );
        Some(until_ms)
    }

    /// The old owner of a handoff went away after the new owner got the target: the fence
    /// stays, and the old owner, should it come back, gets a cut at the handoff's boundary.
    pub fn keep_as_cut(&mut self, target_id: &str, from: &str, at_ms: i64) {
        let Some(f) = self
            .fences
            .get(target_id)
            .and_then(|fs| fs.iter().find(|f| f.from == from && f.at_ms == at_ms))
        else {
            return;
        };
        let until_ms = f.until_ms;
        self.cuts.entry(from.to_string()).or_default().insert(
            target_id.to_string(),
            PendingCut {
                at_ms,
                until_ms,
                sent_in: None,
            },
        );
    }

    /// A target that no longer exists (discovery dropped it) is no one's orphan.
    pub fn forget_orphans(&mut self, exists: impl Fn(&str) -> bool) {
        self.orphans.retain(|t, _| exists(t));
    }

    /// The cuts to put in `worker`'s snapshot of generation `generation`. `send_before`:
    /// whether the new owner's fence still waits, with half the fence's length to spare for the
    /// worker to deliver. A target the snapshot gives back to the worker keeps its cut: what the
    /// worker scraped of it between the cut and its new start is still another worker's.
    pub fn cuts_for(&mut self, worker: &str, generation: u64, now_ms: i64) -> Vec<Cut> {
        let Some(cuts) = self.cuts.get_mut(worker) else {
            return Vec::new();
        };
        cuts.iter_mut()
            .map(|(t, c)| {
                c.sent_in = Some(generation);
                let margin = (c.until_ms - c.at_ms) / 2;
                Cut {
                    target_id: t.clone(),
                    at_ms: c.at_ms,
                    send_before: now_ms + margin < c.until_ms,
                }
            })
            .collect()
    }

    /// `worker` acknowledged `generation`: the cuts that snapshot carried are applied there.
    pub fn acked(&mut self, worker: &str, generation: u64) {
        if let Some(cuts) = self.cuts.get_mut(worker) {
            cuts.retain(|_, c| c.sent_in.is_none_or(|g| g > generation));
            if cuts.is_empty() {
                self.cuts.remove(worker);
            }
        }
    }

    /// Forgets cuts for workers that never came back.
    pub fn expire(&mut self, now_ms: i64) {
        let memory = CUT_MEMORY.as_millis() as i64;
        self.cuts.retain(|_, cs| {
            cs.retain(|_, c| c.until_ms + memory > now_ms);
            !cs.is_empty()
        });
    }

    pub fn waiting_count(&self) -> usize {
        self.fences.values().map(Vec::len).sum()
    }
}

fn record(f: &Fence, state: &'static str) -> FenceRecord {
    FenceRecord {
        target_id: f.target_id.clone(),
        from: f.from.clone(),
        to: f.to.clone(),
        at_ms: f.at_ms,
        until_ms: f.until_ms,
        state,
        released: f.released.iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    fn eps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_deadline_is_three_intervals_and_ten_seconds() {
        assert_eq!(
            FenceTimeout::Auto.for_interval(30 * SEC),
            Duration::from_secs(100)
        );
        assert_eq!(FenceTimeout::Fixed(4 * SEC).for_interval(30 * SEC), 4 * SEC);
    }

    #[test]
    fn reports_from_the_old_owner_release_the_new_owners_fence_per_endpoint() {
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        let until = b.open("t", "a", "b", 1_000, SEC);
        assert_eq!(until, 11_000);
        assert_eq!(b.fence_at("t", "b").map(|f| f.until_ms), Some(11_000));
        assert_eq!(b.fence_at("t", "a"), None);
        // Only the old owner's report, for that boundary, counts.
        assert_eq!(b.delivered("b", "t", 1_000, &eps(&["p"])), None);
        assert_eq!(b.delivered("a", "t", 2_000, &eps(&["p"])), None);
        assert_eq!(
            b.delivered("a", "t", 1_000, &eps(&["p"])),
            Some(("b".into(), eps(&["p"])))
        );
        // Again (a report re-sent on a new stream): nothing new.
        assert_eq!(b.delivered("a", "t", 1_000, &eps(&["p"])), None);
        assert!(b.finish(5_000, &eps(&["p", "q"])).is_empty());
        assert_eq!(
            b.delivered("a", "t", 1_000, &eps(&["q"])),
            Some(("b".into(), eps(&["q"])))
        );
        let done = b.finish(5_000, &eps(&["p", "q"]));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].state, "released");
        assert_eq!(b.waiting_count(), 0);
    }

    #[test]
    fn an_unreported_fence_times_out_and_a_cancelled_handoff_removes_its_fence() {
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        b.open("t", "a", "b", 1_000, SEC);
        b.open("u", "a", "b", 1_000, SEC);
        b.cancel("u", "b", 1_000);
        assert!(b.finish(10_999, &eps(&["p"])).is_empty());
        let done = b.finish(11_000, &eps(&["p"]));
        assert_eq!(
            done.iter()
                .map(|r| (r.target_id.as_str(), r.state))
                .collect::<Vec<_>>(),
            [("t", "timed_out")]
        );
    }

    #[test]
    fn a_gone_workers_targets_are_fenced_where_they_land_and_cut_for_it() {
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        b.worker_gone("a", ["t".to_string(), "u".to_string()]);
        assert_eq!(b.placed("t", "b", 5_000, SEC), Some(15_000));
        // Placed again (a later delta): no second fence, no second cut.
        assert_eq!(b.placed("t", "b", 6_000, SEC), None);
        assert_eq!(b.fence_at("t", "b").map(|f| f.from.as_str()), Some("a"));
        // a comes back: its snapshot says where t went, and that b still waits.
        let cuts = b.cuts_for("a", 42, 6_000);
        assert_eq!(
            cuts,
            [Cut {
                target_id: "t".into(),
                at_ms: 5_000,
                send_before: true
            }]
        );
        // Too late to deliver within the fence: drop everything.
        let cuts = b.cuts_for("a", 43, 11_000);
        assert!(!cuts[0].send_before);
        // a's report (after it sent what it held) opens b's fence.
        assert_eq!(
            b.delivered("a", "t", 5_000, &eps(&["p"])),
            Some(("b".into(), eps(&["p"])))
        );
        b.acked("a", 42);
        assert_eq!(b.cuts_for("a", 44, 11_000).len(), 1, "43 not acked yet");
        b.acked("a", 44);
        assert!(b.cuts_for("a", 45, 11_000).is_empty());
    }

    #[test]
    fn an_old_owner_lost_mid_handoff_gets_a_cut_at_the_boundary() {
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        b.open("t", "a", "b", 3_000, SEC);
        b.keep_as_cut("t", "a", 3_000);
        assert_eq!(b.fence_at("t", "b").map(|f| f.at_ms), Some(3_000));
        let cuts = b.cuts_for("a", 7, 4_000);
        assert_eq!(
            cuts,
            [Cut {
                target_id: "t".into(),
                at_ms: 3_000,
                send_before: true
            }]
        );
    }

    #[test]
    fn a_cut_is_sent_even_when_the_target_comes_back_to_the_worker() {
        // c was away while u went to d at 5 000; u comes back to c (at 9 000, say): what c
        // scraped from 5 000 until then is d's, so c still needs the cut.
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        b.worker_gone("c", ["u".to_string()]);
        b.placed("u", "d", 5_000, SEC);
        assert_eq!(b.placed("u", "c", 9_000, SEC), None);
        let cuts = b.cuts_for("c", 1, 9_000);
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].at_ms, 5_000);
    }

    #[test]
    fn a_worker_that_goes_away_takes_its_incoming_fences_and_old_cuts_expire() {
        let mut b = FenceBook::new(FenceTimeout::Fixed(10 * SEC));
        b.open("t", "a", "b", 1_000, SEC);
        b.worker_gone("b", ["t".to_string()]);
        assert_eq!(b.waiting_count(), 0);
        b.placed("t", "c", 2_000, SEC);
        assert_eq!(b.fence_at("t", "c").map(|f| f.from.as_str()), Some("b"));
        b.expire(12_000 + CUT_MEMORY.as_millis() as i64);
        assert!(b.cuts_for("b", 1, 0).is_empty());
    }
}
