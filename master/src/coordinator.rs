//! The coordinator: the single writer of the master's state.
//!
//! It owns discovered groups, the computed targets, worker membership and what each worker has
//! been sent. Every input (discovery updates, worker connects, acks, disconnects, grace timers)
//! is an [`Event`] on one channel; after draining a burst of events it reconciles once: place
//! every target, then send each connected worker a snapshot (new session) or a delta (changed
//! assignment). Readers (HTTP) get an immutable [`View`] through a `watch` channel and never
//! touch the writer's state.
//!
//! Cluster-wide order at the receivers ([`crate::fences`]): moved targets are fenced at their
//! new owner until the old one reports delivery (relayed as a Release), workers that come back
//! after their targets moved get cuts in their snapshot, and every connected worker's lease is
//! renewed a few times per lease period.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promshard_model::config::Config;
use promshard_proto::control::{
    Cut, Delta, HandOff, Lease, MasterMessage, Release, Snapshot, Target as WireTarget,
    master_message::Msg,
};
use promshard_proto::prometheus::Label as WireLabel;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::Status;

use crate::control::Loads;
use crate::discovery::{TargetGroup, Update};
use crate::fences::{FenceBook, FenceRecord, FenceTimeout};
use crate::metrics::Metrics;
use crate::placement::{self, Item, Strategy};
use crate::targets::{self, ActiveTarget, JobTargets};

/// Targets per snapshot message; keeps each message far below the gRPC size limit.
const SNAPSHOT_CHUNK: usize = 5_000;
/// Events handled before a reconcile is forced, so a flood cannot starve workers of deltas.
const MAX_BATCH: usize = 10_000;

pub type WorkerTx = mpsc::Sender<Result<MasterMessage, Status>>;

/// How often weights from load reports are re-read and placement recomputed even when nothing
/// else happened, by default. Weight hysteresis (`placement::effective_weight`) keeps this from
/// moving targets on ordinary churn.
pub const REBALANCE_EVERY: Duration = Duration::from_secs(30);

/// How placement behaves.
pub struct Settings {
    /// How long a disconnected worker keeps its targets.
    pub grace: Duration,
    pub strategy: Box<dyn Strategy>,
    /// After the master starts, how long it waits for workers to reconnect and report before
    /// placing anything. Workers keep scraping their persisted assignments meanwhile, so a
    /// restarted master moves no target just because workers reconnect one by one.
    pub settle: Duration,
    /// How long a moved target's new owner waits for the old one's delivery report.
    pub fence_timeout: FenceTimeout,
    /// How often placement is recomputed from load reports alone ([`REBALANCE_EVERY`]).
    pub rebalance_every: Duration,
}

/// The lease a worker gets: half the grace period, so the other half covers transit delay and
/// clock skew between workers (see `crate::fences`).
pub fn lease_for(grace: Duration) -> Duration {
    (grace / 2).max(Duration::from_millis(200))
}

/// Fence outcomes kept for the API (explain).
const FENCE_HISTORY: usize = 10_000;

#[derive(Debug)]
pub enum Event {
    Discovery(Update),
    Connected {
        worker: String,
        conn: u64,
        tx: WorkerTx,
        scraping: Vec<String>,
        capacity_series: u64,
    },
    /// The worker is shutting down gracefully: move everything it holds elsewhere.
    Draining {
        worker: String,
        conn: u64,
    },
    Disconnected {
        worker: String,
        conn: u64,
    },
    Ack {
        worker: String,
        conn: u64,
        generation: u64,
    },
    /// The worker delivered what it scraped of a target before `at_ms` to `endpoints`.
    Delivered {
        worker: String,
        conn: u64,
        target_id: String,
        at_ms: i64,
        endpoints: Vec<String>,
    },
    /// A new, fully validated config: every job is recomputed and every connected worker gets
    /// a fresh snapshot carrying it. Discovery is restarted by the caller.
    ConfigChanged(Arc<Config>),
}

/// A worker as readers see it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    pub id: String,
    pub connected: bool,
    pub targets: usize,
    pub sent_generation: u64,
    pub acked_generation: u64,
    /// Unix ms of the current (or last) connection's start.
    pub connected_since_ms: u64,
    /// Unix ms when a disconnected worker's targets will be reassigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// Series the worker accepts (`--max-series` in its hello; 0 = unlimited).
    pub capacity_series: u64,
}

/// Immutable snapshot of the master's state for readers.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub jobs: BTreeMap<String, JobTargets>,
    /// Target id → owning worker.
    pub owners: HashMap<String, String>,
    pub workers: Vec<WorkerView>,
    pub config: Arc<Config>,
    /// Recent handoffs, oldest first, and the ones in flight (outcome "pending").
    pub handoffs: Arc<Vec<HandoffRecord>>,
    /// Recent fences (finished, oldest first) and the ones waiting (state "waiting").
    pub fences: Arc<Vec<FenceRecord>>,
}

