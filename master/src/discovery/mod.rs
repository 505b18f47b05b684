//! Service discovery: providers that turn a job's `*_sd_configs` into target groups.
//!
//! Every provider sends the *full* current list of groups for its `(job, provider)` slot on each
//! change, so the consumer never has to merge partial updates and a restarted provider simply
//! overwrites what it said before.

mod file_sd;
pub mod kubernetes;
mod static_sd;

use std::path::PathBuf;
use std::sync::Arc;

use promshard_model::Labels;
use promshard_model::config::Config;

use crate::metrics::Metrics;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Prometheus's `targetgroup.Group`: targets sharing a set of labels, from one source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetGroup {
    /// Each target's own labels; at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to all targets of the group; a target's own labels win.
    pub labels: Labels,
    pub source: String,
}

/// One provider's complete view, replacing whatever that provider said before.
#[derive(Clone, Debug)]
pub struct Update {
    pub job: String,
    pub provider: String,
    pub groups: Vec<TargetGroup>,
}

/// Runs every provider of a configuration.
pub struct DiscoveryManager {
    tasks: JoinSet<()>,
    kubernetes: kubernetes::KubernetesDiscovery,
}

impl DiscoveryManager {
    /// Starts one provider per `*_sd_configs` entry of every job, and the shared Kubernetes
    /// watches they need. Fails if Kubernetes discovery is configured but no client can be built.
    pub async fn start(
        cfg: &Config,
        kubeconfig: Option<PathBuf>,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Update>,
    ) -> anyhow::Result<Self> {
        let kubernetes =
            kubernetes::KubernetesDiscovery::start(cfg, kubeconfig, metrics, tx.clone()).await?;
        let mut tasks = JoinSet::new();
        for sc in &cfg.scrape_configs {
            if !sc.static_configs.is_empty() {
                let groups = static_sd::groups(&sc.static_configs);
                let update = Update {
                    job: sc.job_name.clone(),
                    provider: "static".into(),
                    groups,
                };
                let tx = tx.clone();
                tasks.spawn(async move {
                    let _ = tx.send(update).await;
                });
            }
            for (i, fsd) in sc.file_sd_configs.iter().enumerate() {
                let provider = file_sd::FileProvider::new(fsd.clone());
                let (job, tx) = (sc.job_name.clone(), tx.clone());
                tasks.spawn(provider.run(job, format!("file/{i}"), tx));
            }
        }
        Ok(DiscoveryManager { tasks, kubernetes })
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
        self.kubernetes.stop();
    }
}
