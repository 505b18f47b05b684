//! The coordinator: the single writer of the master's state.
//!
//! It owns discovered groups, the computed targets, worker membership and what each worker has
//! been sent. Every input (discovery updates, worker connects, acks, disconnects, grace timers)
//! is an [`Event`] on one channel; after draining a burst of events it reconciles once: place
//! every target, then send each connected worker a snapshot (new session) or a delta (changed
//! assignment). Readers (HTTP) get an immutable [`View`] through a `watch` channel and never
//! touch the writer's state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promshard_model::config::Config;
use promshard_proto::control::{
    Delta, MasterMessage, Snapshot, Target as WireTarget, master_message::Msg,
};
use promshard_proto::prometheus::Label as WireLabel;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::Status;

use crate::control::Loads;
use crate::discovery::{TargetGroup, Update};
use crate::metrics::Metrics;
use crate::placement::{self, Item, Strategy};
use crate::targets::{self, ActiveTarget, JobTargets};

/// Targets per snapshot message; keeps each message far below the gRPC size limit.
const SNAPSHOT_CHUNK: usize = 5_000;
/// Events handled before a reconcile is forced, so a flood cannot starve workers of deltas.
const MAX_BATCH: usize = 10_000;

pub type WorkerTx = mpsc::Sender<Result<MasterMessage, Status>>;

/// How often weights from load reports are re-read and placement recomputed even when nothing
/// else happened. Weight hysteresis (`placement::effective_weight`) keeps this from moving
/// targets on ordinary churn.
const REBALANCE_EVERY: Duration = Duration::from_secs(30);

/// How placement behaves.
pub struct Settings {
    /// How long a disconnected worker keeps its targets.
    pub grace: Duration,
    pub strategy: Box<dyn Strategy>,
    /// After the master starts, how long it waits for workers to reconnect and report before
    /// placing anything. Workers keep scraping their persisted assignments meanwhile, so a
    /// restarted master moves no target just because workers reconnect one by one.
    pub settle: Duration,
}

#[derive(Debug)]
pub enum Event {
    Discovery(Update),
    Connected {
        worker: String,
        conn: u64,
        tx: WorkerTx,
        scraping: Vec<String>,
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
}

/// Immutable snapshot of the master's state for readers.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub jobs: BTreeMap<String, JobTargets>,
    /// Target id → owning worker.
    pub owners: HashMap<String, String>,
    pub workers: Vec<WorkerView>,
    pub config: Arc<Config>,
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
    /// Targets the worker said (in its hello) it was scraping.
    resumed: usize,
}

