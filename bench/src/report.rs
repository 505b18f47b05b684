//! The result table, in Markdown so it can be pasted into README.md and docs/BENCHMARKS.md as is.

use std::fmt::Write;

use crate::run::{Measurement, System, Usage};

/// One table: a row per figure, a column per system, and the ratio promshard / Prometheus.
pub fn table(results: &[Measurement]) -> String {
    let promshard = results.iter().find(|m| m.system == System::Promshard);
    let prometheus = results.iter().find(|m| m.system == System::Prometheus);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | promshard (master + worker) | promshard worker alone | Prometheus agent | promshard / Prometheus |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
    type Figure = fn(&Measurement, &Usage) -> f64;
    let rows: [(&str, Figure, usize); 7] = [
        (
            "CPU-seconds per million samples",
            |m, u| m.cpu_per_million(u),
            2,
        ),
        ("CPU cores used (mean)", |m, u| m.cores(u), 3),
        (
            "steady RSS per active series (bytes)",
            |m, u| m.steady_bytes_per_series(u),
            0,
        ),
        (
            "peak RSS per active series (bytes)",
            |m, u| m.peak_bytes_per_series(u),
            0,
        ),
        (
            "steady RSS (MiB)",
            |_, u| u.steady_rss as f64 / 1048576.0,
            1,
        ),
        (
            "samples/s delivered to the sink",
            |m, _| m.samples_per_second(),
            0,
        ),
        (
            "delivered / scraped-expected",
            |m, _| m.samples_per_second() / m.expected_samples_per_second,
            3,
        ),
    ];
    for (name, figure, decimals) in rows {
        let a = promshard.map(|m| figure(m, &m.total));
        let w = promshard.and_then(|m| m.worker.as_ref().map(|u| figure(m, u)));
        let p = prometheus.map(|m| figure(m, &m.total));
        let ratio = match (a, p) {
            (Some(a), Some(p)) if p != 0.0 => format!("{:.2}×", a / p),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {ratio} |",
            cell(a, decimals),
            cell(w, decimals),
            cell(p, decimals)
        );
    }
    out
}

/// The conditions under which the figures were taken, one line per system.
pub fn conditions(results: &[Measurement]) -> String {
    let mut out = String::new();
    for m in results {
        let _ = writeln!(
            out,
            "- {:?}: window {:.1} s, {} active series, expected {:.0} samples/s, {} scrapes, \
             {} remote-write requests ({:.1} MiB snappy, {:.0} samples each), {} rejected, pids {:?}",
            m.system,
            m.window.as_secs_f64(),
            m.active_series,
            m.expected_samples_per_second,
            m.scrapes,
            m.sink.requests,
            m.sink.bytes as f64 / 1048576.0,
            m.sink.samples as f64 / m.sink.requests.max(1) as f64,
            m.sink.rejected,
            m.pids,
        );
        if !m.remote_storage.is_empty() {
            let counters: Vec<String> = m
                .remote_storage
                .iter()
                .map(|(name, v)| {
                    let short = name.trim_start_matches("prometheus_remote_storage_");
                    format!("{short} {v:.0}")
                })
                .collect();
            let _ = writeln!(
                out,
                "  - its own counters over the window: {}",
                counters.join(", ")
            );
        }
    }
    out
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        Some(_) => "n/a".to_owned(),
        None => "–".to_owned(),
    }
}
