//! The master's target set: discovered groups of a job turned into active and dropped targets
//! (Prometheus's `TargetsFromGroup`), recomputed per job when one of its providers changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use promshard_model::Labels;
use promshard_model::config::{REPLICA_LABEL, ScrapeConfig};
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
    /// For a replica (`replication_factor` > 1): the placement key its copies share, so
    /// placement puts them on distinct workers.
    pub replica_of: Option<u64>,
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

/// One group's targets, computed once and reused while the group is unchanged.
#[derive(Clone, Debug, Default)]
pub struct GroupTargets {
    pub active: Vec<Arc<ActiveTarget>>,
    pub dropped: Vec<DroppedTarget>,
}

/// Merges group and target labels (target wins), populates and relabels every target of a job.
/// Targets with identical final labels are one target, as in Prometheus.
pub fn compute_job(cfg: &ScrapeConfig, groups: &[&TargetGroup]) -> JobTargets {
    let computed: Vec<GroupTargets> = groups.iter().map(|g| compute_group(cfg, g)).collect();
    merge(computed.iter())
}

/// A job's targets from its groups' targets, deduplicated by id (the first one wins).
pub fn merge<'a>(groups: impl Iterator<Item = &'a GroupTargets>) -> JobTargets {
    let mut active: BTreeMap<&str, &Arc<ActiveTarget>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for g in groups {
        for t in &g.active {
            active.entry(t.id.as_str()).or_insert(t);
        }
        dropped.extend(g.dropped.iter().cloned());
    }
    JobTargets {
        active: active.into_values().cloned().collect(),
        dropped,
    }
}

/// Populates and relabels the targets of one group.
pub fn compute_group(cfg: &ScrapeConfig, g: &TargetGroup) -> GroupTargets {
    let mut active: BTreeMap<String, Arc<ActiveTarget>> = BTreeMap::new();
    let mut dropped = Vec::new();
    {
        for t in &g.targets {
            let mut lb = g.labels.builder();
            for l in t {
                lb.set(l.name.clone(), l.value.clone());
            }
            let discovered = lb.into_labels();
            match target::populate_labels(cfg, &discovered) {
                Ok(Populated::Target(labels)) => {
                    let base = target::placement_key(&labels);
                    let scrape_url = target::scrape_url(&labels, &cfg.params);
                    let r = cfg.replication_factor.max(1);
                    for replica in 0..r {
                        let (labels, placement_key, replica_of) = if r == 1 {
                            (labels.clone(), base, None)
                        } else {
                            let mut b = labels.builder();
                            b.set(REPLICA_LABEL, replica.to_string());
                            let key = xxhash_rust::xxh3::xxh3_64_with_seed(
                                &base.to_le_bytes(),
                                u64::from(replica),
                            );
                            (b.into_labels(), key, Some(base))
                        };
                        let id = target::target_id(&labels);
                        active.entry(id.clone()).or_insert_with(|| {
                            Arc::new(ActiveTarget {
                                id,
                                job: cfg.job_name.clone(),
                                labels,
                                discovered: discovered.clone(),
                                placement_key,
                                scrape_url: scrape_url.clone(),
                                replica_of,
                            })
                        });
                    }
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
    GroupTargets {
        active: active.into_values().collect(),
        dropped,
    }
}
