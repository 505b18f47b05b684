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

/// Several paired rounds: each round's CPU and memory figures and ratios, then the median of
/// each column. On a shared machine one round can be 10–20 % off for either system; the
/// median of paired ratios is steadier than any single one.
pub fn rounds(rounds: &[Vec<Measurement>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| round | promshard CPU-s/M | Prometheus CPU-s/M | CPU ratio | promshard B/series | Prometheus B/series | RSS ratio |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut columns: [Vec<f64>; 6] = Default::default();
    for (i, results) in rounds.iter().enumerate() {
        let get = |system: System, figure: fn(&Measurement, &Usage) -> f64| {
            results
                .iter()
                .find(|m| m.system == system)
                .map_or(f64::NAN, |m| figure(m, &m.total))
        };
        let cpu = |m: &Measurement, u: &Usage| m.cpu_per_million(u);
        let rss = |m: &Measurement, u: &Usage| m.steady_bytes_per_series(u);
        let (a, b) = (get(System::Promshard, cpu), get(System::Prometheus, cpu));
        let (c, d) = (get(System::Promshard, rss), get(System::Prometheus, rss));
        let row = [a, b, a / b, c, d, c / d];
        for (col, v) in columns.iter_mut().zip(row) {
            col.push(v);
        }
        let _ = writeln!(out, "| {} | {} |", i + 1, round_cells(&row));
    }
    let medians = columns.map(|c| median(&c));
    let _ = writeln!(out, "| median | {} |", round_cells(&medians));
    out
}

fn round_cells(row: &[f64; 6]) -> String {
    let decimals = [2, 2, 2, 0, 0, 2];
    row.iter()
        .zip(decimals)
        .enumerate()
        .map(|(i, (v, d))| {
            let v = cell(Some(*v), d);
            if i == 2 || i == 5 {
                format!("{v}×")
            } else {
                v
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
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
