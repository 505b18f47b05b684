//! `GET /api/v1/targets/explain`: everything the master knows about one target, in one answer.
//!
//! - what discovery found (`discoveredLabels`);
//! - target relabeling stepped rule by rule, recomputed from the running config with the same
//!   code the master uses ([`target::prepare`], [`relabel::process_traced`], [`target::finish`]),
//!   so a dropped target names the rule that dropped it and an invalid one the check it failed;
//! - the owner and why: the placement strategy, its load bound, the owner's load against the
//!   mean and, for rendezvous placement, where the owner stands in the target's preference order;
//! - handoffs, series, last scrape and last error from the workers' load reports.
//!
//! Pure functions of a [`View`] and the load reports, so they are tested without a network.

use std::collections::{BTreeMap, HashMap};

use promshard_model::Labels;
use promshard_model::config::ScrapeConfig;
use promshard_model::relabel;
use promshard_model::target::{self, Populated};
use promshard_proto::control::TargetLoad;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::coordinator::View;
use crate::targets::{ActiveTarget, DroppedTarget};

/// The query: `id`, or `job` and `instance` (the final `instance` label, or the discovered
/// `__address__`, which is all a dropped target has).
#[derive(Debug, Default, Deserialize)]
pub struct ExplainQuery {
    pub id: Option<String>,
    pub job: Option<String>,
    pub instance: Option<String>,
}

/// How targets are placed, for the "why this owner" part.
#[derive(Clone, Debug)]
pub struct PlacementInfo {
    pub strategy: String,
    pub epsilon: f64,
}

/// Explains every target matching the query (usually one; a dropped target's address can
/// repeat). `Err` is a `bad_data` message (missing parameters, no such target).
pub fn explain(
    view: &View,
    loads: &HashMap<String, TargetLoad>,
    placement: &PlacementInfo,
    q: &ExplainQuery,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    match (&q.id, &q.job, &q.instance) {
        (Some(id), _, _) => {
            for jt in view.jobs.values() {
                for t in jt.active.iter().filter(|t| &t.id == id) {
                    out.push(explain_active(view, loads, placement, t));
                }
            }
            if out.is_empty() {
                return Err(format!("no active target with id {id:?}"));
            }
        }
        (None, Some(job), Some(instance)) => {
            let jt = view
                .jobs
                .get(job)
                .ok_or_else(|| format!("no scrape job {job:?} in the running config"))?;
            for t in &jt.active {
                let addr = t.labels.get("__address__");
                if t.labels.get("instance") == Some(instance) || addr == Some(instance) {
                    out.push(explain_active(view, loads, placement, t));
                }
            }
            for d in &jt.dropped {
                let addr = d.discovered.get("__address__");
                if addr == Some(instance) || d.discovered.get("instance") == Some(instance) {
                    out.push(explain_dropped(view, d));
                }
            }
            if out.is_empty() {
                return Err(format!(
                    "job {job:?} has no target with instance or address {instance:?}"
                ));
            }
        }
        _ => return Err("give id, or job and instance".into()),
    }
    Ok(out)
}

fn explain_active(
    view: &View,
    loads: &HashMap<String, TargetLoad>,
    placement: &PlacementInfo,
    t: &ActiveTarget,
) -> Value {
    let load = loads.get(&t.id);
    let owner = view.owners.get(&t.id);
    json!({
        "state": "active",
        "job": t.job,
        "id": t.id,
        "discoveredLabels": label_map(&t.discovered),
        "labels": label_map(&t.labels.without_reserved()),
        "targetLabels": label_map(&t.labels),
        "scrapeUrl": t.scrape_url,
        "relabel": relabel_steps(view.config.scrape_config(&t.job), &t.discovered),
        "owner": owner_why(view, loads, placement, t, owner.map(String::as_str)),
        "handoffs": handoffs(view, &t.id),
        "fences": fences(view, &t.id),
        "series": load.map(|l| l.series),
        "health": load.map_or("unknown", |l| if l.health.is_empty() { "unknown" } else { &l.health }),
        "lastScrape": load.map(|l| crate::http::rfc3339_ms(l.last_scrape_ms)),
        "lastScrapeDuration": load.map(|l| l.scrape_duration_seconds),
        "lastError": load.map_or("", |l| &l.last_error),
    })
}

fn explain_dropped(view: &View, d: &DroppedTarget) -> Value {
    json!({
        "state": "dropped",
        "job": d.job,
        "discoveredLabels": label_map(&d.discovered),
        "reason": d.reason,
        "relabel": relabel_steps(view.config.scrape_config(&d.job), &d.discovered),
        "owner": Value::Null,
        "handoffs": [],
        "fences": [],
    })
}

