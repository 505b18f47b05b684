//! Remote write on the wire, 1.0 against 2.0, on one scrape of the cadvisor fixture
//! (`testdata/cadvisor_110pods.prom.gz`, 110 pods' containers) cut into requests of
//! `max_samples_per_send` (Prometheus's default, 2,000) as a shard would send them:
//!
//! - bytes per sample on the wire (snappy-compressed body), printed once;
//! - encode + compress time per sample (`samples/...`, criterion's throughput in elements).
//!
//! Run: `cargo bench -p promshard-worker --bench remote_write`.

#[allow(dead_code, unreachable_pub)]
#[path = "../src/scrape/parser/mod.rs"]
mod parser;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parser::{Entry, Format, Parser};
use promshard_model::LabelsBuilder;
use promshard_worker::remote_write::{
    EncodeBuffers, MetadataMap, MetricMetadata, Sample, encode_v1, encode_v2,
};

const MAX_SAMPLES_PER_SEND: usize = 2_000;

#[path = "../src/testdata.rs"]
mod testdata;
use testdata::testdata;

fn family<'m>(m: &'m mut MetadataMap, name: &str) -> &'m mut MetricMetadata {
    m.entry(name.to_owned()).or_insert_with(|| MetricMetadata {
        family: name.to_owned(),
        kind: "unknown".into(),
        ..Default::default()
    })
}

/// The fixture as a worker would hand it to remote write: target labels attached, one
/// timestamp, and the metadata its `# TYPE`/`# HELP` lines declare.
fn scrape(body: &[u8]) -> (Vec<Sample>, MetadataMap) {
    let mut samples = Vec::new();
    let mut metadata = MetadataMap::new();
    let mut buf = Vec::new();
    let mut p = Parser::new(body, Format::Text);
    while let Some(e) = p.next_entry().expect("fixture parses") {
        match e {
            Entry::Help { name, help } => family(&mut metadata, &name).help = help.into_owned(),
            Entry::Type { name, kind } => {
                family(&mut metadata, &name).kind = kind.as_str().to_owned()
            }
            Entry::Unit { .. } | Entry::Histogram { .. } => {}
            Entry::Sample(s) => {
                s.labels_into(&mut buf).expect("labels");
                let mut lb = LabelsBuilder::new();
                for (n, v) in &buf {
                    lb.set(n.to_string(), v.to_string());
                }
                lb.set("__name__", s.name.to_string());
                lb.set("instance", "10.0.3.17:10250");
                lb.set("job", "kubernetes-cadvisor");
                samples.push(Sample::new(&lb.into_labels(), 1_700_000_000_000, s.value));
            }
        }
    }
    (samples, metadata)
}

fn bench(c: &mut Criterion) {
    let (samples, metadata) = scrape(&testdata("cadvisor_110pods.prom"));
    let batches: Vec<&[Sample]> = samples.chunks(MAX_SAMPLES_PER_SEND).collect();
    let mut buf = EncodeBuffers::default();
    let v1: usize = batches.iter().map(|b| encode_v1(b, &mut buf).len()).sum();
    let v2: usize = batches
        .iter()
        .map(|b| encode_v2(b, &metadata, &mut buf).len())
        .sum();
    let v2_bare: usize = batches
        .iter()
        .map(|b| encode_v2(b, &MetadataMap::new(), &mut buf).len())
        .sum();
    let n = samples.len() as f64;
    eprintln!(
        "cadvisor_110pods: {} samples in {} requests; on the wire per sample: \
         1.0 {:.2} B, 2.0 {:.2} B with metadata ({:.2} B without)",
        samples.len(),
        batches.len(),
        v1 as f64 / n,
        v2 as f64 / n,
        v2_bare as f64 / n,
    );
    let mut g = c.benchmark_group("samples/cadvisor_110pods");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function(BenchmarkId::from_parameter("1.0 encode+snappy"), |b| {
        let mut buf = EncodeBuffers::default();
        b.iter(|| {
            for batch in &batches {
                black_box(encode_v1(black_box(batch), &mut buf));
            }
        })
    });
    g.bench_function(BenchmarkId::from_parameter("2.0 encode+snappy"), |b| {
        let mut buf = EncodeBuffers::default();
        b.iter(|| {
            for batch in &batches {
                black_box(encode_v2(black_box(batch), &metadata, &mut buf));
            }
        })
    });
    // The compression share: snappy alone on the 1.0 protobuf bodies.
    let raw: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| {
            let compressed = encode_v1(b, &mut buf);
            snap::raw::Decoder::new()
                .decompress_vec(&compressed)
                .expect("own output")
        })
        .collect();
    g.bench_function(BenchmarkId::from_parameter("1.0 snappy only"), |b| {
        let mut enc = snap::raw::Encoder::new();
        b.iter(|| {
            for body in &raw {
                black_box(enc.compress_vec(black_box(body)).expect("compresses"));
            }
        })
    });
    g.finish();
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
