//! Driving a local promshard cluster (master + workers as processes) and reading its APIs, for
//! the multi-process tests of placement, handoff and failure handling.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::launcher::Process;

/// `GET url` on a Prometheus-style API; the `data` member on success.
pub async fn api(url: &str) -> Result<Value, String> {
    let v: Value = reqwest::get(url)
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("API error: {v}"));
    }
    Ok(v["data"].clone())
}

/// Target address → owning worker ("" when unowned), from the master's targets API.
pub async fn owners(master_http: &str) -> Result<BTreeMap<String, String>, String> {
    let data = api(&format!("{master_http}/api/v1/targets?state=active")).await?;
    let mut out = BTreeMap::new();
    for t in data["activeTargets"].as_array().ok_or("no activeTargets")? {
        let addr = t["discoveredLabels"]["__address__"]
            .as_str()
            .ok_or("no address")?
            .to_string();
        let owner = t["worker"].as_str().unwrap_or("").to_string();
        out.insert(addr, owner);
    }
    Ok(out)
}

/// The value of one sample on a `/metrics` page, by its exact series text as exposed (for
/// example `promshard_master_handoffs_total{outcome="completed"}`); 0 when absent, as
/// counters that were never incremented are.
pub async fn metric(base_url: &str, series: &str) -> Result<f64, String> {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(series).and_then(|r| r.strip_prefix(' ')) {
            let v = v.split(' ').next().unwrap_or(v);
            return v.parse().map_err(|e| format!("{line:?}: {e}"));
        }
    }
    Ok(0.0)
}

/// The sum of every series of metric `name` on a `/metrics` page (all label values), e.g. a
/// counter per remote-write endpoint; 0 when absent.
pub async fn metric_sum(base_url: &str, name: &str) -> Result<f64, String> {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labeled) = rest.strip_prefix('{') {
            labeled.rsplit_once("} ").map(|(_, v)| v)
        } else {
            rest.strip_prefix(' ')
        };
        if let Some(v) = value {
            let v = v.split(' ').next().unwrap_or(v);
            sum += v.parse::<f64>().map_err(|e| format!("{line:?}: {e}"))?;
        }
    }
    Ok(sum)
}

pub async fn start_master(config: &Path, extra: &[&str]) -> Process {
    let mut args = vec![
        "master",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--listen-grpc",
        "127.0.0.1:0",
        "--listen-http",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Process::spawn("master", &args).await
}

/// A worker with its data dir under `dir/<id>` (the same dir on a restart).
pub async fn start_worker(id: &str, grpc: &str, dir: &Path, extra: &[&str]) -> Process {
    let data = dir.join(id).display().to_string();
    let mut args = vec![
        "worker",
        "--master",
        grpc,
        "--id",
        id,
        "--listen-http",
        "127.0.0.1:0",
        "--data-dir",
        &data,
    ];
    args.extend_from_slice(extra);
    Process::spawn(id, &args).await
}

/// How a series' samples fall on its scrape slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotReport {
    pub samples: usize,
    /// Slots with no sample between the first and the last sample.
    pub missed: usize,
    /// Extra samples in a slot that already had one.
    pub doubled: usize,
}

/// Checks a series scraped every `interval_ms` (timestamps are scrape start times, one per
/// slot). Scrapes are scheduled at a fixed phase and can only be late, by scheduling delay
/// (a loop skips a tick it missed entirely), so a sample belongs to the slot at or before it:
/// a scrape that a loaded machine started 700 ms late still fills its slot, where rounding
/// the gaps between samples would count one miss and one double for it. The phase is the one
/// that makes the samples least late in total.
pub fn slot_report(samples: &[(i64, f64)], interval_ms: i64) -> SlotReport {
    let mut ts: Vec<i64> = samples.iter().map(|(t, _)| *t).collect();
    ts.sort_unstable();
    let mut r = SlotReport {
        samples: ts.len(),
        ..SlotReport::default()
    };
    let phase = phase_of(&ts, interval_ms);
    let slots: Vec<i64> = ts
        .iter()
        .map(|t| (t - phase).div_euclid(interval_ms))
        .collect();
    for w in slots.windows(2) {
        match w[1] - w[0] {
            0 => r.doubled += 1,
            1 => {}
            n => r.missed += (n - 1) as usize,
        }
    }
    r
}

/// The residue modulo `interval_ms` from which the samples are least late in total.
fn phase_of(ts: &[i64], interval_ms: i64) -> i64 {
    let mut residues: Vec<i64> = ts.iter().map(|t| t.rem_euclid(interval_ms)).collect();
    residues.sort_unstable();
    let mut candidates = residues.clone();
    candidates.dedup();
    candidates
        .into_iter()
        .min_by_key(|&p| {
            residues
                .iter()
                .map(|&r| (r - p).rem_euclid(interval_ms))
                .sum::<i64>()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_report_counts_misses_and_doubles() {
        let s = |ts: &[i64]| ts.iter().map(|t| (*t, 1.0)).collect::<Vec<_>>();
        assert_eq!(slot_report(&s(&[0, 1000, 2010, 2990]), 1000).missed, 0);
        let r = slot_report(&s(&[0, 1000, 3000, 3020, 4000]), 1000);
        assert_eq!((r.missed, r.doubled, r.samples), (1, 1, 5));
        // One scrape 700 ms late fills its slot; two in one slot are a double even when
        // the phase sits just before a whole second.
        let late = slot_report(&s(&[990, 1990, 3690, 3990, 4990]), 1000);
        assert_eq!((late.missed, late.doubled), (0, 0));
        let r = slot_report(&s(&[990, 1990, 2010, 2990, 4990]), 1000);
        assert_eq!((r.missed, r.doubled), (1, 1));
    }
}
