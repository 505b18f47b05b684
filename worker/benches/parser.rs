//! Exposition parser throughput on real bodies (`testdata/`, gzipped in the repository), next to the
//! `prometheus-parse` crate as a reference.
//!
//! - `steady`: every entry, each sample's series, value and timestamp read: the path of a
//!   scrape whose series are all in the cache.
//! - `labels`: the same plus `labels_into` for every sample: a first scrape (cache empty).
//! - `prometheus-parse`: `Scrape::parse` over the body's lines.
//!
//! Each is reported per byte (`bytes/...`, MB/s) and per sample (`samples/...`, ns/sample).
//! Run: `cargo bench -p promshard-worker --bench parser`.

// The parser is compiled in directly: it only needs `std`, and the worker keeps it private.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/scrape/parser/mod.rs"]
mod parser;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use parser::{Entry, Format, MetricType, Parser};

#[path = "../src/testdata.rs"]
mod testdata;
use testdata::testdata;

/// Reads every entry; returns the sample count (and keeps the work observable).
fn parse_steady(body: &[u8]) -> usize {
    let mut n = 0;
    let mut p = Parser::new(body, Format::Text);
    while let Some(e) = p.next_entry().expect("fixture parses") {
        if let Entry::Sample(s) = e {
            black_box((s.series, s.value, s.timestamp_ms));
            n += 1;
        }
    }
    n
}

fn parse_with_labels(body: &[u8]) -> usize {
    let mut n = 0;
    let mut buf = Vec::new();
    let mut p = Parser::new(body, Format::Text);
    while let Some(e) = p.next_entry().expect("fixture parses") {
        if let Entry::Sample(s) = e {
            s.labels_into(&mut buf).expect("labels");
            black_box((&s.name, &buf, s.value, s.timestamp_ms));
            n += 1;
        }
    }
    n
}

/// Each sample's series text, type and newlines, as a processor's cache holds them.
fn known_texts(body: &[u8], format: Format) -> Vec<(&[u8], MetricType, usize)> {
    Parser::new(body, format)
        .map(|e| e.expect("fixture parses"))
        .filter_map(|e| match e {
            Entry::Sample(s) => Some((
                s.series,
                s.metric_type,
                s.series.iter().filter(|&&c| c == b'\n').count(),
            )),
            _ => None,
        })
        .collect()
}

/// A steady scrape as the processor reads it: the expected series offered first
/// (`next_known`, bytes compared where the processor compares a hash), `next_entry` for the
/// rest (metadata lines).
fn parse_known(body: &[u8], format: Format, texts: &[(&[u8], MetricType, usize)]) -> usize {
    let mut p = Parser::new(body, format);
    let mut n = 0;
    for &(text, mtype, newlines) in texts {
        loop {
            if let Some(k) = p.next_known(text.len(), newlines, mtype, |t| t == text) {
                black_box((k.value, k.timestamp_ms));
                n += 1;
                break;
            }
            match p.next_entry().expect("fixture parses") {
                Some(Entry::Sample(_)) => panic!("a known series was not taken"),
                Some(_) => continue,
                None => return n,
            }
        }
    }
    n
}

fn parse_reference(body: &str) -> usize {
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("fixture parses");
    black_box(&scrape);
    scrape.samples.len()
}

fn bench(c: &mut Criterion) {
    for name in ["cadvisor_110pods.prom", "node_exporter.prom"] {
        let body = testdata(name);
        let text = String::from_utf8(body.clone()).expect("fixture is UTF-8");
        let samples = parse_steady(&body);
        eprintln!(
            "{name}: {} bytes, {samples} samples (prometheus-parse finds {})",
            body.len(),
            parse_reference(&text)
        );
        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(body.len() as u64)),
            ("samples", Throughput::Elements(samples as u64)),
        ] {
            let mut g = c.benchmark_group(format!("{unit}/{name}"));
            g.throughput(throughput);
            g.bench_function(BenchmarkId::from_parameter("steady"), |b| {
                b.iter(|| parse_steady(black_box(&body)))
            });
            g.bench_function(BenchmarkId::from_parameter("labels"), |b| {
                b.iter(|| parse_with_labels(black_box(&body)))
            });
            g.bench_function(BenchmarkId::from_parameter("prometheus-parse"), |b| {
                b.iter(|| parse_reference(black_box(&text)))
            });
            g.finish();
        }
    }
    // The known-series fast path in both formats, on the cAdvisor fixture; as OpenMetrics
    // it only needs `# EOF` (its millisecond timestamps then read as seconds, which parse
    // the same way).
    let text = testdata("cadvisor_110pods.prom");
    let mut om = text.clone();
    om.extend_from_slice(b"# EOF\n");
    let mut g = c.benchmark_group("samples/cadvisor_110pods.prom/formats");
    for (format, body) in [(Format::Text, &text), (Format::OpenMetrics, &om)] {
        let texts = known_texts(body, format);
        g.throughput(Throughput::Elements(texts.len() as u64));
        g.bench_function(BenchmarkId::new("next_entry", format!("{format:?}")), |b| {
            b.iter(|| {
                let mut p = Parser::new(black_box(body), format);
                let mut n = 0usize;
                while let Some(e) = p.next_entry().expect("fixture parses") {
                    n += usize::from(matches!(e, Entry::Sample(_)));
                }
                n
            })
        });
        g.bench_function(BenchmarkId::new("next_known", format!("{format:?}")), |b| {
            b.iter(|| parse_known(black_box(body), format, &texts))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Kept short: the machine is shared.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
