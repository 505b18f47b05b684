//! The delivery gate: when a scraped record may leave this worker for a remote-write endpoint.
//!
//! A real TSDB (Prometheus, Mimir, Thanos receive, with their default out-of-order window of 0)
//! refuses a whole request for one sample older than what it already has of the series. Within a
//! worker, order holds by construction (one WAL, one shard per series). Across workers it does
//! not: when a target moves from worker A to worker B at the slot boundary H, B's first sample (at
//! H) can overtake A's last ones (before H) that are still in A's queue, behind a backlog, a retry
//! or a slower upstream. The gate makes the order cluster-wide with three rules, each keyed by the
//! record's target ([`tag_of`]) and scrape time:
//!
//! - **Fence** (new owner): B holds the target's records, per endpoint, until A reports through
//!   the master that it has delivered everything before H to that endpoint (a Release), or until
//!   the fence's deadline (counted as a timeout; then order is best effort, see the sender's
//!   split-and-resend in `remote_write::queue`).
//! - **Lease** (every owner): the master renews a lease on the control stream; a record scraped
//!   after the lease ran out is held, because the master may have given the target to another
//!   worker meanwhile (a partition). The master's grace period exceeds the lease by a margin, so
//!   whatever a worker sends within its lease is older than what any new owner scrapes.
//! - **Cut** (old owner, after a partition): when the worker reaches a master again and learns a
//!   target moved at H' while it was away, it drops what it scraped of it from H' on (the new owner
//!   has those slots), and sends what came before only if the new owner's fence still waits for it.
//!
//! Held records stay in the WAL (the queue manager remembers their positions, persisted with its
//! progress), so they survive a restart and never block other targets' records.
//!
//! This module is the pure state and its decision; the WAL, the queue manager and the control
//! client call it. `decide` must be monotone in time for one tag (an earlier record is never
//! held longer than a later one of the same target), which is what lets the queue manager release
//! held records in WAL order without reordering a series.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use promshard_proto::control::Delivered;
use tokio::sync::{Notify, watch};

/// Now, in Unix ms (the clock the gate's times are on).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Records of no particular target (metadata, a WAL written before tags): never held.
pub const NO_TAG: u64 = 0;

/// The tag of a target's records: a hash of its id, never [`NO_TAG`].
pub fn tag_of(target_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(target_id.as_bytes()) | 1
}

/// What to do with one record for one endpoint, now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Not yet: keep it in the WAL and ask again when the gate changes.
    Hold,
    /// Never: another worker delivers these slots (counted by the caller).
    Drop,
}

/// A fence on one target at this worker: its records from `at_ms` on wait for the old owner.
#[derive(Clone, Debug)]
struct Fence {
    at_ms: i64,
    until_ms: i64,
    released: BTreeSet<String>,
    /// Endpoints this fence was given up on (its deadline passed before a Release).
    timed_out: BTreeSet<String>,
}

/// A target that moved away from this worker while it was away from the master.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    at_ms: i64,
    send_before: bool,
    /// The target came back to this worker from this instant: records scraped since are its own
    /// again, whatever the cut said.
    reacquired_ms: i64,
}

/// The gate's state, without I/O. Times are Unix ms on this worker's clock.
#[derive(Debug)]
pub struct GateState {
    /// Records scraped after this are held; `i64::MAX` when no master grants leases (a worker
    /// library used without a control plane).
    lease_until_ms: i64,
    fences: HashMap<u64, Vec<Fence>>,
    cuts: HashMap<u64, Cut>,
}

/// Something the caller counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateEvent {
    /// A fence's deadline passed before its Release for this endpoint.
    FenceTimedOut { endpoint: String },
}

/// How long a fence that is released or timed out everywhere it matters is remembered, for
/// records read late (a backlog).
const FENCE_MEMORY_MS: i64 = 10 * 60 * 1000;

impl GateState {
    /// `leases`: whether sending needs a lease (a worker under a master) or not.
    pub fn new(leases: bool) -> GateState {
        GateState {
            lease_until_ms: if leases { i64::MIN } else { i64::MAX },
            fences: HashMap::new(),
            cuts: HashMap::new(),
        }
    }

