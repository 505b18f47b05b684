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
pub mod prometheus_cr;
mod refresh;
mod static_sd;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use promshard_model::Labels;
use promshard_model::config::{Config, ScrapeConfig};

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
    /// What the Kubernetes watches ask for (`--kubernetes.protobuf`,
    /// `--kubernetes.streaming-lists`; both on by default).
    pub kube_requests: kubernetes::reflector::Options,
}

/// Runs every provider of the running configuration, job by job, over the shared Kubernetes
/// watches of [`kubernetes::KubePool`].
pub struct DiscoveryManager {
    settings: DiscoverySettings,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Update>,
    jobs: HashMap<String, RunningJob>,
    pub kube: kubernetes::KubePool,
}

/// One job's providers and the discovery sections they were started from.
struct RunningJob {
    sections: JobSections,
    providers: BTreeSet<String>,
    tasks: JoinSet<()>,
}

/// What a job discovers from: a job whose sections are unchanged keeps its providers.
type JobSections = (
    Vec<promshard_model::config::StaticConfig>,
    Vec<promshard_model::config::FileSdConfig>,
    Vec<promshard_model::config::KubernetesSdConfig>,
    Vec<promshard_model::config::HttpSdConfig>,
    Vec<promshard_model::config::DnsSdConfig>,
    Vec<promshard_model::config::ConsulSdConfig>,
);

fn sections(sc: &ScrapeConfig) -> JobSections {
    (
        sc.static_configs.clone(),
        sc.file_sd_configs.clone(),
        sc.kubernetes_sd_configs.clone(),
        sc.http_sd_configs.clone(),
        sc.dns_sd_configs.clone(),
        sc.consul_sd_configs.clone(),
    )
}

type Task = BoxFuture<'static, ()>;
/// A job's providers, built and named, not started yet.
type Planned = (String, JobSections, Vec<(String, Task)>);

impl DiscoveryManager {
    pub fn new(
        settings: DiscoverySettings,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Update>,
    ) -> Self {
        DiscoveryManager {
            kube: kubernetes::KubePool::new(
                settings.kubeconfig.clone(),
                settings.kube_requests,
                metrics.clone(),
            ),
            settings,
            metrics,
            tx,
            jobs: HashMap::new(),
        }
    }

    /// Brings discovery in line with `cfg`: jobs whose discovery sections are unchanged keep
    /// running untouched (no re-read, no new LIST), changed and new jobs get new providers,
    /// removed ones are stopped and their providers' groups emptied. Every new provider is
    /// built first: if one cannot be (unreadable TLS files, no Kubernetes config), nothing
    /// changes and the error names the job. Kubernetes watches no job uses any more are
    /// stopped, except the kinds in `keep` (the custom-resource reader's).
    pub async fn sync(
        &mut self,
        cfg: &Config,
        keep: &BTreeMap<kubernetes::ClusterKey, BTreeSet<kubernetes::Kind>>,
    ) -> anyhow::Result<()> {
        let mut planned: Vec<Planned> = Vec::new();
        for sc in &cfg.scrape_configs {
            let secs = sections(sc);
            if self
                .jobs
                .get(&sc.job_name)
                .is_some_and(|j| j.sections == secs)
            {
                continue;
            }
            let tasks = self.plan(sc).await?;
            planned.push((sc.job_name.clone(), secs, tasks));
        }
        let wanted: HashSet<&str> = cfg
            .scrape_configs
            .iter()
            .map(|s| s.job_name.as_str())
            .collect();
        let mut gone: Vec<(String, String)> = Vec::new();
        let removed: Vec<String> = self
            .jobs
            .keys()
            .filter(|j| !wanted.contains(j.as_str()))
            .cloned()
            .collect();
        for job in removed {
            if let Some(mut r) = self.jobs.remove(&job) {
                r.tasks.abort_all();
                gone.extend(r.providers.into_iter().map(|p| (job.clone(), p)));
            }
        }
        for (job, secs, tasks) in planned {
            let names: BTreeSet<String> = tasks.iter().map(|(n, _)| n.clone()).collect();
            if let Some(mut r) = self.jobs.remove(&job) {
                r.tasks.abort_all();
                gone.extend(
                    r.providers
                        .difference(&names)
                        .map(|p| (job.clone(), p.clone())),
                );
            }
            let mut set = JoinSet::new();
            for (_, t) in tasks {
                set.spawn(t);
            }
            self.jobs.insert(
                job,
                RunningJob {
                    sections: secs,
                    providers: names,
                    tasks: set,
                },
            );
        }
        // A provider that no longer exists would otherwise leave its last groups in the
        // coordinator forever (a job that dropped its static_configs would keep those
        // targets). Its empty update goes through the discovery channel, behind anything the
        // stopped provider still had queued.
        for (job, provider) in gone {
            let update = Update {
                job,
                provider,
                groups: Vec::new(),
            };
            if self.tx.send(update).await.is_err() {
                anyhow::bail!("the master is shutting down");
            }
        }
        let mut needed = kubernetes::needed_kinds(cfg);
        for (k, kinds) in keep {
            needed
                .entry(k.clone())
                .or_default()
                .extend(kinds.iter().copied());
        }
        self.kube.retain(&needed);
        Ok(())
    }