struct WorkerState {
    conn: u64,
    tx: Option<WorkerTx>,
    connected_since: SystemTime,
    /// When a disconnected worker's targets get reassigned.
    expires: Option<Instant>,
    /// Needs a full snapshot before any delta (new session).
    needs_snapshot: bool,
    sent_generation: u64,
    acked_generation: u64,
    /// Target ids the worker was last sent.
    assigned: BTreeSet<String>,
    /// Targets the worker said (in its hello) it was scraping: its current targets as far as
    /// placement is concerned until its first snapshot (after a master restart, say).
    claimed: std::collections::HashSet<String>,
    resumed: usize,
    /// Series the worker accepts (`--max-series`), 0 = unlimited.
    capacity_series: u64,
    /// Leaving on purpose: receives no new targets; its targets are handed off.
    draining: bool,
    /// Targets sent with a start instant (handoffs to this worker), by target id: until then
    /// the worker holds the target without scraping it.
    starts: HashMap<String, i64>,
    /// The jobs with inline credentials whose config this worker was last sent (those it had
    /// targets of). A target of another such job comes with a snapshot carrying its config.
    secret_jobs: BTreeSet<String>,
}

/// How far ahead of now a handoff instant is set: the new owner must have acknowledged its
/// assignment and the old owner must have received its stop before that instant, or a slot may
/// be missed or scraped twice (counted as `late`).
const HANDOFF_LEAD: Duration = Duration::from_secs(2);
/// Completed handoffs kept for the API (explain).
const HANDOFF_HISTORY: usize = 10_000;

/// A make-before-break move of one target between two connected workers. The new owner gets
/// the target with `start_at_ms = at_ms`; once it has acknowledged that, the old owner is told
/// to stop at the same instant. Until then the old owner keeps the target.
#[derive(Clone, Debug)]
struct Handoff {
    from: String,
    to: String,
    at_ms: i64,
    /// The generation that carried the target to `to` (0 = not sent yet).
    to_generation: u64,
}

/// A handoff as readers see it (explain, history).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffRecord {
    pub target_id: String,
    pub from: String,
    pub to: String,
    /// The slot boundary: `from` scrapes before it, `to` from it on (Unix ms).
    pub at_ms: i64,
    /// "completed", "late" or "cancelled".
    pub outcome: &'static str,
}

pub struct Coordinator {
    config: Arc<Config>,
    worker_config_yaml: String,
    /// Jobs with inline credentials: sent only to workers holding one of their targets.
    secret_jobs: BTreeSet<String>,
    grace: Duration,
    strategy: Box<dyn Strategy>,
    loads: Loads,
    /// Until then, nothing is placed (see [`Settings::settle`]).
    settle_until: Option<Instant>,
    started: Instant,
    last_rebalance: Instant,
    rebalance_every: Duration,
    groups: HashMap<String, BTreeMap<String, Vec<TargetGroup>>>,
    jobs: BTreeMap<String, JobTargets>,
    workers: BTreeMap<String, WorkerState>,
    next_generation: u64,
    /// Per job: each group's relabeling result, by (provider, group source).
    group_cache: HashMap<String, GroupCache>,
    /// In-flight handoffs by target id.
    handoffs: HashMap<String, Handoff>,
    handoff_log: std::collections::VecDeque<HandoffRecord>,
    fences: FenceBook,
    fence_log: std::collections::VecDeque<FenceRecord>,
    /// The lease every connected worker is granted, renewed every third of it.
    lease: Duration,
    view: watch::Sender<Arc<View>>,
    metrics: Arc<Metrics>,
}