/// Target relabeling of `discovered`, one entry per rule applied, then the checks after it.
fn relabel_steps(cfg: Option<&ScrapeConfig>, discovered: &Labels) -> Value {
    let Some(cfg) = cfg else {
        return json!({"result": "unknown", "error": "the job is not in the running config"});
    };
    let mut lb = target::prepare(cfg, discovered);
    let initial = lb.labels();
    let (kept, trace) = relabel::process_traced(&cfg.relabel_configs, &mut lb);
    let mut before = initial.clone();
    let mut steps = Vec::with_capacity(trace.len());
    for step in &trace {
        let rule = cfg.relabel_configs.get(step.index);
        steps.push(json!({
            "index": step.index,
            "action": step.action.as_str(),
            "rule": rule.map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
            "kept": step.kept,
            "changes": diff(&before, &step.labels_after),
            "labels": label_map(&step.labels_after),
        }));
        before = step.labels_after.clone();
    }
    let dropped_by = trace.iter().find(|s| !s.kept).map(|s| {
        json!({
            "index": s.index,
            "action": s.action.as_str(),
            "rule": cfg.relabel_configs.get(s.index).map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
            "description": format!("relabel_configs[{}] (action {}) dropped the target", s.index, s.action.as_str()),
        })
    });
    let (result, error) = if !kept {
        ("dropped", None)
    } else {
        match target::finish(lb) {
            Ok(Populated::Target(_)) => ("kept", None),
            Ok(Populated::Dropped) => ("dropped", None),
            Err(e) => ("invalid", Some(e)),
        }
    };
    json!({
        "initialLabels": label_map(&initial),
        "rules": cfg.relabel_configs.len(),
        "steps": steps,
        "result": result,
        "droppedBy": dropped_by,
        "error": error,
    })
}

/// What one rule changed: labels added, removed, and changed (`[old, new]`).
fn diff(before: &Labels, after: &Labels) -> Value {
    let b = label_map(before);
    let a = label_map(after);
    let added: BTreeMap<&str, &str> = a
        .iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(k, v)| (*k, *v))
        .collect();
    let removed: Vec<&str> = b.keys().filter(|k| !a.contains_key(*k)).copied().collect();
    let changed: BTreeMap<&str, [&str; 2]> = a
        .iter()
        .filter_map(|(k, v)| b.get(k).filter(|old| *old != v).map(|old| (*k, [*old, *v])))
        .collect();
    json!({"added": added, "removed": removed, "changed": changed})
}

fn owner_why(
    view: &View,
    loads: &HashMap<String, TargetLoad>,
    placement: &PlacementInfo,
    t: &ActiveTarget,
    owner: Option<&str>,
) -> Value {
    let mut per_worker: BTreeMap<&str, u64> =
        view.workers.iter().map(|w| (w.id.as_str(), 0)).collect();
    for (id, w) in &view.owners {
        if let Some(s) = per_worker.get_mut(w.as_str()) {
            *s += loads.get(id).map_or(0, |l| l.series);
        }
    }
    let total: u64 = per_worker.values().sum();
    let n = per_worker.len().max(1) as f64;
    let mean = total as f64 / n;
    let preference = if placement.strategy == "bounded-rendezvous" {
        rendezvous_order(t.placement_key, view.workers.iter().map(|w| w.id.as_str()))
    } else {
        Vec::new()
    };
    let rank = owner.and_then(|o| preference.iter().position(|p| p == o));
    let reason = match (owner, rank) {
        (None, _) => "not placed yet: no worker is registered, or placement is settling after a \
                      master start"
            .to_string(),
        (Some(o), Some(0)) => format!(
            "{o} ranks first for this target's placement key and stayed within the load bound \
             (1 + {}) × mean",
            placement.epsilon
        ),
        (Some(o), Some(r)) => format!(
            "{o} is choice {} for this target's placement key: it already held the target and \
             placement keeps a target where it is while that worker has room, or the workers \
             ranked before it were full (at the load bound (1 + {}) × mean, or at their own \
             series capacity)",
            r + 1,
            placement.epsilon
        ),
        (Some(o), None) => format!(
            "{o} owns the placement key's point on the {} ring",
            placement.strategy
        ),
    };
    json!({
        "worker": owner,
        "strategy": placement.strategy,
        "epsilon": placement.epsilon,
        "placementKey": format!("{:016x}", t.placement_key),
        "preference": preference,
        "reason": reason,
        "workerSeries": owner.and_then(|o| per_worker.get(o)),
        "meanSeries": mean,
        "boundSeries": (1.0 + placement.epsilon) * mean,
        "connected": owner.and_then(|o| view.workers.iter().find(|w| w.id == o)).map(|w| w.connected),
    })
}