    /// The providers of one job, built but not started.
    async fn plan(&mut self, sc: &ScrapeConfig) -> anyhow::Result<Vec<(String, Task)>> {
        let mut out: Vec<(String, Task)> = Vec::new();
        let tx = &self.tx;
        if !sc.static_configs.is_empty() {
            let groups = static_sd::groups(&sc.static_configs);
            let update = Update {
                job: sc.job_name.clone(),
                provider: "static".into(),
                groups,
            };
            let tx = tx.clone();
            out.push((
                "static".into(),
                Box::pin(async move {
                    let _ = tx.send(update).await;
                }),
            ));
        }
        for (i, fsd) in sc.file_sd_configs.iter().enumerate() {
            let provider = file_sd::FileProvider::new(fsd.clone());
            let (job, tx) = (sc.job_name.clone(), tx.clone());
            out.push((
                format!("file/{i}"),
                Box::pin(provider.run(job, format!("file/{i}"), tx)),
            ));
        }
        let at = |kind: &str, i: usize| format!("job {:?} {kind}[{i}]", sc.job_name);
        for (i, h) in sc.http_sd_configs.iter().enumerate() {
            let source = http_sd::HttpSd::new(h)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", at("http_sd_configs", i)))?;
            out.push((
                format!("http/{i}"),
                Box::pin(refresh::run(
                    source,
                    h.refresh_interval.0,
                    sc.job_name.clone(),
                    format!("http/{i}"),
                    self.metrics.clone(),
                    tx.clone(),
                )),
            ));
        }
        for (i, d) in sc.dns_sd_configs.iter().enumerate() {
            let source = dns_sd::DnsSd::new(d, &self.settings.dns_servers)
                .map_err(|e| anyhow::anyhow!("{}: {e}", at("dns_sd_configs", i)))?;
            out.push((
                format!("dns/{i}"),
                Box::pin(refresh::run(
                    source,
                    d.refresh_interval.0,
                    sc.job_name.clone(),
                    format!("dns/{i}"),
                    self.metrics.clone(),
                    tx.clone(),
                )),
            ));
        }
        for (i, c) in sc.consul_sd_configs.iter().enumerate() {
            let provider = consul_sd::ConsulSd::new(c, self.metrics.clone())
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", at("consul_sd_configs", i)))?;
            let (job, tx) = (sc.job_name.clone(), tx.clone());
            out.push((
                format!("consul/{i}"),
                Box::pin(provider.run(job, format!("consul/{i}"), tx)),
            ));
        }
        let tx = tx.clone();
        out.extend(
            self.kube
                .providers(&sc.job_name, &sc.kubernetes_sd_configs, &tx)
                .await?,
        );
        Ok(out)
    }

    pub fn stop(&mut self) {
        for j in self.jobs.values_mut() {
            j.tasks.abort_all();
        }
        self.jobs.clear();
        self.kube.retain(&BTreeMap::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(jobs: &[(&str, &str)]) -> Config {
        let mut text = String::from("scrape_configs:\n");
        for (job, target) in jobs {
            text.push_str(&format!(
                "  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
            ));
        }
        Config::parse(&text).unwrap()
    }

    async fn next(rx: &mut mpsc::Receiver<Update>) -> (String, String, Vec<String>) {
        let u = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("an update within 5 s")
            .expect("channel open");
        let targets = u
            .groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .filter_map(|t| t.get("__address__").map(str::to_string))
            .collect();
        (u.job, u.provider, targets)
    }

    /// A change restarts only the jobs whose discovery changed: a job generated from a
    /// ServiceMonitor appearing must not re-read every other job's discovery.
    #[tokio::test]
    async fn sync_restarts_only_changed_jobs_and_empties_removed_ones() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut dm =
            DiscoveryManager::new(DiscoverySettings::default(), Arc::new(Metrics::new()), tx);
        let keep = BTreeMap::new();
        dm.sync(&cfg(&[("a", "h:1"), ("b", "h:2")]), &keep)
            .await
            .unwrap();
        let mut first = vec![next(&mut rx).await, next(&mut rx).await];
        first.sort();
        let s = |j: &str, t: &[&str]| {
            (
                j.to_string(),
                "static".to_string(),
                t.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(first, vec![s("a", &["h:1"]), s("b", &["h:2"])]);

        dm.sync(&cfg(&[("a", "h:1"), ("b", "h:3"), ("c", "h:4")]), &keep)
            .await
            .unwrap();
        let mut second = vec![next(&mut rx).await, next(&mut rx).await];
        second.sort();
        assert_eq!(second, vec![s("b", &["h:3"]), s("c", &["h:4"])]);

        dm.sync(&cfg(&[("a", "h:1")]), &keep).await.unwrap();
        let mut third = vec![next(&mut rx).await, next(&mut rx).await];
        third.sort();
        assert_eq!(third, vec![s("b", &[]), s("c", &[])]);
        assert!(rx.try_recv().is_err(), "job a was never restarted");
        dm.stop();
    }
}
