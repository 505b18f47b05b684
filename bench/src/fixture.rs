//! The exposition bodies the target farm serves: fixtures shipped gzipped in the repository's `testdata/`
//! (so a fresh clone benchmarks the same bytes as the parser tests), loaded once with
//! their sample timestamps stripped.
//!
//! Timestamps go because the cAdvisor fixture carries fixed ones from 2024: both Prometheus and
//! promshard honor exposed timestamps by default, and samples that old would be out of bounds
//! for any receiver and would get no staleness handling, so neither scraper would do the work a
//! real scrape of a live kubelet costs.

use std::io::Read;

use anyhow::Context;

/// Which fixture the farm serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FixtureKind {
    /// cAdvisor of a kubelet with 110 pods: 8,250 series, long label sets.
    Cadvisor,
    /// node_exporter: ~500 series, short label sets, histograms and summaries.
    Node,
}

const CADVISOR_GZ: &[u8] = include_bytes!("../../testdata/cadvisor_110pods.prom.gz");
const NODE_GZ: &[u8] = include_bytes!("../../testdata/node_exporter.prom.gz");

/// A loaded fixture: the body to serve and how many samples it exposes.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub kind: FixtureKind,
    pub body: bytes::Bytes,
    pub series: usize,
}

impl Fixture {
    pub fn load(kind: FixtureKind) -> anyhow::Result<Fixture> {
        let gz = match kind {
            FixtureKind::Cadvisor => CADVISOR_GZ,
            FixtureKind::Node => NODE_GZ,
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .with_context(|| format!("decompressing the {kind:?} fixture"))?;
        let (body, series) = strip_timestamps(&text);
        Ok(Fixture {
            kind,
            body: body.into(),
            series,
        })
    }
}

/// Removes the optional timestamp after each sample's value; returns the new text and the number
/// of sample lines. Comments and blank lines are kept as they are.
pub fn strip_timestamps(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut samples = 0;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        samples += 1;
        let series_end = series_end(line);
        let (series, rest) = line.split_at(series_end);
        let mut fields = rest.split_whitespace();
        out.push_str(series.trim_end());
        if let Some(value) = fields.next() {
            out.push(' ');
            out.push_str(value);
        }
        out.push('\n');
    }
    (out, samples)
}

/// Byte offset just past a sample line's series (`name` or `name{...}`), skipping quoted label
/// values, which may hold spaces, braces and escaped quotes.
fn series_end(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'{' && !bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == bytes.len() || bytes[i] != b'{' {
        return i;
    }
    let mut in_quotes = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'}' if !in_quotes => return i + 1,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_timestamps_and_keeps_everything_else() {
        let text = "# HELP a An a.\n# TYPE a counter\n\
                    a{x=\"1 2\",y=\"}\\\" 3\"} 5.5 1732000000000\n\
                    b 7 1732000000000\n\
                    c{} 1\n\
                    d 2\n";
        let (body, samples) = strip_timestamps(text);
        assert_eq!(
            body,
            "# HELP a An a.\n# TYPE a counter\n\
             a{x=\"1 2\",y=\"}\\\" 3\"} 5.5\n\
             b 7\n\
             c{} 1\n\
             d 2\n"
        );
        assert_eq!(samples, 4);
    }

    #[test]
    fn fixtures_load_without_timestamps() {
        let cadvisor = Fixture::load(FixtureKind::Cadvisor).unwrap();
        assert_eq!(cadvisor.series, 8250);
        let text = std::str::from_utf8(&cadvisor.body).unwrap();
        assert!(!text.contains("1732000000000"));
        let node = Fixture::load(FixtureKind::Node).unwrap();
        assert_eq!(node.series, 507);
        let node_text = std::str::from_utf8(&node.body).unwrap();
        // Every sample line has exactly a series and a value left.
        for line in node_text.lines().filter(|l| !l.starts_with('#')) {
            let end = series_end(line);
            assert_eq!(line[end..].split_whitespace().count(), 1, "{line}");
        }
    }
}
