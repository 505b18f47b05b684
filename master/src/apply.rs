//! Applying a configuration to the running master: the discovery providers are started for it
//! (restarted on a change) and the coordinator gets it, which recomputes every job and pushes a
//! fresh snapshot carrying the new config to every connected worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use promshard_model::config::Config;
use tokio::sync::{mpsc, watch};

use crate::config_store::Apply;
use crate::coordinator::{Event, View};
use crate::discovery::{DiscoveryManager, Update};
use crate::metrics::Metrics;

/// How long a change waits for the coordinator to publish a view with the new config, so the
/// API answers after the change is visible (the coordinator is busy only under a flood).
const PUBLISH_WAIT: Duration = Duration::from_secs(10);

pub struct MasterApplier {
    running: Arc<Config>,
    discovery: Option<DiscoveryManager>,
    kubeconfig: Option<PathBuf>,
    metrics: Arc<Metrics>,
    disc_tx: mpsc::Sender<Update>,
    forward: tokio::task::JoinHandle<()>,
    events: mpsc::Sender<Event>,
    view: watch::Receiver<Arc<View>>,
}

impl MasterApplier {
    /// Starts discovery for the config the coordinator was created with, forwarding its
    /// updates to the coordinator.
    pub async fn start(
        config: Arc<Config>,
        kubeconfig: Option<PathBuf>,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<Event>,
        view: watch::Receiver<Arc<View>>,
    ) -> anyhow::Result<Self> {
        let (disc_tx, mut disc_rx) = mpsc::channel(64);
        let discovery = DiscoveryManager::start(
            &config,
            kubeconfig.clone(),
            metrics.clone(),
            disc_tx.clone(),
        )
        .await?;
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
        Ok(MasterApplier {
            running: config,
            discovery: Some(discovery),
            kubeconfig,
            metrics,
            disc_tx,
            forward,
            events,
            view,
        })
    }

    async fn start_discovery(&self, config: &Config) -> anyhow::Result<DiscoveryManager> {
        DiscoveryManager::start(
            config,
            self.kubeconfig.clone(),
            self.metrics.clone(),
            self.disc_tx.clone(),
        )
        .await
    }
}

impl Apply for MasterApplier {
    fn apply(&mut self, config: Arc<Config>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Stop the old providers first: what they already sent is queued ahead of what the
            // new ones send, so the coordinator ends with the new providers' view.
            if let Some(d) = self.discovery.take() {
                d.stop();
            }
            match self.start_discovery(&config).await {
                Ok(d) => self.discovery = Some(d),
                Err(e) => {
                    match self.start_discovery(&self.running).await {
                        Ok(d) => self.discovery = Some(d),
                        Err(e2) => {
                            tracing::error!(error = %e2, "cannot restart discovery for the running config");
                        }
                    }
                    return Err(format!("starting discovery: {e:#}"));
                }
            }
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
        })
    }

    fn stop(&mut self) {
        if let Some(d) = self.discovery.take() {
            d.stop();
        }
        self.forward.abort();
    }
}
