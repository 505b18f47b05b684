//! Applying a configuration to the running master: discovery is brought in line with it (only
//! the jobs whose discovery changed restart) and the coordinator gets it, which recomputes
//! every job and pushes a fresh snapshot carrying the new config to every connected worker.
//!
//! The running config is the file's (through [`ConfigStore`](crate::config_store)) plus the
//! jobs generated from prometheus-operator resources (`prometheus_cr`, see
//! [`crate::discovery::prometheus_cr`]). Both kinds of change go through the one
//! [`Applied`] state behind a mutex, so a resource event and a reload never interleave. The
//! file's jobs win a name clash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use promshard_model::config::{Config, ScrapeConfig};
use tokio::sync::{Mutex, mpsc, watch};

use crate::config_store::Apply;
use crate::coordinator::{Event, View};
use crate::discovery::kubernetes::{ClusterKey, Kind};
use crate::discovery::prometheus_cr::{self, CrStatus, Generated};
use crate::discovery::{DiscoveryManager, DiscoverySettings};
use crate::metrics::Metrics;

/// How long a change waits for the coordinator to publish a view with the new config, so the
/// API answers after the change is visible (the coordinator is busy only under a flood).
const PUBLISH_WAIT: Duration = Duration::from_secs(10);

pub struct MasterApplier {
    state: Arc<Mutex<Applied>>,
    forward: tokio::task::JoinHandle<()>,
    generated: tokio::task::JoinHandle<()>,
}

/// What runs: the file's config, the generated jobs, and discovery for their union.
struct Applied {
    file: Arc<Config>,
    generated: Vec<ScrapeConfig>,
    running: Arc<Config>,
    discovery: DiscoveryManager,
    /// The custom-resource reader, restarted when the file's config changes.
    reader: Option<tokio::task::JoinHandle<()>>,
    reader_generation: u64,
    gen_tx: mpsc::Sender<Generated>,
    cr_status: watch::Sender<Arc<CrStatus>>,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<Event>,
    view: watch::Receiver<Arc<View>>,
}

impl MasterApplier {
    /// Starts discovery for the config the coordinator was created with, forwarding its
    /// updates to the coordinator, and the custom-resource reader if `prometheus_cr` is on.
    pub async fn start(
        config: Arc<Config>,
        settings: DiscoverySettings,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<Event>,
        view: watch::Receiver<Arc<View>>,
        cr_status: watch::Sender<Arc<CrStatus>>,
    ) -> anyhow::Result<Self> {
        let (disc_tx, mut disc_rx) = mpsc::channel(64);
        let mut discovery = DiscoveryManager::new(settings, metrics.clone(), disc_tx);
        discovery.sync(&config, &cr_kinds(&config)).await?;
        let forward = {
            let events = events.clone();
            tokio::spawn(async move {
                while let Some(u) = disc_rx.recv().await {
                    if events.send(Event::Discovery(u)).await.is_err() {
                        break;
                    }
                }
            })
        };
        let (gen_tx, mut gen_rx) = mpsc::channel::<Generated>(4);
        let mut applied = Applied {
            file: config.clone(),
            generated: Vec::new(),
            running: config,
            discovery,
            reader: None,
            reader_generation: 0,
            gen_tx,
            cr_status,
            metrics,
            events,
            view,
        };
        applied.start_reader().await?;
        let state = Arc::new(Mutex::new(applied));
        let generated = tokio::spawn({
            let state = state.clone();
            async move {
                while let Some(g) = gen_rx.recv().await {
                    let mut s = state.lock().await;
                    if g.generation != s.reader_generation {
                        continue;
                    }
                    if let Err(e) = s.set_generated(g.jobs).await {
                        tracing::error!(error = %e, "applying jobs from prometheus_cr resources");
                    }
                }
            }
        });
        Ok(MasterApplier {
            state,
            forward,
            generated,
        })
    }
}

/// The (API server, kinds) the custom-resource reader of a config keeps watched: its own and
/// those its jobs read (see [`prometheus_cr::kept_kinds`]).
fn cr_kinds(config: &Config) -> BTreeMap<ClusterKey, BTreeSet<Kind>> {
    let mut out = BTreeMap::new();
    if let Some(cr) = config.prometheus_cr.as_ref().filter(|c| c.enabled) {
        out.insert(ClusterKey::Default, prometheus_cr::kept_kinds(cr));
    }
    out
}

