//! The master's target set: discovered groups of a job turned into active and dropped targets
//! (Prometheus's `TargetsFromGroup`), recomputed per job when one of its providers changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use promshard_model::Labels;
use promshard_model::config::ScrapeConfig;
use promshard_model::target::{self, Populated};

use crate::discovery::TargetGroup;

#[derive(Clone, Debug, PartialEq)]
pub struct ActiveTarget {
    pub id: String,
    pub job: String,
    /// Final labels, still with `__address__`, `__scheme__`, ... (what workers receive).
    pub labels: Labels,
    /// Labels as discovered, before relabeling (`discoveredLabels` in the API).
    pub discovered: Labels,
    pub placement_key: u64,
    pub scrape_url: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered: Labels,
    /// Why: "relabeling" or the error that made the target invalid.
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct JobTargets {
    pub active: Vec<Arc<ActiveTarget>>,
    pub dropped: Vec<DroppedTarget>,
}

/// Merges group and target labels (target wins), populates and relabels every target of a job.
/// Targets with identical final labels are one target, as in Prometheus.
pub fn compute_job(cfg: &ScrapeConfig, groups: &[&TargetGroup]) -> JobTargets {
    let mut active: BTreeMap<String, Arc<ActiveTarget>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut lb = g.labels.builder();
            for l in t {
                lb.set(l.name.clone(), l.value.clone());
            }
            let discovered = lb.into_labels();
            match target::populate_labels(cfg, &discovered) {
                Ok(Populated::Target(labels)) => {
                    let id = target::target_id(&labels);
                    let placement_key = target::placement_key(&labels);
                    let scrape_url = target::scrape_url(&labels, &cfg.params);
                    active.entry(id.clone()).or_insert_with(|| {
                        Arc::new(ActiveTarget {
                            id,
                            job: cfg.job_name.clone(),
                            labels,
                            discovered,
                            placement_key,
                            scrape_url,
                        })
                    });
                }
                Ok(Populated::Dropped) => dropped.push(DroppedTarget {
                    job: cfg.job_name.clone(),
                    discovered,
                    reason: "relabeling".into(),
                }),
                Err(reason) => {
                    tracing::warn!(job = %cfg.job_name, %reason, labels = %discovered, "invalid target");
                    dropped.push(DroppedTarget {
                        job: cfg.job_name.clone(),
                        discovered,
                        reason,
                    });
                }
            }
        }
    }
    JobTargets {
        active: active.into_values().collect(),
        dropped,
    }
}