    pub fn decide(
        &mut self,
        endpoint: &str,
        tag: u64,
        at_ms: i64,
        now_ms: i64,
        events: &mut Vec<GateEvent>,
    ) -> Decision {
        if tag == NO_TAG {
            return Decision::Send;
        }
        if let Some(c) = self.cuts.get(&tag)
            && at_ms < c.reacquired_ms
            && (at_ms >= c.at_ms || !c.send_before)
        {
            return Decision::Drop;
        }
        // Every fence that starts at or before the record applies: a later fence of the same
        // target (it left and came back) never lets a record overtake an earlier held one.
        let mut hold = false;
        for f in self
            .fences
            .get_mut(&tag)
            .into_iter()
            .flatten()
            .filter(|f| f.at_ms <= at_ms && !f.released.contains(endpoint))
        {
            if now_ms < f.until_ms {
                hold = true;
            } else if f.timed_out.insert(endpoint.to_string()) {
                events.push(GateEvent::FenceTimedOut {
                    endpoint: endpoint.to_string(),
                });
            }
        }
        if hold {
            return Decision::Hold;
        }
        if at_ms > self.lease_until_ms {
            return Decision::Hold;
        }
        Decision::Send
    }

    /// The master renewed the lease: records scraped up to `until_ms` may go.
    pub fn set_lease(&mut self, until_ms: i64) {
        if self.lease_until_ms != i64::MAX {
            self.lease_until_ms = self.lease_until_ms.max(until_ms);
        }
    }

    pub fn lease_until_ms(&self) -> i64 {
        self.lease_until_ms
    }

    /// A target handed to this worker with a fence (idempotent: a snapshot repeats it).
    pub fn add_fence(
        &mut self,
        tag: u64,
        at_ms: i64,
        until_ms: i64,
        released: impl IntoIterator<Item = String>,
    ) {
        let fences = self.fences.entry(tag).or_default();
        let f = match fences.iter_mut().position(|f| f.at_ms == at_ms) {
            Some(i) => &mut fences[i],
            None => {
                fences.push(Fence {
                    at_ms,
                    until_ms,
                    released: BTreeSet::new(),
                    timed_out: BTreeSet::new(),
                });
                fences.last_mut().expect("pushed")
            }
        };
        f.until_ms = until_ms;
        f.released.extend(released);
    }

    /// The old owner delivered everything before `at_ms` to `endpoints`. A Release that comes
    /// before its fence (cannot normally happen: the master relays it after this worker acked
    /// the target) is kept as a fence already released, so the fence never waits for it.
    pub fn release(&mut self, tag: u64, at_ms: i64, endpoints: impl IntoIterator<Item = String>) {
        let fences = self.fences.entry(tag).or_default();
        match fences.iter_mut().find(|f| f.at_ms == at_ms) {
            Some(f) => f.released.extend(endpoints),
            None => fences.push(Fence {
                at_ms,
                until_ms: i64::MIN,
                released: endpoints.into_iter().collect(),
                timed_out: BTreeSet::new(),
            }),
        }
    }

    /// The target moved to another worker at `at_ms` while this one was away.
    pub fn add_cut(&mut self, tag: u64, at_ms: i64, send_before: bool) {
        self.cuts.insert(
            tag,
            Cut {
                at_ms,
                send_before,
                reacquired_ms: i64::MAX,
            },
        );
    }

    /// The target is this worker's again, scraped from `from_ms`: a cut no longer applies to
    /// what it scrapes from then on.
    pub fn reacquired(&mut self, tag: u64, from_ms: i64) {
        if let Some(c) = self.cuts.get_mut(&tag) {
            c.reacquired_ms = c.reacquired_ms.min(from_ms);
        }
    }

    /// Forgets fences and cuts nothing can refer to any more.
    pub fn expire(&mut self, now_ms: i64) {
        self.fences.retain(|_, fs| {
            fs.retain(|f| f.until_ms.saturating_add(FENCE_MEMORY_MS) > now_ms);
            !fs.is_empty()
        });
        self.cuts.retain(|_, c| {
            c.reacquired_ms == i64::MAX || c.reacquired_ms + FENCE_MEMORY_MS > now_ms
        });
    }

    /// Fences waiting for a Release for `endpoint`, for explain and tests.
    pub fn open_fences(&self, now_ms: i64) -> usize {
        self.fences
            .values()
            .flatten()
            .filter(|f| now_ms < f.until_ms)
            .count()
    }
}

/// The gate shared by the control client (leases, releases, cuts), the scrape manager (fences of
/// new targets) and every endpoint's queue manager (decisions). Every change bumps a version the
/// queue managers watch, so they look at their held records again at once.
pub struct DeliveryGate {
    state: Mutex<GateState>,
    version: watch::Sender<u64>,
    /// Delivered reports waiting for the control stream, and the ones sent lately (a stream
    /// that breaks may lose what it was given; the master takes a report twice without harm).
    reports: Mutex<Reports>,
    pub(crate) reported: Notify,
}

#[derive(Default)]
struct Reports {
    waiting: Vec<Delivered>,
    sent: std::collections::VecDeque<(i64, Delivered)>,
}