/// The order in which rendezvous placement tries workers for a key: highest score first. This
/// mirrors `placement::bounded` (seed = xxh3 of the worker id, score = xxh3 of the key with that
/// seed); the explain unit test checks the first choice against the strategy itself.
fn rendezvous_order<'a>(key: u64, workers: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(u64, &str)> = workers
        .map(|w| {
            let seed = xxhash_rust::xxh3::xxh3_64(w.as_bytes());
            (
                xxhash_rust::xxh3::xxh3_64_with_seed(&key.to_le_bytes(), seed),
                w,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().map(|(_, w)| w.to_string()).collect()
}

/// The target's recent handoffs (make-before-break moves between workers), oldest first, as
/// the coordinator records them in its [`View`].
fn handoffs(view: &View, id: &str) -> Vec<Value> {
    view.handoffs
        .iter()
        .filter(|h| h.target_id == id)
        .map(|h| {
            json!({
                "from": h.from,
                "to": h.to,
                "at": crate::http::rfc3339_ms(h.at_ms),
                "outcome": h.outcome,
            })
        })
        .collect()
}

/// The target's fences: after a move, its new owner holds its samples until the old owner has
/// delivered everything before the boundary to each remote-write endpoint (`state`: waiting,
/// released, timed_out; `released`: the endpoints reported so far).
fn fences(view: &View, id: &str) -> Vec<Value> {
    view.fences
        .iter()
        .filter(|f| f.target_id == id)
        .map(|f| {
            json!({
                "from": f.from,
                "to": f.to,
                "at": crate::http::rfc3339_ms(f.at_ms),
                "until": crate::http::rfc3339_ms(f.until_ms),
                "state": f.state,
                "released": f.released,
            })
        })
        .collect()
}

fn label_map(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use promshard_model::config::Config;

    use super::*;
    use crate::coordinator::WorkerView;
    use crate::discovery::TargetGroup;
    use crate::placement::{self, Item};

    const CONFIG: &str = r#"
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['a:1', 'b:2']
        labels: {env: prod}
      - targets: ['c:3']
        labels: {env: dev}
    relabel_configs:
      - source_labels: [__address__]
        target_label: host
        regex: '([^:]+):.*'
      - source_labels: [env]
        regex: dev
        action: drop
"#;

    fn view() -> View {
        let config = Arc::new(Config::parse(CONFIG).unwrap());
        let sc = config.scrape_config("app").unwrap();
        let g = |addrs: &[&str], env: &str| TargetGroup {
            source: String::new(),
            labels: Labels::from_pairs([("env", env)]),
            targets: addrs
                .iter()
                .map(|a| Labels::from_pairs([("__address__", *a)]))
                .collect(),
        };
        let groups = [g(&["a:1", "b:2"], "prod"), g(&["c:3"], "dev")];
        let jt = crate::targets::compute_job(sc, &groups.iter().collect::<Vec<_>>());
        let ids = ["w1", "w2", "w3"];
        let members: Vec<placement::Member> =
            ids.iter().map(|m| placement::Member::new(*m)).collect();
        let items: Vec<Item> = jt
            .active
            .iter()
            .map(|t| Item::new(t.placement_key, 1))
            .collect();
        let placed = placement::by_name("bounded-rendezvous", 10.0)
            .unwrap()
            .place(&members, &items);
        let owners = jt
            .active
            .iter()
            .zip(placed)
            .map(|(t, i)| (t.id.clone(), ids[i.unwrap()].to_string()))
            .collect();
        View {
            jobs: BTreeMap::from([("app".to_string(), jt)]),
            owners,
            workers: ids
                .iter()
                .map(|m| WorkerView {
                    id: m.to_string(),
                    connected: true,
                    targets: 0,
                    sent_generation: 1,
                    acked_generation: 1,
                    connected_since_ms: 0,
                    expires_at_ms: None,
                    capacity_series: 0,
                })
                .collect(),
            config,
            ..View::default()
        }
    }

    fn info() -> PlacementInfo {
        PlacementInfo {
            strategy: "bounded-rendezvous".into(),
            epsilon: 10.0,
        }
    }

    #[test]
    fn dropped_target_names_the_rule() {
        let v = view();
        let q = ExplainQuery {
            job: Some("app".into()),
            instance: Some("c:3".into()),
            id: None,
        };
        let out = explain(&v, &HashMap::new(), &info(), &q).unwrap();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e["state"], "dropped");
        assert_eq!(e["relabel"]["result"], "dropped");
        assert_eq!(e["relabel"]["droppedBy"]["index"], 1);
        assert_eq!(e["relabel"]["droppedBy"]["action"], "drop");
        assert_eq!(e["relabel"]["droppedBy"]["rule"]["regex"], "dev");
        let steps = e["relabel"]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0]["changes"]["added"]["host"], "c");
        assert_eq!(steps[1]["kept"], false);
    }

    #[test]
    fn active_target_owner_is_its_first_rendezvous_choice_when_unbounded() {
        let v = view();
        let q = ExplainQuery {
            job: Some("app".into()),
            instance: Some("a:1".into()),
            id: None,
        };
        let out = explain(&v, &HashMap::new(), &info(), &q).unwrap();
        let e = &out[0];
        assert_eq!(e["state"], "active");
        assert_eq!(e["relabel"]["result"], "kept");
        assert_eq!(e["labels"]["host"], "a");
        // With a loose bound every target sits on its first choice: the mirrored ranking
        // agrees with the strategy.
        assert_eq!(e["owner"]["worker"], e["owner"]["preference"][0]);
        let by_id = ExplainQuery {
            id: e["id"].as_str().map(str::to_string),
            ..ExplainQuery::default()
        };
        let again = explain(&v, &HashMap::new(), &info(), &by_id).unwrap();
        assert_eq!(again[0]["id"], e["id"]);
        assert!(explain(&v, &HashMap::new(), &info(), &ExplainQuery::default()).is_err());
    }
}
