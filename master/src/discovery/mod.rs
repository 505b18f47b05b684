//! Service discovery: providers that turn a job's `*_sd_configs` into target groups, one file
//! per mechanism (static, file, kubernetes, http, dns, consul). All of it runs in the master.
//!
//! Every provider sends the *full* current list of groups for its `(job, provider)` slot on each
//! change, so the consumer never has to merge partial updates and a restarted provider simply
//! overwrites what it said before. Slots are named `static`, `file/<i>`, `kubernetes/<i>`,
//! `http/<i>`, `dns/<i>`, `consul/<i>` (`i`: the entry's index in the job's list).

mod consul_sd;
mod dns_sd;
mod file_sd;
mod http_sd;
pub mod kubernetes;
mod refresh;
mod static_sd;

use std::net::SocketAddr;
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

/// The master's own discovery settings (flags), as opposed to the jobs' configs.
#[derive(Clone, Debug, Default)]
pub struct DiscoverySettings {
    /// Kubeconfig for `kubernetes_sd_configs` without `api_server`/`kubeconfig_file`.
    pub kubeconfig: Option<PathBuf>,
    /// DNS servers for `dns_sd_configs` (`--discovery.dns-server`); empty: `/etc/resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
}

/// Runs every provider of a configuration.
pub struct DiscoveryManager {
    tasks: JoinSet<()>,
    kubernetes: kubernetes::KubernetesDiscovery,
}

impl DiscoveryManager {
    /// Starts one provider per `*_sd_configs` entry of every job, and the shared Kubernetes
    /// watches they need. Fails if Kubernetes discovery is configured but no client can be
    /// built, or an HTTP client for a discovery cannot be (unreadable TLS files).
    pub async fn start(
        cfg: &Config,
        settings: &DiscoverySettings,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Update>,
    ) -> anyhow::Result<Self> {
        let kubernetes = kubernetes::KubernetesDiscovery::start(
            cfg,
            settings.kubeconfig.clone(),
            metrics.clone(),
            tx.clone(),
        )
        .await?;
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
            let at = |kind: &str, i: usize| format!("job {:?} {kind}[{i}]", sc.job_name);
            for (i, h) in sc.http_sd_configs.iter().enumerate() {
                let source = http_sd::HttpSd::new(h)
                    .map_err(|e| anyhow::anyhow!("{}: {e:#}", at("http_sd_configs", i)))?;
                tasks.spawn(refresh::run(
                    source,
                    h.refresh_interval.0,
                    sc.job_name.clone(),
                    format!("http/{i}"),
                    metrics.clone(),
                    tx.clone(),
                ));
            }
            for (i, d) in sc.dns_sd_configs.iter().enumerate() {
                let source = dns_sd::DnsSd::new(d, &settings.dns_servers)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("dns_sd_configs", i)))?;
                tasks.spawn(refresh::run(
                    source,
                    d.refresh_interval.0,
                    sc.job_name.clone(),
                    format!("dns/{i}"),
                    metrics.clone(),
                    tx.clone(),
                ));
            }
            for (i, c) in sc.consul_sd_configs.iter().enumerate() {
                let provider = consul_sd::ConsulSd::new(c, metrics.clone())
                    .map_err(|e| anyhow::anyhow!("{}: {e:#}", at("consul_sd_configs", i)))?;
                let (job, tx) = (sc.job_name.clone(), tx.clone());
                tasks.spawn(provider.run(job, format!("consul/{i}"), tx));
            }
        }
        Ok(DiscoveryManager { tasks, kubernetes })
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
        self.kubernetes.stop();
    }
}
