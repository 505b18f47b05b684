//! The result table, in Markdown so it can be pasted into README.md and docs/BENCHMARKS.md as is.

use std::fmt::Write;

use crate::run::{Measurement, System, Usage};

/// The peers promshard is compared with, in column order.
const PEERS: [(System, &str); 2] = [
    (System::Vmagent, "vmagent"),
    (System::Prometheus, "Prometheus agent"),
];

type Figure = fn(&Measurement, &Usage) -> f64;

/// One table: a row per figure, a column per system that ran, and the ratio promshard / each
/// peer that ran.
pub fn table(results: &[Measurement]) -> String {
    let find = |s: System| results.iter().find(|m| m.system == s);
    let promshard = find(System::Promshard);
    let peers: Vec<(&Measurement, &str)> = PEERS
        .iter()
        .filter_map(|(s, name)| find(*s).map(|m| (m, *name)))
        .collect();
    let mut out = String::new();
    let mut head = "| figure | promshard (master + worker) | promshard worker alone |".to_owned();
    let mut rule = "| --- | ---: | ---: |".to_owned();
    for (_, name) in &peers {
        head.push_str(&format!(" {name} |"));
        rule.push_str(" ---: |");
    }
    for (_, name) in &peers {
        head.push_str(&format!(" promshard / {name} |"));
        rule.push_str(" ---: |");
    }
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "{rule}");
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
        let mut line = format!("| {name} | {} | {} |", cell(a, decimals), cell(w, decimals));
        let values: Vec<f64> = peers.iter().map(|(m, _)| figure(m, &m.total)).collect();
        for v in &values {
            line.push_str(&format!(" {} |", cell(Some(*v), decimals)));
        }
        for v in &values {
            let ratio = match a {
                Some(a) if *v != 0.0 => format!("{:.2}×", a / v),
                _ => "–".to_owned(),
            };
            line.push_str(&format!(" {ratio} |"));
        }
        let _ = writeln!(out, "{line}");
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

/// Several paired rounds: each round's CPU, memory and delivery figures for every system that
/// ran and promshard's ratios to each peer, then the median of each column. On a shared machine
/// one round can be 10–20 % off for any system; the median of paired ratios is steadier than any
/// single one.
pub fn rounds(rounds: &[Vec<Measurement>]) -> String {
    let ran: Vec<(System, &str)> = [(System::Promshard, "promshard")]
        .into_iter()
        .chain(PEERS)
        .filter(|(s, _)| rounds.iter().any(|r| r.iter().any(|m| m.system == *s)))
        .collect();
    let peers: Vec<(System, &str)> = ran
        .iter()
        .copied()
        .filter(|(s, _)| *s != System::Promshard)
        .collect();
    let figures: [(&str, Figure, usize, bool); 3] = [
        ("CPU-s/M", |m, u| m.cpu_per_million(u), 2, true),
        ("B/series", |m, u| m.steady_bytes_per_series(u), 0, true),
        (
            "delivered",
            |m, _| m.samples_per_second() / m.expected_samples_per_second,
            3,
            false,
        ),
    ];
    // (header, decimals, is a ratio)
    let mut columns: Vec<(String, usize, bool)> = Vec::new();
    for (what, _, decimals, ratios) in &figures {
        for (_, name) in &ran {
            columns.push((format!("{name} {what}"), *decimals, false));
        }
        if *ratios {
            for (_, name) in &peers {
                columns.push((format!("{what} / {name}"), 2, true));
            }
        }
    }
    let mut out = String::new();
    let head: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let _ = writeln!(out, "| round | {} |", head.join(" | "));
    let _ = writeln!(out, "| --- |{}", " ---: |".repeat(columns.len()));
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
    let show = |v: f64, c: &(String, usize, bool)| {
        let s = cell(Some(v), c.1);
        if c.2 { format!("{s}×") } else { s }
    };
    for (i, results) in rounds.iter().enumerate() {
        let get = |system: System, figure: Figure| {
            results
                .iter()
                .find(|m| m.system == system)
                .map_or(f64::NAN, |m| figure(m, &m.total))
        };
        let mut row = Vec::new();
        for (_, figure, _, ratios) in &figures {
            for (s, _) in &ran {
                row.push(get(*s, *figure));
            }
            if *ratios {
                for (s, _) in &peers {
                    row.push(get(System::Promshard, *figure) / get(*s, *figure));
                }
            }
        }
        let cells: Vec<String> = row.iter().zip(&columns).map(|(v, c)| show(*v, c)).collect();
        for (col, v) in values.iter_mut().zip(row) {
            col.push(v);
        }
        let _ = writeln!(out, "| {} | {} |", i + 1, cells.join(" | "));
    }
    let medians: Vec<String> = values
        .iter()
        .zip(&columns)
        .map(|(v, c)| show(median(v), c))
        .collect();
    let _ = writeln!(out, "| median | {} |", medians.join(" | "));
    out
}

/// The median of the finite values (the mean of the middle two for an even count); NaN for
/// none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        Some(_) => "n/a".to_owned(),
        None => "–".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_unusable_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0, 1.0, 9.0]), 5.0);
        assert!(median(&[f64::NAN]).is_nan());
        assert!(median(&[]).is_nan());
    }
}
