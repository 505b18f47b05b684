//! Scraping: a [`ScrapeManager`] keeps one scrape pool per job and one loop per assigned
//! target, in step with the assignment the master sent.

mod append;
mod buffers;
pub mod parser;
mod protobuf;
mod scrape_loop;
mod scraper;

use std::collections::HashMap;
use std::sync::Arc;

use promshard_model::config::ScrapeConfig;
use promshard_model::target::scrape_url;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub(crate) use scrape_loop::{Ctl, Stop};

use crate::assignment::{Applied, AssignedTarget, Assignment};
use crate::metrics::Metrics;
use crate::remote_write::Appender;
use crate::status::StatusBoard;

struct LoopHandle {
    ctl: watch::Sender<Ctl>,
}

impl LoopHandle {
    fn stop(&self, why: Stop) {
        let _ = self.ctl.send(Ctl::Stop(why));
    }
}

/// Prometheus's scrape pool: one job's config, HTTP client and loops.
struct ScrapePool {
    cfg: ScrapeConfig,
    client: Arc<crate::http_client::HttpClient>,
    loops: HashMap<String, LoopHandle>,
}

pub struct ScrapeManager {
    pools: HashMap<String, ScrapePool>,
    appender: Appender,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    tasks: JoinSet<()>,
    /// Loops handing their target over: (job, handle, stop instant), by target id.
    leaving: HashMap<String, (String, LoopHandle, i64)>,
}

impl ScrapeManager {
    pub fn new(appender: Appender, status: Arc<StatusBoard>, metrics: Arc<Metrics>) -> Self {
        ScrapeManager {
            pools: HashMap::new(),
            appender,
            status,
            metrics,
            tasks: JoinSet::new(),
            leaving: HashMap::new(),
        }
    }

    /// Brings pools and loops in line with `a`. Stopped targets get stale markers only when
    /// `applied` says they were removed (not handed off, not a config change).
    pub fn sync(&mut self, a: &Assignment, applied: &Applied) {
        // Reap finished loop tasks so the set does not grow with churn.
        while self.tasks.try_join_next().is_some() {}

        // Pools whose job vanished or whose config changed are replaced wholesale.
        self.pools.retain(|job, pool| {
            let keep = a
                .config
                .scrape_config(job)
                .is_some_and(|c| c.without_discovery() == pool.cfg);
            if !keep {
                for (_, h) in pool.loops.drain() {
                    h.stop(Stop::Replaced);
                }
            }
            keep
        });
        let removed: std::collections::HashSet<&str> =
            applied.removed.iter().map(String::as_str).collect();
        let handoffs: HashMap<&str, i64> = applied
            .handoffs
            .iter()
            .map(|(id, at)| (id.as_str(), *at))
            .collect();
        // Loops past their handoff instant have ended by themselves.
        let now = scrape_loop::unix_ms(std::time::SystemTime::now());
        self.leaving.retain(|_, (_, _, at)| *at + 60_000 > now);
        let mut looping: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for pool in self.pools.values_mut() {
            let gone: Vec<String> = pool
                .loops
                .keys()
                .filter(|id| !a.targets.contains_key(*id))
                .cloned()
                .collect();
            for id in gone {
                if let Some(h) = pool.loops.remove(&id) {
                    if let Some((id, at)) = handoffs.get_key_value(id.as_str()) {
                        looping.insert(id);
                        // Keeps scraping until the new owner's first slot.
                        let _ = h.ctl.send(Ctl::StopAt(*at));
                        self.leaving
                            .insert(id.to_string(), (pool.cfg.job_name.clone(), h, *at));
                        continue;
                    }
                    let why = if removed.contains(id.as_str()) {
                        Stop::Removed
                    } else {
                        Stop::HandedOff
                    };
                    h.stop(why);
                }
            }
        }
        // A handoff of a target with no loop here (its job's pool was being replaced, say):
        // whatever the WALs hold of it is all there will be.
        for (id, at) in &handoffs {
            if !looping.contains(id) && !self.leaving.contains_key(*id) {
                self.appender
                    .watch_delivery(id, crate::gate::tag_of(id), *at);
            }
        }
        for t in a.targets.values() {
            if let Err(e) = self.ensure_loop(a, t) {
                tracing::error!(target = %t.id, error = %e, "cannot start scrape loop");
            }
        }
        self.metrics.targets.set(a.targets.len() as i64);
    }

    fn ensure_loop(&mut self, a: &Assignment, t: &Arc<AssignedTarget>) -> anyhow::Result<()> {
        let Some(cfg) = a.config.scrape_config(&t.job) else {
            anyhow::bail!("no scrape config for job {:?}", t.job);
        };
        if !self.pools.contains_key(&t.job) {
            let cfg = cfg.without_discovery();
            let client = scraper::client_for(&cfg)?;
            self.pools.insert(
                t.job.clone(),
                ScrapePool {
                    cfg,
                    client,
                    loops: HashMap::new(),
                },
            );
        }
        let pool = self.pools.get_mut(&t.job).expect("inserted above");
        if pool.loops.contains_key(&t.id) {
            return Ok(());
        }
        if let Some((job, h, _)) = self.leaving.remove(&t.id)
            && job == t.job
            && !h.ctl.is_closed()
        {
            // Handed back before it left: it carries on, or, when the target comes back
            // through another handoff, pauses from its stop instant to the new start.
            let _ = h.ctl.send(if t.start_at_ms > 0 {
                Ctl::ResumeAt(t.start_at_ms)
            } else {
                Ctl::Run
            });
            pool.loops.insert(t.id.clone(), h);
            return Ok(());
        }
        let url = scrape_url(&t.labels, &pool.cfg.params);
        let scraper = scraper::Scraper::new(pool.client.clone(), url, &pool.cfg);
        let processor = append::SampleProcessor::new(&pool.cfg, t.labels.without_reserved());
        let lp = scrape_loop::ScrapeLoop::new(
            t.clone(),
            scraper,
            processor,
            self.appender.clone(),
            self.status.clone(),
            self.metrics.clone(),
            pool.cfg.interval().0,
        );
        let (ctl, rx) = watch::channel(Ctl::Run);
        self.tasks.spawn(lp.run(rx));
        pool.loops.insert(t.id.clone(), LoopHandle { ctl });
        Ok(())
    }

    /// Whether every loop handing its target off has ended (at its stop instant), so its
    /// delivery is being watched.
    pub fn handoffs_done(&self) -> bool {
        let now = scrape_loop::unix_ms(std::time::SystemTime::now());
        self.leaving
            .values()
            .all(|(_, h, at)| h.ctl.is_closed() || *at + 60_000 <= now)
    }

    /// Stops every loop without stale markers (shutdown).
    pub fn shutdown(&mut self) {
        for pool in self.pools.values_mut() {
            for (_, h) in pool.loops.drain() {
                h.stop(Stop::Replaced);
            }
        }
        self.leaving.clear();
        self.tasks.abort_all();
    }
}