pub struct Coordinator {
    config: Arc<Config>,
    worker_config_yaml: String,
    grace: Duration,
    strategy: Box<dyn Strategy>,
    loads: Loads,
    /// Until then, nothing is placed (see [`Settings::settle`]).
    settle_until: Option<Instant>,
    started: Instant,
    last_rebalance: Instant,
    groups: HashMap<String, BTreeMap<String, Vec<TargetGroup>>>,
    jobs: BTreeMap<String, JobTargets>,
    workers: BTreeMap<String, WorkerState>,
    next_generation: u64,
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
        let now = Instant::now();
        let c = Coordinator {
            config,
            worker_config_yaml,
            grace: settings.grace,
            strategy: settings.strategy,
            loads,
            settle_until: Some(now + settings.settle),
            started: now,
            last_rebalance: now,
            groups: HashMap::new(),
            jobs: BTreeMap::new(),
            workers: BTreeMap::new(),
            // Start from the wall clock so a restarted master never reuses a generation a
            // worker has already applied.
            next_generation: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(1),
            view,
            metrics,
        };
        (c, rx)
    }

    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let next_expiry = self.workers.values().filter_map(|w| w.expires).min();
            let first = tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => return,
                },
                _ = sleep_until_opt(next_expiry) => None,
                _ = tick.tick() => {
                    let settling = self.settle_until.is_some();
                    let due = self.last_rebalance.elapsed() >= REBALANCE_EVERY;
                    if !settling && !due {
                        continue;
                    }
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
            self.reconcile();
        }
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
                };
                // A reconnect replaces the previous session, whose stream ends when its
                // sender is dropped here.
                self.workers.insert(worker, st);
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
                self.config = config;
                let jobs: Vec<String> = self
                    .config
                    .scrape_configs
                    .iter()
                    .map(|s| s.job_name.clone())
                    .collect();
                self.groups.retain(|job, _| jobs.contains(job));
                self.jobs.clear();
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
                }
            }
        }
    }

    fn recompute_job(&mut self, job: &str) {
        let Some(sc) = self.config.scrape_config(job) else {
            return;
        };
        let groups: Vec<&TargetGroup> = self
            .groups
            .get(job)
            .into_iter()
            .flat_map(|p| p.values().flatten())
            .collect();
        self.jobs
            .insert(job.to_string(), targets::compute_job(sc, &groups));
    }

    fn expire_workers(&mut self) {
        let now = Instant::now();
        let before = self.workers.len();
        self.workers.retain(|id, w| {
            let keep = w.expires.is_none_or(|t| t > now);
            if !keep {
                tracing::warn!(worker = %id, "grace period over: reassigning its targets");
            }
            keep
        });
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
        let members: Vec<String> = self.workers.keys().cloned().collect();
        let targets: Vec<&Arc<ActiveTarget>> =
            self.jobs.values().flat_map(|j| j.active.iter()).collect();
        let items: Vec<Item> = {
            let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
            if loads.len() > targets.len() * 2 + 1024 {
                // Forget reports of targets that no longer exist.
                let live: std::collections::HashSet<&str> =
                    targets.iter().map(|t| t.id.as_str()).collect();
                loads.retain(|id, _| live.contains(id.as_str()));
            }
            targets
                .iter()
                .map(|t| Item {
                    key: t.placement_key,
                    weight: placement::effective_weight(loads.get(&t.id).map(|l| l.series)),
                })
                .collect()
        };
        let placed = self.strategy.place(&members, &items);
        let mut desired: HashMap<&str, BTreeMap<&str, &Arc<ActiveTarget>>> = members
            .iter()
            .map(|m| (m.as_str(), BTreeMap::new()))
            .collect();
        let mut owners = HashMap::new();
        for (t, owner) in targets.iter().zip(placed) {
            if let Some(owner) = owner.map(|i| members[i].as_str()) {
                owners.insert(t.id.clone(), owner.to_string());
                if let Some(set) = desired.get_mut(owner) {
                    set.insert(t.id.as_str(), *t);
                }
            }
        }
        let mut broken = Vec::new();
        for (id, w) in self.workers.iter_mut() {
            let Some(tx) = w.tx.clone() else { continue };
            let want = &desired[id.as_str()];
            let ok = if w.needs_snapshot {
                w.needs_snapshot = false;
                self.next_generation += 1;
                w.sent_generation = self.next_generation;
                w.assigned = want.keys().map(|s| s.to_string()).collect();
                send_snapshot(
                    &tx,
                    self.next_generation,
                    &self.worker_config_yaml,
                    want.values(),
                )
            } else {
                let added: Vec<&Arc<ActiveTarget>> = want
                    .iter()
                    .filter(|(k, _)| !w.assigned.contains(**k))
                    .map(|(_, t)| *t)
                    .collect();
                let (handed_off, removed): (Vec<String>, Vec<String>) = w
                    .assigned
                    .iter()
                    .filter(|k| !want.contains_key(k.as_str()))
                    .cloned()
                    .partition(|k| owners.contains_key(k));
                if added.is_empty() && removed.is_empty() && handed_off.is_empty() {
                    continue;
                }
                let base = w.sent_generation;
                self.next_generation += 1;
                w.sent_generation = self.next_generation;
                for r in removed.iter().chain(&handed_off) {
                    w.assigned.remove(r);
                }
                w.assigned.extend(added.iter().map(|t| t.id.clone()));
                let delta = Delta {
                    generation: self.next_generation,
                    base_generation: base,
                    added: added.iter().map(|t| wire_target(t)).collect(),
                    removed,
                    handed_off,
                };
                tx.try_send(Ok(MasterMessage {
                    msg: Some(Msg::Delta(delta)),
                }))
                .is_ok()
            };
            if !ok {
                // The worker is not reading (full queue) or gone: drop the session. It
                // reconnects and gets a fresh snapshot, which is always correct.
                broken.push(id.clone());
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

    fn publish(
        &self,
        owners: HashMap<String, String>,
        desired: &HashMap<&str, BTreeMap<&str, &Arc<ActiveTarget>>>,
    ) {
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
                targets: desired.get(id.as_str()).map_or(0, |d| d.len()),
                sent_generation: w.sent_generation,
                acked_generation: w.acked_generation,
                connected_since_ms: ms(w.connected_since),
                expires_at_ms: w
                    .expires
                    .map(|e| ms(now_s + e.saturating_duration_since(now_i))),
            })
            .collect();
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
    }
}

/// Sends a snapshot in chunks; returns false if the worker's queue could not take it.
fn send_snapshot<'a>(
    tx: &WorkerTx,
    generation: u64,
    config_yaml: &str,
    targets: impl Iterator<Item = &'a &'a Arc<ActiveTarget>>,
) -> bool {
    let all: Vec<WireTarget> = targets.map(|t| wire_target(t)).collect();
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
