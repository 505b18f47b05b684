//! The protobuf exposition format against the text format on the same data: each fixture of
//! `testdata/` (gzipped in the repository) is converted to delimited `MetricFamily` messages (its families, labels,
//! values and timestamps; the conversion is checked to give the text parser's samples), then
//! both bodies are read the way a scrape reads them:
//! - `text`: the text parser over the body, every sample's series, value and timestamp;
//! - `protobuf`: prost decoding into [`parser::Decoded`] (what a protobuf scrape does first),
//!   then the same walk over its entries.
//!
//! Reported per sample (ns/sample) and per body byte. Run:
//! `cargo bench -p promshard-worker --bench protobuf`.

// Compiled in directly, as the scrape path has them (both are private to the worker).
#[allow(dead_code, unreachable_pub)]
#[path = "../src/scrape/parser/mod.rs"]
mod parser;
// Benches build with `cfg(test)` but without the test harness: the test module's imports
// serve only `#[test]` functions, which are left out.
#[allow(dead_code, unreachable_pub, unused_imports)]
#[path = "../src/scrape/protobuf.rs"]
mod protobuf;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promshard_proto::exposition as pb;
use prost::Message;

use parser::{Decoded, Entry, Format, MetricType, Parser};

#[path = "../src/testdata.rs"]
mod testdata;
use testdata::testdata;

/// The text body as delimited protobuf: one family per `# TYPE` (or per untyped name), one
/// metric per label set (without `le`/`quantile` for histograms and summaries).
fn to_protobuf(text: &[u8]) -> Vec<u8> {
    let mut families: Vec<pb::MetricFamily> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut metrics: HashMap<(usize, Vec<(String, String)>), usize> = HashMap::new();
    let mut typed: Option<(String, MetricType)> = None;
    let mut buf = Vec::new();
    let pb_type = |kind: MetricType| match kind {
        MetricType::Counter => pb::MetricType::Counter,
        MetricType::Gauge => pb::MetricType::Gauge,
        MetricType::Summary => pb::MetricType::Summary,
        MetricType::Histogram => pb::MetricType::Histogram,
        _ => pb::MetricType::Untyped,
    } as i32;
    let mut family = |name: &str, kind: MetricType, fams: &mut Vec<pb::MetricFamily>| {
        let i = *by_name.entry(name.to_string()).or_insert_with(|| {
            fams.push(pb::MetricFamily {
                name: name.to_string(),
                ..Default::default()
            });
            fams.len() - 1
        });
        fams[i].r#type = pb_type(kind);
        i
    };
    for e in Parser::new(text, Format::Text) {
        let s = match e.expect("fixture parses") {
            Entry::Type { name, kind } => {
                family(&name, kind, &mut families);
                typed = Some((name.into_owned(), kind));
                continue;
            }
            Entry::Help { name, help } => {
                let i = family(&name, MetricType::Unknown, &mut families);
                families[i].help = help.into_owned();
                continue;
            }
            Entry::Sample(s) => s,
            Entry::Unit { .. } | Entry::Histogram { .. } => continue,
        };
        let name = s.name.as_ref();
        let (fam, kind, suffix) = match &typed {
            Some((f, k @ (MetricType::Histogram | MetricType::Summary)))
                if name.starts_with(f.as_str()) =>
            {
                (f.clone(), *k, &name[f.len()..])
            }
            Some((f, k)) if f == name => (f.clone(), *k, ""),
            _ => (name.to_string(), MetricType::Unknown, ""),
        };
        let fi = family(&fam, kind, &mut families);
        s.labels_into(&mut buf).expect("labels");
        let mut special = None;
        let mut labels: Vec<(String, String)> = Vec::new();
        for (n, v) in &buf {
            if (kind == MetricType::Histogram && n == "le")
                || (kind == MetricType::Summary && n == "quantile")
            {
                special = Some(v.parse::<f64>().expect("float label"));
            } else {
                labels.push((n.to_string(), v.to_string()));
            }
        }
        labels.sort();
        let mi = *metrics.entry((fi, labels.clone())).or_insert_with(|| {
            let f = &mut families[fi];
            f.metric.push(pb::Metric {
                label: labels
                    .iter()
                    .map(|(name, value)| pb::LabelPair {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                timestamp_ms: s.timestamp_ms.unwrap_or(0),
                ..Default::default()
            });
            f.metric.len() - 1
        });
        let m = &mut families[fi].metric[mi];
        let v = s.value;
        match (kind, suffix) {
            (MetricType::Counter, _) => {
                m.counter = Some(pb::Counter {
                    value: v,
                    ..Default::default()
                })
            }
            (MetricType::Gauge, _) => m.gauge = Some(pb::Gauge { value: v }),
            (MetricType::Summary, "_sum") => m.summary.get_or_insert_default().sample_sum = v,
            (MetricType::Summary, "_count") => {
                m.summary.get_or_insert_default().sample_count = v as u64
            }
            (MetricType::Summary, _) => {
                m.summary
                    .get_or_insert_default()
                    .quantile
                    .push(pb::Quantile {
                        quantile: special.unwrap_or_default(),
                        value: v,
                    })
            }
            (MetricType::Histogram, "_sum") => m.histogram.get_or_insert_default().sample_sum = v,
            (MetricType::Histogram, "_count") => {
                m.histogram.get_or_insert_default().sample_count = v as u64
            }
            (MetricType::Histogram, _) => {
                m.histogram.get_or_insert_default().bucket.push(pb::Bucket {
                    cumulative_count: v as u64,
                    upper_bound: special.unwrap_or(f64::INFINITY),
                    ..Default::default()
                })
            }
            _ => m.untyped = Some(pb::Untyped { value: v }),
        }
    }
    let mut out = Vec::new();
    for f in &families {
        f.encode_length_delimited(&mut out).expect("Vec grows");
    }
    out
}

const CLASSIC: protobuf::Options = protobuf::Options {
    ignore_native: true,
    keep_classic: false,
};

fn walk(p: Parser<'_>) -> usize {
    let mut n = 0;
    for e in p {
        if let Entry::Sample(s) = e.expect("fixture parses") {
            black_box((s.series, s.value, s.timestamp_ms));
            n += 1;
        }
    }
    n
}

fn read_text(body: &[u8]) -> usize {
    walk(Parser::new(body, Format::Text))
}

fn read_protobuf(body: &[u8]) -> usize {
    let mut d = Decoded::default();
    protobuf::decode(body, CLASSIC, &mut d, &mut Vec::new()).expect("decodes");
    walk(Parser::decoded(&d))
}

fn bench(c: &mut Criterion) {
    for name in ["node_exporter.prom", "cadvisor_110pods.prom"] {
        let text = testdata(name);
        let proto = to_protobuf(&text);
        let samples = read_text(&text);
        assert_eq!(read_protobuf(&proto), samples, "{name}: same samples");
        eprintln!(
            "{name}: {samples} samples; text {} bytes, protobuf {} bytes",
            text.len(),
            proto.len()
        );
        let mut g = c.benchmark_group(format!("samples/{name}"));
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_function(BenchmarkId::from_parameter("text"), |b| {
            b.iter(|| read_text(black_box(&text)))
        });
        g.bench_function(BenchmarkId::from_parameter("protobuf"), |b| {
            b.iter(|| read_protobuf(black_box(&proto)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // Kept short: the machine is shared.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
