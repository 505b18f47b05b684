//! The master's target set: discovered groups of a job turned into active and dropped targets
//! (Prometheus's `TargetsFromGroup`), recomputed per job when one of its providers changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use promshard_model::config::{REPLICA_LABEL, ScrapeConfig};
use promshard_model::target::{self, Populated};
use promshard_model::{Labels, labels};

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
    /// The first `keep_dropped_targets` dropped targets (all of them when it is 0).
    pub dropped: Vec<DroppedTarget>,
    /// How many targets were dropped, kept or not (`droppedTargetCounts` in the API).
    pub dropped_count: usize,
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
    merge(cfg, computed.iter())
}

/// A job's targets from its groups' targets, deduplicated by id (the first one wins), with the
/// job-wide limits applied: `keep_dropped_targets`, and `target_limit`, which fails every
/// target of a job that has more (Prometheus's scrape pool sets a forced error on all its
/// loops: nothing is scraped, `up` is 0 and the error is each target's last error).
pub fn merge<'a>(cfg: &ScrapeConfig, groups: impl Iterator<Item = &'a GroupTargets>) -> JobTargets {
    let mut active: BTreeMap<&str, &Arc<ActiveTarget>> = BTreeMap::new();
    let mut dropped = Vec::new();
    let mut dropped_count = 0;
    let keep = match cfg.keep_dropped_targets {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    for g in groups {
        for t in &g.active {
            active.entry(t.id.as_str()).or_insert(t);
        }
        dropped_count += g.dropped.len();
        let room = keep.saturating_sub(dropped.len());
        dropped.extend(g.dropped.iter().take(room).cloned());
    }
    let mut active: Vec<Arc<ActiveTarget>> = active.into_values().cloned().collect();
    let limit = usize::try_from(cfg.target_limit).unwrap_or(usize::MAX);
    if limit > 0 && active.len() > limit {
        let error = format!(
            "target_limit exceeded (number of targets: {}, limit: {limit})",
            active.len()
        );
        tracing::warn!(job = %cfg.job_name, %error, "no target of the job is scraped");
        active = active
            .iter()
            .map(|t| Arc::new(with_forced_error(t, &error)))
            .collect();
    }
    JobTargets {
        active,
        dropped,
        dropped_count,
    }
}

/// The target with [`labels::FORCED_ERROR`] set: the worker reports the error instead of
/// scraping. Its id changes with its labels, so its loop restarts when the job goes over or
/// back under the limit, as Prometheus's loops see the forced error come and go.
fn with_forced_error(t: &ActiveTarget, error: &str) -> ActiveTarget {
    let mut b = t.labels.builder();
    b.set(labels::FORCED_ERROR, error);
    let labels = b.into_labels();
    ActiveTarget {
        id: target::target_id(&labels),
        labels,
        ..t.clone()
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
            // What the API shows: the discovered labels with the job's defaults, as
            // Prometheus's `PopulateDiscoveredLabels`.
            let discovered = target::prepare(cfg, &lb.into_labels()).into_labels();
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

#[cfg(test)]
mod tests {
    use promshard_model::config::Config;

    use super::*;

    fn job(yaml: &str) -> ScrapeConfig {
        Config::parse(&format!("scrape_configs:\n  - job_name: j\n{yaml}"))
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn group(addrs: &[&str]) -> TargetGroup {
        TargetGroup {
            targets: addrs
                .iter()
                .map(|a| Labels::from_pairs([("__address__", *a)]))
                .collect(),
            labels: Labels::from_pairs([("__meta_x", "y")]),
            source: "0".into(),
        }
    }

    #[test]
    fn discovered_labels_carry_the_jobs_defaults_and_params() {
        let cfg = job(
            "    scrape_interval: 15s\n    scheme: https\n    metrics_path: /m\n    params: {module: [http_2xx], other: [a, b]}\n",
        );
        let mut g = group(&["h:1"]);
        // A discovered __param_ wins over the config's, as in Prometheus.
        g.targets[0] = Labels::from_pairs([("__address__", "h:1"), ("__param_other", "z")]);
        let jt = compute_job(&cfg, &[&g]);
        assert_eq!(
            jt.active[0].discovered,
            Labels::from_pairs([
                ("__address__", "h:1"),
                ("__meta_x", "y"),
                ("__metrics_path__", "/m"),
                ("__param_module", "http_2xx"),
                ("__param_other", "z"),
                ("__scheme__", "https"),
                ("__scrape_interval__", "15s"),
                ("__scrape_timeout__", "10s"),
                ("job", "j"),
            ])
        );
        assert_eq!(
            jt.active[0].scrape_url,
            "https://h:1/m?module=http_2xx&other=z&other=b"
        );
    }

    #[test]
    fn target_limit_fails_every_target_of_the_job_and_keeps_placement() {
        let g = group(&["h:1", "h:2", "h:3"]);
        let under = compute_job(&job("    target_limit: 3\n"), &[&g]);
        assert!(
            under
                .active
                .iter()
                .all(|t| t.labels.get(labels::FORCED_ERROR).is_none())
        );
        let over = compute_job(&job("    target_limit: 2\n"), &[&g]);
        assert_eq!(over.active.len(), 3);
        for (o, u) in over.active.iter().zip(&under.active) {
            assert_eq!(
                o.labels.get(labels::FORCED_ERROR),
                Some("target_limit exceeded (number of targets: 3, limit: 2)")
            );
            // Same place, new loop: the id moves with the labels, the placement key does not.
            assert_eq!(o.placement_key, u.placement_key);
            assert_ne!(o.id, u.id);
            assert_eq!(o.labels.without_reserved(), u.labels.without_reserved());
        }
        // No limit: no error.
        let none = compute_job(&job(""), &[&g]);
        assert!(
            none.active
                .iter()
                .all(|t| t.labels.get(labels::FORCED_ERROR).is_none())
        );
    }

    #[test]
    fn keep_dropped_targets_keeps_the_first_and_counts_all() {
        let drop_all =
            "    relabel_configs: [{action: drop, source_labels: [__address__], regex: 'h:.*'}]\n";
        let (g1, g2) = (group(&["h:1", "h:2"]), group(&["h:3", "h:4"]));
        let jt = compute_job(&job(drop_all), &[&g1, &g2]);
        assert_eq!((jt.dropped.len(), jt.dropped_count), (4, 4));
        let jt = compute_job(
            &job(&format!("{drop_all}    keep_dropped_targets: 3\n")),
            &[&g1, &g2],
        );
        let kept: Vec<_> = jt
            .dropped
            .iter()
            .map(|d| d.discovered.get("__address__").unwrap())
            .collect();
        assert_eq!(kept, ["h:1", "h:2", "h:3"]);
        assert_eq!(jt.dropped_count, 4);
    }
}
