//! Target identity and label population: what a target *is*, decided once in the master and
//! read identically by the worker.
//!
//! Two hashes, on purpose:
//! - the **target id** hashes the job and the full post-relabel label set, so any label change
//!   yields a new target, exactly as Prometheus replaces a scrape loop when labels change;
//! - the **placement key** hashes only the immutable scrape identity (job, scheme, address,
//!   metrics path, params), so label churn never moves a target to another worker and both
//!   owners agree on its scrape phase during a handoff.

use std::fmt::Write as _;

use xxhash_rust::xxh3::xxh3_64;

use crate::config::ScrapeConfig;
use crate::duration::PromDuration;
use crate::labels::{self, Labels, LabelsBuilder};
use crate::relabel;

const SEP: u8 = 0xff;

/// Outcome of populating and relabeling one discovered target.
#[derive(Clone, Debug, PartialEq)]
pub enum Populated {
    /// Kept: final labels, still including `__address__`, `__scheme__`, ... (`__meta_*` removed).
    Target(Labels),
    /// Dropped by relabeling; carries the labels it had before relabeling.
    Dropped,
}

/// Prometheus's `PopulateLabels` (scrape/target.go), 3.x behaviour: no default port is added.
/// `discovered` is the merged group + target label set (target labels win).
pub fn populate_labels(cfg: &ScrapeConfig, discovered: &Labels) -> Result<Populated, String> {
    let mut lb = prepare(cfg, discovered);
    if !relabel::process(&cfg.relabel_configs, &mut lb) {
        return Ok(Populated::Dropped);
    }
    finish(lb)
}

/// Prometheus's `PopulateDiscoveredLabels`: the discovered labels with the job's defaults and
/// `__param_*` added where absent (what `/api/v1/targets` shows as `discoveredLabels`, and
/// where relabeling starts; the explain view steps through the rules from here).
pub fn prepare(cfg: &ScrapeConfig, discovered: &Labels) -> LabelsBuilder {
    let mut lb = discovered.builder();
    let defaults = [
        (labels::JOB, cfg.job_name.clone()),
        (labels::SCRAPE_INTERVAL, cfg.interval().to_string()),
        (labels::SCRAPE_TIMEOUT, cfg.timeout().to_string()),
        (labels::METRICS_PATH, cfg.metrics_path.clone()),
        (labels::SCHEME, cfg.scheme.as_str().to_string()),
    ];
    for (name, value) in defaults {
        if lb.get(name).is_none() {
            lb.set(name, value);
        }
    }
    for (k, v) in &cfg.params {
        let name = format!("{}{k}", labels::PARAM_PREFIX);
        if let Some(first) = v.first()
            && lb.get(&name).is_none()
        {
            lb.set(name, first.clone());
        }
    }
    lb
}

/// The part of `PopulateLabels` after relabeling, shared with the explain view.
pub fn finish(mut lb: LabelsBuilder) -> Result<Populated, String> {
    let addr = match lb.get(labels::ADDRESS) {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => return Err("no address".into()),
    };
    crate::config::check_target_address(&addr)?;
    for name in [labels::SCRAPE_INTERVAL, labels::SCRAPE_TIMEOUT] {
        let v = lb.get(name).unwrap_or("").to_string();
        let d = PromDuration::parse(&v).map_err(|e| format!("error parsing {name} label: {e}"))?;
        if d.0.is_zero() {
            return Err(format!("{name} label cannot be 0"));
        }
    }
    let interval =
        PromDuration::parse(lb.get(labels::SCRAPE_INTERVAL).unwrap_or("")).unwrap_or_default();
    let timeout =
        PromDuration::parse(lb.get(labels::SCRAPE_TIMEOUT).unwrap_or("")).unwrap_or_default();
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:} > {interval})"
        ));
    }
    lb.retain(|l| !l.name.starts_with(labels::META_PREFIX));
    if lb.get(labels::INSTANCE).is_none() {
        lb.set(labels::INSTANCE, addr);
    }
    Ok(Populated::Target(lb.into_labels()))
}

/// The id of a target: job plus every final label. Rendered as 16 hex digits.
pub fn target_id(labels: &Labels) -> String {
    let mut buf = Vec::with_capacity(256);
    for l in labels {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(SEP);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(SEP);
    }
    format!("{:016x}", xxh3_64(&buf))
}