impl Applied {
    /// (Re)starts the custom-resource reader for the file's config; a reader of an older
    /// config is stopped and whatever it still had queued is ignored.
    async fn start_reader(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        self.reader_generation += 1;
        let Some(cr) = self.file.prometheus_cr.as_ref().filter(|c| c.enabled) else {
            self.cr_status.send_replace(Arc::new(CrStatus::default()));
            return Ok(());
        };
        let kinds = prometheus_cr::kinds(cr);
        let cluster = self
            .discovery
            .kube
            .ensure(&ClusterKey::Default, &kinds)
            .await
            .map_err(|e| anyhow::anyhow!("prometheus_cr: {e:#}"))?;
        let Some(client) = self.discovery.kube.client(&ClusterKey::Default) else {
            anyhow::bail!("prometheus_cr: no Kubernetes client");
        };
        let reader = prometheus_cr::Reader {
            config: self.file.clone(),
            cluster,
            client,
            generation: self.reader_generation,
            jobs: self.gen_tx.clone(),
            status: self.cr_status.clone(),
            metrics: self.metrics.clone(),
        };
        self.reader = Some(tokio::spawn(reader.run()));
        Ok(())
    }

    fn effective(&self) -> Arc<Config> {
        if self.generated.is_empty() {
            return self.file.clone();
        }
        let (cfg, clashes) = self.file.with_generated_jobs(&self.generated);
        if !clashes.is_empty() {
            tracing::warn!(
                ?clashes,
                "generated jobs named like a job of the file are ignored"
            );
        }
        Arc::new(cfg)
    }

    async fn set_generated(&mut self, jobs: Vec<ScrapeConfig>) -> Result<(), String> {
        self.generated = jobs;
        let config = self.effective();
        if *config == *self.running {
            return Ok(());
        }
        self.run(config).await
    }

    async fn set_file(&mut self, file: Arc<Config>) -> Result<(), String> {
        let previous = std::mem::replace(&mut self.file, file.clone());
        let reader_inputs = |c: &Config| (c.prometheus_cr.clone(), c.global.clone());
        let restart_reader = reader_inputs(&previous) != reader_inputs(&file);
        if restart_reader && !file.prometheus_cr.as_ref().is_some_and(|c| c.enabled) {
            self.generated.clear();
        }
        let config = self.effective();
        if let Err(e) = self.run(config).await {
            self.file = previous;
            return Err(e);
        }
        if restart_reader && let Err(e) = self.start_reader().await {
            return Err(format!("{e:#}"));
        }
        Ok(())
    }

    /// Brings discovery in line with `config` and hands it to the coordinator. On error the
    /// previous config keeps running.
    async fn run(&mut self, config: Arc<Config>) -> Result<(), String> {
        let mut keep = cr_kinds(&self.file);
        for (k, v) in cr_kinds(&config) {
            keep.entry(k).or_default().extend(v);
        }
        if let Err(e) = self.discovery.sync(&config, &keep).await {
            return Err(format!("starting discovery: {e:#}"));
        }
        self.hand_over(config).await
    }

    /// Gives the coordinator the new config and waits until it publishes a view with it.
    async fn hand_over(&mut self, config: Arc<Config>) -> Result<(), String> {
        if self
            .events
            .send(Event::ConfigChanged(config.clone()))
            .await
            .is_err()
        {
            return Err("the master is shutting down".into());
        }
        self.running = config.clone();
        let mut view = self.view.clone();
        let published = view.wait_for(|v| Arc::ptr_eq(&v.config, &config));
        if tokio::time::timeout(PUBLISH_WAIT, published).await.is_err() {
            tracing::warn!("the coordinator has not published the new config yet");
        }
        Ok(())
    }
}

impl Apply for MasterApplier {
    fn apply(&mut self, config: Arc<Config>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.state.lock().await.set_file(config).await })
    }

    fn stop(&mut self) {
        self.generated.abort();
        self.forward.abort();
        if let Ok(mut s) = self.state.try_lock() {
            if let Some(r) = s.reader.take() {
                r.abort();
            }
            s.discovery.stop();
        }
    }
}