impl Coordinator {
    pub fn new(
        config: Arc<Config>,
        settings: Settings,
        metrics: Arc<Metrics>,
        loads: Loads,
    ) -> (Self, watch::Receiver<Arc<View>>) {
        let (view, rx) = watch::channel(Arc::new(View {
            config: config.clone(),
            ..View::default()
        }));
        let worker_config_yaml = config.for_workers().to_yaml();
        let secret_jobs = config.jobs_with_inline_secrets();
        let now = Instant::now();
        let c = Coordinator {
            config,
            worker_config_yaml,
            secret_jobs,
            grace: settings.grace,
            strategy: settings.strategy,
            loads,
            settle_until: Some(now + settings.settle),
            started: now,
            last_rebalance: now,
            rebalance_every: settings.rebalance_every,
            groups: HashMap::new(),
            jobs: BTreeMap::new(),
            workers: BTreeMap::new(),
            // Start from the wall clock so a restarted master never reuses a generation a
            // worker has already applied.
            next_generation: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(1),
            group_cache: HashMap::new(),
            handoffs: HashMap::new(),
            handoff_log: std::collections::VecDeque::new(),
            fences: FenceBook::new(settings.fence_timeout),
            fence_log: std::collections::VecDeque::new(),
            lease: lease_for(settings.grace),
            view,
            metrics,
        };
        (c, rx)
    }

    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let mut tick = tokio::time::interval((self.lease / 3).min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_check = Instant::now();
        loop {
            let next_expiry = self.workers.values().filter_map(|w| w.expires).min();
            let first = tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => return,
                },
                _ = sleep_until_opt(next_expiry) => None,
                _ = tick.tick() => {
                    self.renew_leases();
                    let settling = self.settle_until.is_some();
                    let due = self.last_rebalance.elapsed() >= self.rebalance_every;
                    // A finished fence is published (explain) by the reconcile below.
                    let fences_done = self.finish_fences();
                    // Once a second at least while settling; rebalancing when due.
                    if !(due
                        || fences_done
                        || settling && last_check.elapsed() >= Duration::from_secs(1))
                    {
                        continue;
                    }
                    last_check = Instant::now();
                    None
                }
            };
            if let Some(ev) = first {
                self.handle(ev);
                let mut n = 1;
                while n < MAX_BATCH {
                    match events.try_recv() {
                        Ok(ev) => self.handle(ev),
                        Err(_) => break,
                    }
                    n += 1;
                }
            }
            self.expire_workers();
            self.finish_fences();
            self.reconcile();
        }
    }

    /// Renews the lease of every worker that has this session's snapshot (a worker takes a
    /// lease only after applying it, so a Lease before the snapshot would be ignored anyway).
    fn renew_leases(&self) {
        let lease = Lease {
            duration_ms: self.lease.as_millis() as i64,
        };
        for w in self.workers.values().filter(|w| !w.needs_snapshot) {
            if let Some(tx) = &w.tx {
                // A full outbox means a worker that is not reading: it will be dropped by the
                // next delta; a missed lease only delays its samples.
                let _ = tx.try_send(Ok(MasterMessage {
                    msg: Some(Msg::Lease(lease)),
                }));
            }
        }
    }

    /// Records fences that are over (released everywhere, or past their deadline); returns
    /// whether any was.
    fn finish_fences(&mut self) -> bool {
        let endpoints: Vec<String> = self
            .config
            .remote_write
            .iter()
            .map(|r| r.display_name())
            .collect();
        let now = unix_ms(SystemTime::now());
        let finished = self.fences.finish(now, &endpoints);
        let any = !finished.is_empty();
        for r in finished {
            if r.state == "timed_out" {
                tracing::warn!(target = %r.target_id, from = %r.from, to = %r.to, released = ?r.released, "handoff fence timed out: the old owner did not report delivery in time");
            }
            self.metrics
                .fences
                .get_or_create(&vec![("outcome".into(), r.state.into())])
                .inc();
            if self.fence_log.len() >= FENCE_HISTORY {
                self.fence_log.pop_front();
            }
            self.fence_log.push_back(r);
        }
        self.fences.expire(now);
        self.metrics
            .fences_waiting
            .set(self.fences.waiting_count() as i64);
        any
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Discovery(u) => {
                self.groups
                    .entry(u.job.clone())
                    .or_default()
                    .insert(u.provider, u.groups);
                self.recompute_job(&u.job);
            }
            Event::Connected {
                worker,
                conn,
                tx,
                scraping,
                capacity_series,
            } => {
                tracing::info!(%worker, conn, scraping = scraping.len(), "worker connected");
                let st = WorkerState {
                    conn,
                    tx: Some(tx),
                    connected_since: SystemTime::now(),
                    expires: None,
                    needs_snapshot: true,
                    sent_generation: 0,
                    acked_generation: 0,
                    assigned: BTreeSet::new(),
                    resumed: scraping.len(),
                    claimed: scraping.into_iter().collect(),
                    capacity_series,
                    draining: false,
                    starts: HashMap::new(),
                    secret_jobs: BTreeSet::new(),
                };
                // A reconnect replaces the previous session, whose stream ends when its
                // sender is dropped here.
                self.workers.insert(worker, st);
            }
            Event::Draining { worker, conn } => {
                if let Some(w) = self.workers.get_mut(&worker).filter(|w| w.conn == conn) {
                    tracing::info!(%worker, targets = w.assigned.len(), "worker draining");
                    w.draining = true;
                }
            }
            Event::Disconnected { worker, conn } => {
                if let Some(w) = self.workers.get_mut(&worker).filter(|w| w.conn == conn) {
                    tracing::warn!(%worker, grace = ?self.grace, "worker disconnected");
                    w.tx = None;
                    w.expires = Some(Instant::now() + self.grace);
                }
            }
            Event::ConfigChanged(config) => {
                tracing::info!(
                    jobs = config.scrape_configs.len(),
                    "applying new configuration"
                );
                self.worker_config_yaml = config.for_workers().to_yaml();
                self.secret_jobs = config.jobs_with_inline_secrets();
                self.config = config;
                let jobs: Vec<String> = self
                    .config
                    .scrape_configs
                    .iter()
                    .map(|s| s.job_name.clone())
                    .collect();
                self.groups.retain(|job, _| jobs.contains(job));
                self.jobs.clear();
                // Relabel rules may have changed: nothing cached is valid.
                self.group_cache.clear();
                for job in &jobs {
                    self.recompute_job(job);
                }
                for w in self.workers.values_mut() {
                    w.needs_snapshot = true;
                }
            }
            Event::Ack {
                worker,
                conn,
                generation,
            } => {
                if let Some(w) = self.workers.get_mut(&worker).filter(|w| w.conn == conn) {
                    w.acked_generation = w.acked_generation.max(generation);
                    self.fences.acked(&worker, generation);
                }
            }
            Event::Delivered {
                worker,
                conn,
                target_id,
                at_ms,
                endpoints,
            } => {
                if self.workers.get(&worker).is_none_or(|w| w.conn != conn) {
                    return;
                }
                let Some((to, released)) = self
                    .fences
                    .delivered(&worker, &target_id, at_ms, &endpoints)
                else {
                    return;
                };
                tracing::debug!(target = %target_id, from = %worker, %to, endpoints = ?released, "relaying delivery to the new owner");
                if let Some(tx) = self.workers.get(&to).and_then(|w| w.tx.as_ref()) {
                    // A lost Release (full outbox: the worker is dropped and gets a snapshot,
                    // which lists the released endpoints) costs nothing.
                    let _ = tx.try_send(Ok(MasterMessage {
                        msg: Some(Msg::Release(Release {
                            target_id,
                            at_ms,
                            endpoints: released,
                        })),
                    }));
                }
            }
        }
    }

    /// Recomputes a job's targets. Each group's relabeling result is kept while the group is
    /// unchanged, so one pod's event relabels one pod, not the whole job.
    fn recompute_job(&mut self, job: &str) {
        let Some(sc) = self.config.scrape_config(job) else {
            return;
        };
        let mut old = self.group_cache.remove(job).unwrap_or_default();
        let mut cache: GroupCache = HashMap::new();
        let mut order: Vec<(String, String)> = Vec::new();
        let mut uncached: Vec<targets::GroupTargets> = Vec::new();
        for (provider, groups) in self.groups.get(job).into_iter().flat_map(|p| p.iter()) {
            for g in groups {
                let key = (provider.clone(), g.source.clone());
                if cache.contains_key(&key) {
                    // Two groups with one source: no caching for the second.
                    uncached.push(targets::compute_group(sc, g));
                    continue;
                }
                let computed = match old.remove(&key) {
                    Some((prev, t)) if prev == *g => t,
                    _ => targets::compute_group(sc, g),
                };
                cache.insert(key.clone(), (g.clone(), computed));
                order.push(key);
            }
        }
        let merged = targets::merge(sc, order.iter().map(|k| &cache[k].1).chain(uncached.iter()));
        self.group_cache.insert(job.to_string(), cache);
        self.jobs.insert(job.to_string(), merged);
    }

    fn expire_workers(&mut self) {
        let now = Instant::now();
        let before = self.workers.len();
        let mut gone = Vec::new();
        self.workers.retain(|id, w| {
            let keep = w.expires.is_none_or(|t| t > now);
            if !keep {
                tracing::warn!(worker = %id, "grace period over: reassigning its targets");
                let held: Vec<String> = w.assigned.iter().chain(&w.claimed).cloned().collect();
                gone.push((id.clone(), held));
            }
            keep
        });
        // Its targets go to others, fenced, with a cut kept for it in case it comes back (it
        // may still be scraping them, cut off from the master but not from its targets).
        for (id, held) in gone {
            let taken: std::collections::HashSet<&str> = self
                .workers
                .values()
                .flat_map(|w| w.assigned.iter().map(String::as_str))
                .collect();
            let held: Vec<String> = held
                .into_iter()
                .filter(|t| !taken.contains(t.as_str()))
                .collect();
            self.fences.worker_gone(&id, held);
        }
        if self.workers.len() != before {
            self.metrics.reassignments.inc();
        }
    }

    /// Places every target and brings each connected worker up to date.
    /// Whether the settle window is still open. It closes when its time is up, or early when
    /// only fresh workers (nothing to resume) have connected, so a new cluster starts at once.
    fn settling(&mut self) -> bool {
        let Some(until) = self.settle_until else {
            return false;
        };
        let connected: Vec<&WorkerState> =
            self.workers.values().filter(|w| w.tx.is_some()).collect();
        let all_fresh = !connected.is_empty() && connected.iter().all(|w| w.resumed == 0);
        if Instant::now() >= until
            || (all_fresh && self.started.elapsed() >= Duration::from_secs(1))
        {
            tracing::info!(workers = connected.len(), "placement settle window closed");
            self.settle_until = None;
            return false;
        }
        true
    }

    /// Places every target and brings each connected worker up to date.
    fn reconcile(&mut self) {
        if self.settling() {
            self.publish(HashMap::new(), &HashMap::new());
            return;
        }
        self.last_rebalance = Instant::now();
        // Draining workers get nothing new; if every worker is draining, nothing moves (there
        // is nowhere to move to, and stale markers for live series would be wrong).
        let mut members: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| !w.draining)
            .map(|(id, _)| id.clone())
            .collect();
        if members.is_empty() {
            members = self.workers.keys().cloned().collect();
        }
        let targets: Vec<Arc<ActiveTarget>> = self
            .jobs
            .values()
            .flat_map(|j| j.active.iter().cloned())
            .collect();
        // Current owners keep their targets while they have room (see placement::bounded).
        let index: HashMap<&str, usize> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_str(), i))
            .collect();
        // What the master sent beats what a worker claims in its hello (a claim can be stale:
        // the worker was away and its targets went elsewhere).
        let mut current: HashMap<&str, usize> = HashMap::new();
        let members_held = || {
            self.workers
                .iter()
                .filter_map(|(id, w)| index.get(id.as_str()).map(|&i| (i, w)))
        };
        for (i, w) in members_held() {
            for t in &w.assigned {
                current.entry(t.as_str()).or_insert(i);
            }
        }
        for (i, w) in members_held() {
            for t in &w.claimed {
                current.entry(t.as_str()).or_insert(i);
            }
        }
        let items: Vec<Item> = {
            let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
            if loads.len() > targets.len() * 2 + 1024 {
                // Forget reports of targets that no longer exist.
                let live: std::collections::HashSet<&str> =
                    targets.iter().map(|t| t.id.as_str()).collect();
                loads.retain(|id, _| live.contains(id.as_str()));
            }
            // A target not reported yet weighs what its job's reported targets weigh on
            // average (targets of a job tend to be alike), so its first report does not move it.
            let mut per_job: HashMap<&str, (u64, u64)> = HashMap::new();
            for t in &targets {
                if let Some(l) = loads.get(&t.id) {
                    let e = per_job.entry(t.job.as_str()).or_default();
                    e.0 += placement::effective_weight(Some(l.series));
                    e.1 += 1;
                }
            }
            targets
                .iter()
                .map(|t| Item {
                    key: t.placement_key,
                    current: current.get(t.id.as_str()).copied(),
                    group: t.replica_of,
                    weight: match loads.get(&t.id) {
                        Some(l) => placement::effective_weight(Some(l.series)),
                        None => per_job
                            .get(t.job.as_str())
                            .map_or(placement::DEFAULT_WEIGHT, |(sum, n)| {
                                placement::effective_weight(Some(sum / n))
                            }),
                    },
                })
                .collect()
        };
        let member_list: Vec<placement::Member> = members
            .iter()
            .map(|m| {
                let w = &self.workers[m];
                placement::Member {
                    id: m.clone(),
                    capacity: w.capacity_series,
                    fresh: w.assigned.is_empty() && w.claimed.is_empty(),
                }
            })
            .collect();
        let placed = self.strategy.place(&member_list, &items);
        let mut desired: Desired = self
            .workers
            .keys()
            .map(|m| (m.clone(), BTreeMap::new()))
            .collect();
        let mut owners = HashMap::new();
        for (t, owner) in targets.iter().zip(placed) {
            if let Some(owner) = owner.map(|i| members[i].as_str()) {
                owners.insert(t.id.clone(), owner.to_string());
                if let Some(set) = desired.get_mut(owner) {
                    set.insert(t.id.clone(), t.clone());
                }
            }
        }

        // Handoffs whose premise no longer holds are cancelled: the target moved again, went
        // away, or either side is gone. The old owner, if it still has the target, keeps it.
        let connected = |id: &str| self.workers.get(id).is_some_and(|w| w.tx.is_some());
        let mut cancelled = Vec::new();
        self.handoffs.retain(|id, h| {
            let keep = desired
                .get(h.to.as_str())
                .is_some_and(|d| d.contains_key(id.as_str()))
                && connected(&h.to)
                && connected(&h.from)
                && self.workers[&h.from].assigned.contains(id);
            if !keep {
                tracing::info!(target = %id, from = %h.from, to = %h.to,
                    to_wanted = desired.get(h.to.as_str()).is_some_and(|d| d.contains_key(id.as_str())),
                    to_connected = connected(&h.to), from_connected = connected(&h.from),
                    "handoff cancelled");
                cancelled.push((id.clone(), h.clone()));
            }
            keep
        });
        for (id, h) in cancelled {
            self.metrics
                .handoffs
                .get_or_create(&vec![("outcome".into(), "cancelled".into())])
                .inc();
            let stays_at_to = connected(&h.to)
                && desired
                    .get(h.to.as_str())
                    .is_some_and(|d| d.contains_key(id.as_str()));
            if stays_at_to && !connected(&h.from) {
                // The old owner went away mid-handoff; it may still be scraping (a partition).
                if h.to_generation != 0 {
                    // The new owner has it from `at`: keep its fence, cut the old owner there.
                    self.fences.keep_as_cut(&id, &h.from, h.at_ms);
                } else {
                    // Not sent yet: it goes to the new owner as a target taken from the old.
                    self.fences.cancel(&id, &h.to, h.at_ms);
                    self.fences.worker_gone(&h.from, [id.clone()]);
                }
            } else {
                self.fences.cancel(&id, &h.to, h.at_ms);
            }
            log_handoff(&mut self.handoff_log, id, &h, "cancelled");
        }
        // New moves between two connected workers become handoffs.
        let now_ms = unix_ms(SystemTime::now());
        // Who scrapes a target now, and from when: a worker that has started it beats one that
        // holds it with a start instant still ahead (an earlier handoff to it), which in turn
        // hands it on no earlier than that instant.
        let mut holders: HashMap<&str, (&str, i64)> = HashMap::new();
        for (wid, w) in self.workers.iter().filter(|(_, w)| w.tx.is_some()) {
            for t in &w.assigned {
                let since = w
                    .starts
                    .get(t)
                    .copied()
                    .filter(|at| *at > now_ms)
                    .unwrap_or(0);
                let better = holders.get(t.as_str()).is_none_or(|(_, s)| since < *s);
                if better {
                    holders.insert(t.as_str(), (wid.as_str(), since));
                }
            }
        }
        for (to, want) in &desired {
            if !connected(to) {
                continue;
            }
            let to_state = &self.workers[to];
            for id in want.keys() {
                if to_state.assigned.contains(id) || self.handoffs.contains_key(id) {
                    continue;
                }
                if let Some((from, since)) = holders.get(id.as_str()).filter(|(f, _)| *f != to) {
                    let at_ms = (now_ms + HANDOFF_LEAD.as_millis() as i64).max(*since);
                    self.fences.open(
                        id,
                        from,
                        to,
                        at_ms,
                        interval_of(&self.config, &want[id].job),
                    );
                    self.handoffs.insert(
                        id.to_string(),
                        Handoff {
                            from: from.to_string(),
                            to: to.to_string(),
                            at_ms,
                            to_generation: 0,
                        },
                    );
                }
            }
        }

        let mut broken = Vec::new();
        let mut completed: Vec<String> = Vec::new();
        let worker_ids: Vec<String> = self.workers.keys().cloned().collect();
        for id in &worker_ids {
            let Some(tx) = self.workers[id].tx.clone() else {
                continue;
            };
            let want = &desired[id];
            // Targets this worker keeps while handing them off, and those it may now stop.
            let mut keep: BTreeMap<&str, i64> = BTreeMap::new();
            let mut ready: Vec<(String, i64)> = Vec::new();
            for (t, h) in &self.handoffs {
                if h.from != *id {
                    continue;
                }
                let to = &self.workers[&h.to];
                if h.to_generation != 0 && to.acked_generation >= h.to_generation {
                    ready.push((t.clone(), h.at_ms));
                } else {
                    keep.insert(t.as_str(), h.at_ms);
                }
            }
            let start_at = |t: &str| {
                self.handoffs
                    .get(t)
                    .filter(|h| h.to == *id)
                    .map_or(0, |h| h.at_ms)
            };
            // Targets taken from a worker that went away start fenced at the new owner.
            let new_here: Vec<&String> = want
                .keys()
                .filter(|k| {
                    !self.workers[id].assigned.contains(*k)
                        && self.handoffs.get(*k).is_none_or(|h| h.to != *id)
                })
                .collect();
            for k in new_here {
                self.fences
                    .placed(k, id, now_ms, interval_of(&self.config, &want[k].job));
            }
            let fences = &self.fences;
            let wire = |tid: &str, t: &ActiveTarget| {
                let mut wt = wire_target(t);
                wt.start_at_ms = start_at(tid);
                if let Some(f) = fences.fence_at(tid, id) {
                    wt.start_at_ms = wt.start_at_ms.max(f.at_ms);
                    wt.fence_until_ms = f.until_ms;
                    wt.released = f.released.iter().cloned().collect();
                }
                wt
            };
            let w = &self.workers[id];
            let generation = self.next_generation + 1;
            // A target of a job whose credentials this worker was not sent comes with a
            // snapshot that carries them (deltas carry no config).
            let needs_credentials = want.iter().any(|(k, t)| {
                !w.assigned.contains(k)
                    && self.secret_jobs.contains(&t.job)
                    && !w.secret_jobs.contains(&t.job)
            });
            // A worker holding the credentials of a job it no longer has targets of gets them
            // taken back with a snapshot, but only in a cycle that changes nothing else for it:
            // a snapshot stops absent targets without stale markers, which is right for a
            // handoff and wrong for a target that is gone.
            let quiet = keep.is_empty()
                && ready.is_empty()
                && want.len() == w.assigned.len()
                && want.keys().all(|k| w.assigned.contains(k));
            let revoke = quiet
                && !w.secret_jobs.is_empty()
                && w.secret_jobs
                    .iter()
                    .any(|j| !want.values().any(|t| &t.job == j));
            let snapshot_this_cycle = w.needs_snapshot || needs_credentials || revoke;
            let mut secret_jobs_sent = None;
            let (msg_ok, assigned, sent_to_new): (bool, BTreeSet<String>, Vec<String>) =
                if snapshot_this_cycle {
                    // A new session: everything it should scrape, including targets it is
                    // still handing off (they stay until the new owner has acknowledged).
                    let mut all: Vec<WireTarget> = Vec::new();
                    let mut assigned = BTreeSet::new();
                    let mut sent = Vec::new();
                    for (tid, t) in want {
                        let wt = wire(tid, t);
                        if start_at(tid) != 0 {
                            sent.push(tid.to_string());
                        }
                        all.push(wt);
                        assigned.insert(tid.to_string());
                    }
                    let mut jobs_here: BTreeSet<String> = want
                        .values()
                        .filter(|t| self.secret_jobs.contains(&t.job))
                        .map(|t| t.job.clone())
                        .collect();
                    let held: Vec<&str> = keep
                        .keys()
                        .copied()
                        .chain(ready.iter().map(|(t, _)| t.as_str()))
                        .collect();
                    for tid in held {
                        if let Some(t) = self.find_target(tid) {
                            if self.secret_jobs.contains(&t.job) {
                                jobs_here.insert(t.job.clone());
                            }
                            all.push(wire_target(&t));
                            assigned.insert(tid.to_string());
                        }
                    }
                    ready.clear(); // handed off with the next delta, after this snapshot's ack
                    let cuts = self.cuts_for(id, generation, now_ms, &assigned, &owners);
                    let withheld: BTreeSet<String> =
                        self.secret_jobs.difference(&jobs_here).cloned().collect();
                    let yaml = if withheld.is_empty() {
                        std::borrow::Cow::Borrowed(&self.worker_config_yaml)
                    } else {
                        std::borrow::Cow::Owned(self.config.for_worker(&withheld).to_yaml())
                    };
                    let ok = send_snapshot(&tx, generation, &yaml, all, cuts);
                    secret_jobs_sent = Some(jobs_here);
                    (ok, assigned, sent)
                } else {
                    let added: Vec<WireTarget> = want
                        .iter()
                        .filter(|(k, _)| !w.assigned.contains(*k))
                        .map(|(k, t)| wire(k, t))
                        .collect();
                    let sent: Vec<String> = added
                        .iter()
                        .filter(|t| start_at(&t.id) != 0)
                        .map(|t| t.id.clone())
                        .collect();
                    let ready_ids: std::collections::HashSet<&str> =
                        ready.iter().map(|(t, _)| t.as_str()).collect();
                    let (handed_off, removed): (Vec<String>, Vec<String>) = w
                        .assigned
                        .iter()
                        .filter(|k| {
                            // Never taken from a connected worker for one that is not
                            // connected (in its grace period): the old owner keeps scraping
                            // until a handoff to a live worker is possible.
                            let owner_away = owners.get(k.as_str()).is_some_and(|o| {
                                self.workers.get(o).is_none_or(|w| w.tx.is_none())
                            });
                            !want.contains_key(k.as_str())
                                && !keep.contains_key(k.as_str())
                                && !ready_ids.contains(k.as_str())
                                && !owner_away
                        })
                        .cloned()
                        .partition(|k| owners.contains_key(k));
                    if added.is_empty()
                        && removed.is_empty()
                        && handed_off.is_empty()
                        && ready.is_empty()
                    {
                        continue;
                    }
                    let mut assigned = w.assigned.clone();
                    for r in removed.iter().chain(&handed_off) {
                        assigned.remove(r);
                    }
                    for (r, _) in &ready {
                        assigned.remove(r);
                    }
                    assigned.extend(added.iter().map(|t| t.id.clone()));
                    let delta = Delta {
                        generation,
                        base_generation: w.sent_generation,
                        added,
                        removed,
                        handed_off,
                        handoffs: ready
                            .iter()
                            .map(|(t, at)| HandOff {
                                target_id: t.clone(),
                                stop_at_ms: *at,
                            })
                            .collect(),
                    };
                    let ok = tx
                        .try_send(Ok(MasterMessage {
                            msg: Some(Msg::Delta(delta)),
                        }))
                        .is_ok();
                    (ok, assigned, sent)
                };
            self.next_generation = generation;
            let w = self.workers.get_mut(id).expect("iterating its id");
            if snapshot_this_cycle {
                // From now on the master knows what the worker holds.
                w.claimed.clear();
            }
            if let Some(jobs) = secret_jobs_sent {
                w.secret_jobs = jobs;
            }
            w.needs_snapshot = false;
            w.sent_generation = generation;
            w.assigned = assigned;
            let assigned = &w.assigned;
            w.starts
                .retain(|t, at| *at > now_ms - 60_000 && assigned.contains(t));
            for t in sent_to_new {
                if let Some(h) = self.handoffs.get_mut(&t) {
                    h.to_generation = generation;
                    w.starts.insert(t, h.at_ms);
                }
            }
            if msg_ok {
                completed.extend(ready.into_iter().map(|(t, _)| t));
            } else {
                // The worker is not reading (full queue) or gone: drop the session. It
                // reconnects and gets a fresh snapshot, which is always correct.
                broken.push(id.clone());
            }
        }
        for t in completed {
            if let Some(h) = self.handoffs.remove(&t) {
                let late = unix_ms(SystemTime::now()) >= h.at_ms;
                let outcome = if late { "late" } else { "completed" };
                tracing::debug!(target = %t, from = %h.from, to = %h.to, at = h.at_ms, outcome, "handoff");
                if late {
                    tracing::warn!(target = %t, from = %h.from, to = %h.to, "handoff acknowledged after its instant: a slot may be missed or doubled");
                }
                self.metrics
                    .handoffs
                    .get_or_create(&vec![("outcome".into(), outcome.into())])
                    .inc();
                log_handoff(&mut self.handoff_log, t, &h, outcome);
            }
        }
        for id in broken {
            if let Some(w) = self.workers.get_mut(&id) {
                tracing::warn!(worker = %id, "worker not keeping up with assignments; dropping its stream");
                w.tx = None;
                w.expires = Some(Instant::now() + self.grace);
            }
        }
        self.publish(owners, &desired);
    }

    /// The cuts for a worker's new session: targets taken from it while it was away (with the
    /// new owner's fence), and targets it claims in its hello that others own now and the
    /// master knows no boundary for (a master restart in between): everything it holds of those
    /// is dropped, since another worker has been sending them.
    fn cuts_for(
        &mut self,
        id: &str,
        generation: u64,
        now_ms: i64,
        assigned: &BTreeSet<String>,
        owners: &HashMap<String, String>,
    ) -> Vec<Cut> {
        let mut cuts = self.fences.cuts_for(id, generation, now_ms);
        let known: std::collections::HashSet<String> =
            cuts.iter().map(|c| c.target_id.clone()).collect();
        for t in &self.workers[id].claimed {
            let elsewhere = owners.get(t).is_some_and(|o| o != id);
            if elsewhere && !assigned.contains(t) && !known.contains(t) {
                cuts.push(Cut {
                    target_id: t.clone(),
                    at_ms: now_ms,
                    send_before: false,
                });
            }
        }
        if !cuts.is_empty() {
            tracing::info!(worker = %id, cuts = cuts.len(), "telling a returning worker which of its targets moved");
        }
        cuts
    }

    fn find_target(&self, id: &str) -> Option<Arc<ActiveTarget>> {
        self.jobs
            .values()
            .flat_map(|j| j.active.iter())
            .find(|t| t.id == id)
            .cloned()
    }

    fn publish(&self, owners: HashMap<String, String>, desired: &Desired) {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        let now_i = Instant::now();
        let now_s = SystemTime::now();
        let workers: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(id, w)| WorkerView {
                id: id.clone(),
                connected: w.tx.is_some(),
                targets: desired.get(id).map_or(0, |d| d.len()),
                sent_generation: w.sent_generation,
                acked_generation: w.acked_generation,
                connected_since_ms: ms(w.connected_since),
                expires_at_ms: w
                    .expires
                    .map(|e| ms(now_s + e.saturating_duration_since(now_i))),
                capacity_series: w.capacity_series,
            })
            .collect();
        self.metrics
            .handoffs_in_flight
            .set(self.handoffs.len() as i64);
        if let Some(last) = self.handoffs.values().map(|h| h.at_ms).max() {
            let secs = last as f64 / 1000.0;
            if secs > self.metrics.handoff_last_instant.get() {
                self.metrics.handoff_last_instant.set(secs);
            }
        }
        let active: usize = self.jobs.values().map(|j| j.active.len()).sum();
        let dropped: usize = self.jobs.values().map(|j| j.dropped.len()).sum();
        self.metrics.set_state(
            workers.iter().filter(|w| w.connected).count(),
            workers.len(),
            active,
            dropped,
        );
        self.view.send_replace(Arc::new(View {
            jobs: self.jobs.clone(),
            owners,
            workers,
            config: self.config.clone(),
            fences: Arc::new(
                self.fence_log
                    .iter()
                    .cloned()
                    .chain(self.fences.waiting())
                    .collect(),
            ),
            handoffs: Arc::new(
                self.handoff_log
                    .iter()
                    .cloned()
                    .chain(self.handoffs.iter().map(|(t, h)| HandoffRecord {
                        target_id: t.clone(),
                        from: h.from.clone(),
                        to: h.to.clone(),
                        at_ms: h.at_ms,
                        outcome: "pending",
                    }))
                    .collect(),
            ),
        }));
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn wire_target(t: &ActiveTarget) -> WireTarget {
    WireTarget {
        id: t.id.clone(),
        job: t.job.clone(),
        labels: t
            .labels
            .iter()
            .map(|l| WireLabel {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect(),
        placement_key: format!("{:016x}", t.placement_key),
        start_at_ms: 0,
        fence_until_ms: 0,
        released: Vec::new(),
    }
}

fn log_handoff(
    log: &mut std::collections::VecDeque<HandoffRecord>,
    target_id: String,
    h: &Handoff,
    outcome: &'static str,
) {
    if log.len() >= HANDOFF_HISTORY {
        log.pop_front();
    }
    log.push_back(HandoffRecord {
        target_id,
        from: h.from.clone(),
        to: h.to.clone(),
        at_ms: h.at_ms,
        outcome,
    });
}

type GroupCache = HashMap<(String, String), (TargetGroup, targets::GroupTargets)>;

/// Worker id → the targets placement gives it, by target id.
type Desired = HashMap<String, BTreeMap<String, Arc<ActiveTarget>>>;

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The scrape interval of a target's job (what its fence's default deadline is made of).
fn interval_of(config: &Config, job: &str) -> Duration {
    config
        .scrape_config(job)
        .map_or(Duration::from_secs(60), |c| c.interval().0)
}

/// Sends a snapshot in chunks; returns false if the worker's queue could not take it.
fn send_snapshot(
    tx: &WorkerTx,
    generation: u64,
    config_yaml: &str,
    all: Vec<WireTarget>,
    cuts: Vec<Cut>,
) -> bool {
    let mut cuts = Some(cuts);
    let mut chunks: Vec<Vec<WireTarget>> = Vec::new();
    let mut it = all.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(SNAPSHOT_CHUNK).collect());
    }
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let n = chunks.len();
    for (i, targets) in chunks.into_iter().enumerate() {
        let snap = Snapshot {
            generation,
            config_yaml: if i == 0 {
                config_yaml.to_string()
            } else {
                String::new()
            },
            targets,
            last_chunk: i + 1 == n,
            cuts: cuts.take().unwrap_or_default(),
        };
        if tx
            .try_send(Ok(MasterMessage {
                msg: Some(Msg::Snapshot(snap)),
            }))
            .is_err()
        {
            return false;
        }
    }
    true
}