/// The immutable placement key: job, scheme, address, metrics path and `__param_*` labels.
pub fn placement_key(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for name in [
        labels::JOB,
        labels::SCHEME,
        labels::ADDRESS,
        labels::METRICS_PATH,
    ] {
        buf.extend_from_slice(labels.get(name).unwrap_or("").as_bytes());
        buf.push(SEP);
    }
    for l in labels
        .iter()
        .filter(|l| l.name.starts_with(labels::PARAM_PREFIX))
    {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(SEP);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(SEP);
    }
    xxh3_64(&buf)
}

/// Phase of a target's scrapes within its interval, in milliseconds: scrapes happen at absolute
/// times `t` with `t mod interval == offset`. A pure function of the placement key, so every
/// worker that ever owns the target scrapes it in the same slots.
pub fn scrape_offset_ms(placement_key: u64, interval_ms: u64) -> u64 {
    if interval_ms == 0 {
        0
    } else {
        placement_key % interval_ms
    }
}

/// The scrape URL, as Prometheus's `Target.URL()`: config params, overridden by `__param_*`
/// labels, encoded sorted by key.
pub fn scrape_url(
    labels: &Labels,
    cfg_params: &std::collections::BTreeMap<String, Vec<String>>,
) -> String {
    let mut params = cfg_params.clone();
    for l in labels
        .iter()
        .filter(|l| l.name.starts_with(labels::PARAM_PREFIX))
    {
        let key = &l.name[labels::PARAM_PREFIX.len()..];
        let entry = params.entry(key.to_string()).or_default();
        if entry.is_empty() {
            entry.push(l.value.clone());
        } else {
            entry[0] = l.value.clone();
        }
    }
    let mut url = format!(
        "{}://{}{}",
        labels.get(labels::SCHEME).unwrap_or("http"),
        labels.get(labels::ADDRESS).unwrap_or(""),
        labels.get(labels::METRICS_PATH).unwrap_or("/metrics"),
    );
    let mut first = true;
    for (k, vs) in &params {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(&mut url, k);
            url.push('=');
            query_escape(&mut url, v);
        }
    }
    url
}

/// Go's `url.QueryEscape`.
fn query_escape(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn job(yaml: &str) -> ScrapeConfig {
        Config::parse(yaml).unwrap().scrape_configs.remove(0)
    }

    #[test]
    fn populate_sets_defaults_and_instance() {
        let cfg = job("scrape_configs: [{job_name: node, scrape_interval: 15s}]");
        let disc = Labels::from_pairs([
            ("__address__", "10.0.0.1:9100"),
            ("__meta_x", "y"),
            ("team", "a"),
        ]);
        let Populated::Target(l) = populate_labels(&cfg, &disc).unwrap() else {
            panic!("dropped")
        };
        assert_eq!(
            l,
            Labels::from_pairs([
                ("__address__", "10.0.0.1:9100"),
                ("__metrics_path__", "/metrics"),
                ("__scheme__", "http"),
                ("__scrape_interval__", "15s"),
                ("__scrape_timeout__", "10s"),
                ("instance", "10.0.0.1:9100"),
                ("job", "node"),
                ("team", "a"),
            ])
        );
    }

    #[test]
    fn relabel_drop_and_missing_address() {
        let cfg = job(
            "scrape_configs: [{job_name: j, relabel_configs: [{source_labels: [team], regex: b, action: drop}]}]",
        );
        let drop = Labels::from_pairs([("__address__", "a:1"), ("team", "b")]);
        assert_eq!(populate_labels(&cfg, &drop).unwrap(), Populated::Dropped);
        assert_eq!(
            populate_labels(&cfg, &Labels::from_pairs([("team", "c")])),
            Err("no address".into())
        );
    }

    #[test]
    fn url_merges_params_like_prometheus() {
        let cfg = job("scrape_configs: [{job_name: j, params: {module: [http_2xx], b: [x y]}}]");
        let disc = Labels::from_pairs([("__address__", "h:1"), ("__param_module", "icmp")]);
        let Populated::Target(l) = populate_labels(&cfg, &disc).unwrap() else {
            panic!()
        };
        // A discovered `__param_` wins over the config's (Prometheus since 2.38, "Target
        // parameter labels should not be overridden by config params").
        assert_eq!(
            scrape_url(&l, &cfg.params),
            "http://h:1/metrics?b=x+y&module=icmp"
        );
    }

    #[test]
    fn placement_key_ignores_plain_labels() {
        let a = Labels::from_pairs([("__address__", "h:1"), ("job", "j"), ("team", "a")]);
        let b = Labels::from_pairs([("__address__", "h:1"), ("job", "j"), ("team", "b")]);
        assert_eq!(placement_key(&a), placement_key(&b));
        assert_ne!(target_id(&a), target_id(&b));
    }
}