/// How long a sent report is kept to send again on a new stream.
const RESEND_WITHIN_MS: i64 = 120_000;

impl DeliveryGate {
    pub fn new(leases: bool) -> DeliveryGate {
        DeliveryGate {
            state: Mutex::new(GateState::new(leases)),
            version: watch::Sender::new(0),
            reports: Mutex::new(Reports::default()),
            reported: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and wakes the queue managers.
    pub fn update<R>(&self, f: impl FnOnce(&mut GateState) -> R) -> R {
        let r = f(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
        r
    }

    /// Decides for one record (see [`GateState::decide`]).
    pub fn decide(
        &self,
        endpoint: &str,
        tag: u64,
        at_ms: i64,
        now_ms: i64,
        events: &mut Vec<GateEvent>,
    ) -> Decision {
        self.lock().decide(endpoint, tag, at_ms, now_ms, events)
    }

    pub fn lease_until_ms(&self) -> i64 {
        self.lock().lease_until_ms()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Reports> {
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a Delivered report for the control stream.
    pub fn report(&self, d: Delivered) {
        self.reports().waiting.push(d);
        self.reported.notify_one();
    }

    /// Reports not yet sent; they count as sent from now on.
    pub fn take_reports(&self) -> Vec<Delivered> {
        let now = now_ms();
        let mut r = self.reports();
        let out = std::mem::take(&mut r.waiting);
        r.sent.extend(out.iter().map(|d| (now, d.clone())));
        while r
            .sent
            .front()
            .is_some_and(|(t, _)| *t + RESEND_WITHIN_MS < now)
        {
            r.sent.pop_front();
        }
        out
    }

    /// Reports the stream could not take go back to the front.
    pub fn requeue_reports(&self, mut unsent: Vec<Delivered>) {
        if unsent.is_empty() {
            return;
        }
        let mut r = self.reports();
        unsent.append(&mut r.waiting);
        r.waiting = unsent;
    }

    /// A new stream: the reports sent lately go again.
    pub fn resend_recent_reports(&self) {
        let now = now_ms();
        let mut r = self.reports();
        let recent: Vec<Delivered> = r
            .sent
            .drain(..)
            .filter(|(t, _)| *t + RESEND_WITHIN_MS >= now)
            .map(|(_, d)| d)
            .collect();
        let waiting = std::mem::replace(&mut r.waiting, recent);
        r.waiting.extend(waiting);
    }

    /// Reports not yet handed to a stream.
    pub fn pending_reports(&self) -> usize {
        self.reports().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 7;
    const E: &str = "rw";

    fn decide(g: &mut GateState, tag: u64, at: i64, now: i64) -> Decision {
        g.decide(E, tag, at, now, &mut Vec::new())
    }

    #[test]
    fn without_leases_everything_goes_and_untagged_records_always_do() {
        let mut g = GateState::new(false);
        assert_eq!(decide(&mut g, T, 1_000, 1_000), Decision::Send);
        g.set_lease(5);
        assert_eq!(decide(&mut g, T, 1_000, 1_000), Decision::Send);
        let mut g = GateState::new(true);
        assert_eq!(decide(&mut g, NO_TAG, 1_000, 1_000), Decision::Send);
    }

    #[test]
    fn records_scraped_after_the_lease_wait_for_its_renewal() {
        let mut g = GateState::new(true);
        // No lease yet (a restarted worker before its master answers).
        assert_eq!(decide(&mut g, T, 1_000, 1_000), Decision::Hold);
        g.set_lease(2_000);
        assert_eq!(decide(&mut g, T, 1_000, 1_500), Decision::Send);
        assert_eq!(decide(&mut g, T, 2_000, 2_000), Decision::Send);
        assert_eq!(decide(&mut g, T, 2_001, 2_100), Decision::Hold);
        // A lease never moves back (a late message).
        g.set_lease(1_500);
        assert_eq!(decide(&mut g, T, 1_900, 2_100), Decision::Send);
    }

    #[test]
    fn a_fence_holds_per_endpoint_until_released_or_its_deadline() {
        let mut g = GateState::new(false);
        g.add_fence(T, 10_000, 20_000, []);
        // Before the boundary: not this fence's records (an earlier owner period).
        assert_eq!(decide(&mut g, T, 9_000, 10_500), Decision::Send);
        assert_eq!(decide(&mut g, T, 10_000, 10_500), Decision::Hold);
        assert_eq!(
            g.decide("other", T, 10_000, 10_500, &mut Vec::new()),
            Decision::Hold
        );
        g.release(T, 10_000, [E.to_string()]);
        assert_eq!(decide(&mut g, T, 10_000, 10_600), Decision::Send);
        assert_eq!(
            g.decide("other", T, 10_000, 10_600, &mut Vec::new()),
            Decision::Hold
        );
        // Another tag is never held by it.
        assert_eq!(decide(&mut g, 9, 10_000, 10_600), Decision::Send);
        // The deadline: sent, counted once per endpoint.
        let mut events = Vec::new();
        assert_eq!(
            g.decide("other", T, 10_000, 20_000, &mut events),
            Decision::Send
        );
        assert_eq!(
            g.decide("other", T, 12_000, 20_001, &mut events),
            Decision::Send
        );
        assert_eq!(
            events,
            [GateEvent::FenceTimedOut {
                endpoint: "other".into()
            }]
        );
    }

    #[test]
    fn a_snapshot_repeating_a_fence_keeps_its_releases_and_a_release_before_its_fence_counts() {
        let mut g = GateState::new(false);
        g.add_fence(T, 10_000, 20_000, []);
        g.release(T, 10_000, [E.to_string()]);
        g.add_fence(T, 10_000, 20_000, []);
        assert_eq!(decide(&mut g, T, 10_000, 11_000), Decision::Send);
        g.release(9, 5_000, [E.to_string()]);
        g.add_fence(9, 5_000, 20_000, []);
        assert_eq!(decide(&mut g, 9, 5_000, 11_000), Decision::Send);
    }

    #[test]
    fn a_fence_and_the_lease_both_have_to_let_a_record_go() {
        let mut g = GateState::new(true);
        g.set_lease(15_000);
        g.add_fence(T, 10_000, 20_000, [E.to_string()]);
        assert_eq!(decide(&mut g, T, 12_000, 12_000), Decision::Send);
        assert_eq!(decide(&mut g, T, 16_000, 16_000), Decision::Hold);
    }

    #[test]
    fn a_cut_drops_the_new_owners_slots_and_the_rest_unless_its_fence_waits() {
        let mut g = GateState::new(true);
        g.set_lease(5_000);
        g.add_cut(T, 8_000, true);
        // Within the lease: sent before the partition was known, nothing to decide.
        assert_eq!(decide(&mut g, T, 4_000, 9_000), Decision::Send);
        // Held after the lease, before the new owner's boundary: sent once the lease is back.
        assert_eq!(decide(&mut g, T, 6_000, 9_000), Decision::Hold);
        g.set_lease(20_000);
        assert_eq!(decide(&mut g, T, 6_000, 9_000), Decision::Send);
        assert_eq!(decide(&mut g, T, 8_000, 9_000), Decision::Drop);
        assert_eq!(decide(&mut g, T, 9_000, 9_000), Decision::Drop);
        // The new owner's fence is closed: nothing of the target goes any more.
        g.add_cut(T, 8_000, false);
        assert_eq!(decide(&mut g, T, 6_000, 9_000), Decision::Drop);
        // The target comes back later: its new records are its own.
        g.reacquired(T, 15_000);
        assert_eq!(decide(&mut g, T, 15_000, 15_000), Decision::Send);
        assert_eq!(decide(&mut g, T, 6_000, 15_000), Decision::Drop);
    }

    #[test]
    fn decisions_are_monotone_in_time_for_one_tag() {
        // An earlier record is never held while a later one of the same target is sent: the
        // queue manager releases held records in WAL order and relies on it.
        let mut g = GateState::new(true);
        g.set_lease(30_000);
        g.add_fence(T, 10_000, 25_000, []);
        g.add_fence(T, 20_000, 40_000, [E.to_string()]);
        g.add_cut(T, 35_000, true);
        for now in (0..50_000).step_by(2_500) {
            let mut last_kept: Option<Decision> = None;
            for at in (0..50_000).step_by(500) {
                let d = decide(&mut g, T, at, now);
                if d == Decision::Drop {
                    continue;
                }
                if let Some(prev) = last_kept {
                    assert!(
                        !(prev == Decision::Hold && d == Decision::Send),
                        "at {at} (now {now}): an earlier record is held while this one is sent"
                    );
                }
                last_kept = Some(d);
            }
        }
    }

    #[test]
    fn old_fences_and_cuts_are_forgotten() {
        let mut g = GateState::new(false);
        g.add_fence(T, 10_000, 20_000, []);
        g.add_cut(9, 5_000, true);
        g.reacquired(9, 6_000);
        g.expire(20_000 + FENCE_MEMORY_MS - 1);
        assert_eq!(g.fences.len(), 1);
        g.expire(20_000 + FENCE_MEMORY_MS);
        assert!(g.fences.is_empty() && g.cuts.is_empty());
    }
}
