//! Applying a configuration to the running master: the discovery providers are started for it
//! (restarted on a change) and the coordinator gets it, which recomputes every job and pushes a
//! fresh snapshot carrying the new config to every connected worker.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use promshard_model::config::Config;
use tokio::sync::{mpsc, watch};

use crate::config_store::Apply;
use crate::coordinator::{Event, View};
use crate::discovery::{DiscoveryManager, DiscoverySettings, Update};
use crate::metrics::Metrics;

/// How long a change waits for the coordinator to publish a view with the new config, so the
/// API answers after the change is visible (the coordinator is busy only under a flood).
const PUBLISH_WAIT: Duration = Duration::from_secs(10);

pub struct MasterApplier {
    running: Arc<Config>,
    discovery: Option<DiscoveryManager>,
    settings: DiscoverySettings,
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
        settings: DiscoverySettings,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<Event>,
        view: watch::Receiver<Arc<View>>,
    ) -> anyhow::Result<Self> {
        let (disc_tx, mut disc_rx) = mpsc::channel(64);
        let discovery =
            DiscoveryManager::start(&config, &settings, metrics.clone(), disc_tx.clone()).await?;
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
            settings,
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
            &self.settings,
            self.metrics.clone(),
            self.disc_tx.clone(),
        )
        .await
    }
}

/// The (job, provider) pairs discovery runs for a config, named as `DiscoveryManager` names
/// them: `static`, `file/<i>`, `kubernetes/<i>`, `http/<i>`, `dns/<i>`, `consul/<i>`.
fn providers(config: &Config) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for sc in &config.scrape_configs {
        let job = &sc.job_name;
        if !sc.static_configs.is_empty() {
            out.insert((job.clone(), "static".to_string()));
        }
        for i in 0..sc.file_sd_configs.len() {
            out.insert((job.clone(), format!("file/{i}")));
        }
        for (kind, n) in [
            ("kubernetes", sc.kubernetes_sd_configs.len()),
            ("http", sc.http_sd_configs.len()),
            ("dns", sc.dns_sd_configs.len()),
            ("consul", sc.consul_sd_configs.len()),
        ] {
            for i in 0..n {
                out.insert((job.clone(), format!("{kind}/{i}")));
            }
        }
    }
    out
}

impl Apply for MasterApplier {
    fn apply(&mut self, config: Arc<Config>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if same_discovery(&self.running, &config) {
                // Only relabeling, intervals, limits or remote write changed: the coordinator
                // keeps every job's groups and recomputes from them, and no Kubernetes watch is
                // restarted (no new LIST) for a change that cannot alter what is discovered.
                return self.hand_over(config).await;
            }
            // Stop the old providers first: what they already sent is queued ahead of what the
            // new ones send, so the coordinator ends with the new providers' view.
            if let Some(d) = self.discovery.take() {
                d.stop();
            }
            // A provider the new config no longer has would otherwise leave its last groups in
            // the coordinator forever (a job that dropped its static_configs would keep those
            // targets). Its empty update goes through the discovery channel, behind anything the
            // stopped provider still had queued.
            let gone: Vec<(String, String)> = providers(&self.running)
                .difference(&providers(&config))
                .cloned()
                .collect();
            for (job, provider) in gone {
                let update = Update {
                    job,
                    provider,
                    groups: Vec::new(),
                };
                if self.disc_tx.send(update).await.is_err() {
                    return Err("the master is shutting down".into());
                }
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
            self.hand_over(config).await
        })
    }

    fn stop(&mut self) {
        if let Some(d) = self.discovery.take() {
            d.stop();
        }
        self.forward.abort();
    }
}

impl MasterApplier {
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

/// Whether two configs discover exactly the same (job, provider settings): then discovery
/// need not restart.
fn same_discovery(a: &Config, b: &Config) -> bool {
    let key = |c: &Config| {
        c.scrape_configs
            .iter()
            .map(|s| {
                (
                    s.job_name.clone(),
                    (
                        s.static_configs.clone(),
                        s.file_sd_configs.clone(),
                        s.kubernetes_sd_configs.clone(),
                        s.http_sd_configs.clone(),
                        s.dns_sd_configs.clone(),
                        s.consul_sd_configs.clone(),
                    ),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    key(a) == key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_restarts_only_when_what_is_discovered_can_change() {
        let base = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n";
        let parse = |t: &str| Config::parse(t).unwrap();
        let relabeled = format!(
            "{base}    relabel_configs: [{{target_label: x, replacement: y}}]\n    scrape_interval: 5s\n"
        );
        assert!(same_discovery(&parse(base), &parse(&relabeled)));
        let moved = base.replace("h:1", "h:2");
        assert!(!same_discovery(&parse(base), &parse(&moved)));
        let renamed = base.replace("job_name: a", "job_name: b");
        assert!(!same_discovery(&parse(base), &parse(&renamed)));
    }

    #[test]
    fn providers_are_named_as_discovery_names_them() {
        let cfg = Config::parse(
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n    file_sd_configs: [{files: [x.json]}, {files: [y.json]}]\n  - job_name: b\n    file_sd_configs: [{files: [z.json]}]\n",
        )
        .unwrap();
        let got: Vec<(String, String)> = providers(&cfg).into_iter().collect();
        let want = [
            ("a", "file/0"),
            ("a", "file/1"),
            ("a", "static"),
            ("b", "file/0"),
        ];
        assert_eq!(
            got,
            want.map(|(j, p)| (j.to_string(), p.to_string())).to_vec()
        );
    }
}
