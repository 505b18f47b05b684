use std::borrow::Cow;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

use super::super::parser::{Decoded, Entry, Format, MetricType, Parser, Sample};
use super::testdata::{FAMILIES, IGNORE_NATIVE, Want};
use super::*;

fn pool() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/proto");
    protox::Compiler::new([dir])
        .unwrap()
        .include_imports(true)
        .open_file("io/prometheus/client/metrics.proto")
        .unwrap()
        .descriptor_pool()
}

/// Families written as text-format protobuf, as a delimited body (Prometheus's
/// `metricFamiliesToProtobuf`).
pub(crate) fn delimited(families: &[&str]) -> Vec<u8> {
    let desc = pool()
        .get_message_by_name("io.prometheus.client.MetricFamily")
        .unwrap();
    let mut out = Vec::new();
    for f in families {
        let msg = DynamicMessage::parse_text_format(desc.clone(), f)
            .unwrap_or_else(|e| panic!("{e}: {f}"));
        msg.encode_length_delimited(&mut out).unwrap();
    }
    out
}

const CLASSIC: Options = Options {
    ignore_native: true,
    keep_classic: false,
};

fn decoded(body: &[u8], opts: Options) -> Result<Decoded, String> {
    Ok(decoded_all(body, opts)?.0)
}

fn decoded_all(body: &[u8], opts: Options) -> Result<(Decoded, Vec<Histogram>), String> {
    let mut d = Decoded::default();
    let mut h = Vec::new();
    decode(body, opts, &mut d, &mut h)?;
    Ok((d, h))
}

/// A sample's series as `name{a="b",...}`, labels sorted.
fn rendered(s: &Sample<'_>) -> String {
    let mut buf = Vec::new();
    s.labels_into(&mut buf).unwrap();
    render(
        &s.name,
        buf.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn render(name: &str, mut labels: Vec<(String, String)>) -> String {
    labels.sort();
    if labels.is_empty() {
        return name.to_string();
    }
    let l: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{name}{{{}}}", l.join(","))
}

/// A Prometheus series key (`entryBytes`: the name, then `0xff name 0xff value` per label,
/// for these inputs whose label names all sort after `__name__`) rendered as [`rendered`].
fn prometheus_rendered(m: &[u8]) -> String {
    let mut parts = m
        .split(|&b| b == 0xff)
        .map(|p| String::from_utf8(p.to_vec()).unwrap());
    let name = parts.next().unwrap();
    let rest: Vec<String> = parts.collect();
    render(
        &name,
        rest.chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
    )
}

/// Entry by entry, what Prometheus's `TestProtobufParse` expects with native histograms
/// ignored: names, series, values, timestamps and label sets.
#[test]
fn prometheus_inputs_give_prometheus_entries_with_native_histograms_ignored() {
    let d = decoded(&delimited(FAMILIES), CLASSIC).unwrap();
    let mut p = Parser::decoded(&d);
    let mut labels = Vec::new();
    for (i, want) in IGNORE_NATIVE.iter().enumerate() {
        let got = p
            .next_entry()
            .unwrap()
            .unwrap_or_else(|| panic!("entry {i}: end"));
        match (want, got) {
            (Want::Help(m, help), Entry::Help { name, help: h }) => {
                assert_eq!((name.as_bytes(), h.as_ref()), (*m, *help), "entry {i}");
            }
            (Want::Unit(m, unit), Entry::Unit { name, unit: u }) => {
                assert_eq!((name.as_bytes(), u), (*m, *unit), "entry {i}");
            }
            (Want::Type(m, kind), Entry::Type { name, kind: k }) => {
                assert_eq!((name.as_bytes(), k), (*m, *kind), "entry {i}");
            }
            (Want::Sample { m, v, t, lset, .. }, Entry::Sample(s)) => {
                assert_eq!(rendered(&s), prometheus_rendered(m), "entry {i}");
                let v: f64 = v.parse().unwrap();
                assert_eq!(s.value.to_bits(), v.to_bits(), "entry {i}: {:?}", s.series);
                assert_eq!(s.timestamp_ms, *t, "entry {i}");
                s.labels_into(&mut labels).unwrap();
                let mut got: Vec<(Cow<str>, Cow<str>)> = labels.clone();
                got.push(("__name__".into(), s.name.clone()));
                got.sort();
                let mut want: Vec<(Cow<str>, Cow<str>)> = lset
                    .iter()
                    .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v)))
                    .collect();
                want.sort();
                assert_eq!(got, want, "entry {i}");
            }
            (_, got) => panic!("entry {i}: got {got:?}"),
        }
    }
    assert_eq!(p.next_entry().unwrap(), None, "no more entries");
}

#[test]
fn a_broken_body_fails_with_prometheus_words() {
    let body = delimited(&[r#"name: "a" type: GAUGE metric: < gauge: < value: 1 > >"#]);
    // The length prefix says one byte more than there is.
    let mut short = body.clone();
    short[0] += 1;
    let n = body.len();
    assert_eq!(
        decoded(&short, CLASSIC).unwrap_err(),
        format!(
            "clientpb: insufficient length of buffer, expected at least {} bytes, got {n} bytes",
            n + 1
        )
    );
    // A prefix longer than a 32-bit varint.
    assert_eq!(
        decoded(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], CLASSIC).unwrap_err(),
        "clientpb: invalid varint encountered"
    );
    // Not a MetricFamily.
    assert!(
        decoded(&[0x02, 0x0a, 0x05], CLASSIC)
            .unwrap_err()
            .starts_with("proto: ")
    );
    let unknown_type = pb::MetricFamily {
        name: "a".into(),
        r#type: 9,
        metric: vec![pb::Metric::default()],
        ..Default::default()
    };
    assert_eq!(
        decoded(&unknown_type.encode_length_delimited_to_vec(), CLASSIC).unwrap_err(),
        r#"unknown metric type for metric "a": 9"#
    );
    // Labels are checked when read (a series cache miss).
    let no_label_name =
        delimited(&[r#"name: "a" type: GAUGE metric: < label: < value: "x" > gauge: < > >"#]);
    assert_eq!(
        first_labels_error(&decoded(&no_label_name, CLASSIC).unwrap()),
        "invalid label name: "
    );
    let no_name = delimited(&[r#"type: GAUGE metric: < gauge: < > >"#]);
    assert_eq!(
        decoded(&no_name, CLASSIC).unwrap_err(),
        "invalid metric name: "
    );
}

#[test]
fn a_family_without_metrics_yields_nothing_and_an_empty_body_is_empty() {
    let body = delimited(&[r#"name: "a" help: "h" type: COUNTER"#]);
    assert!(decoded(&body, CLASSIC).unwrap().is_empty());
    assert!(decoded(&[], CLASSIC).unwrap().is_empty());
}

#[test]
fn a_nan_value_is_the_normal_nan_never_a_stale_marker() {
    let stale = f64::from_bits(promshard_proto::STALE_NAN_BITS);
    let mf = pb::MetricFamily {
        name: "a".into(),
        r#type: pb::MetricType::Gauge as i32,
        metric: vec![pb::Metric {
            gauge: Some(pb::Gauge { value: stale }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let d = decoded(&mf.encode_length_delimited_to_vec(), CLASSIC).unwrap();
    let sample = Parser::decoded(&d)
        .filter_map(Result::ok)
        .find_map(|e| match e {
            Entry::Sample(s) => Some(s.value),
            _ => None,
        })
        .unwrap();
    assert_eq!(sample.to_bits(), 0x7ff8_0000_0000_0001);
}

/// The protobuf exposition of a text body gives the text parser's samples: names, labels
/// (`le` and `quantile` formatted alike), values, timestamps and types.
#[test]
fn protobuf_gives_the_samples_the_text_format_gives() {
    let text = "# HELP http_requests_total Requests.\n\
        # TYPE http_requests_total counter\n\
        http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n\
        # TYPE temp gauge\n\
        temp -3.5\n\
        # TYPE rpc summary\n\
        rpc{quantile=\"0.5\"} 4.2\n\
        rpc{quantile=\"1\"} 9\n\
        rpc_sum 17.5\n\
        rpc_count 3\n\
        # TYPE lat histogram\n\
        lat_bucket{le=\"0.1\",path=\"/\"} 1\n\
        lat_bucket{le=\"1\",path=\"/\"} 2\n\
        lat_bucket{le=\"+Inf\",path=\"/\"} 3\n\
        lat_sum{path=\"/\"} 2.5\n\
        lat_count{path=\"/\"} 3\n";
    let proto = delimited(&[
        r#"name: "http_requests_total" help: "Requests." type: COUNTER
           metric: < label: < name: "method" value: "get" > label: < name: "code" value: "200" >
                     counter: < value: 1027 > timestamp_ms: 1395066363000 >"#,
        r#"name: "temp" type: GAUGE metric: < gauge: < value: -3.5 > >"#,
        r#"name: "rpc" type: SUMMARY metric: < summary: < sample_count: 3 sample_sum: 17.5
           quantile: < quantile: 0.5 value: 4.2 > quantile: < quantile: 1 value: 9 > > >"#,
        // No +Inf bucket: the decoder adds it from the count.
        r#"name: "lat" type: HISTOGRAM metric: < label: < name: "path" value: "/" >
           histogram: < sample_count: 3 sample_sum: 2.5
             bucket: < upper_bound: 0.1 cumulative_count: 1 >
             bucket: < upper_bound: 1 cumulative_count: 2 > > >"#,
    ]);
    type Row = (Vec<(String, String)>, u64, Option<i64>, MetricType);
    fn samples(p: Parser<'_>) -> Vec<Row> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for e in p {
            if let Entry::Sample(s) = e.unwrap() {
                s.labels_into(&mut buf).unwrap();
                let mut l: Vec<(String, String)> = buf
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                l.push(("__name__".into(), s.name.to_string()));
                l.sort();
                out.push((l, s.value.to_bits(), s.timestamp_ms, s.metric_type));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
    let d = decoded(&proto, CLASSIC).unwrap();
    let from_text = samples(Parser::new(text.as_bytes(), Format::Text));
    assert_eq!(from_text.len(), 11);
    assert_eq!(samples(Parser::decoded(&d)), from_text);
}

/// A native histogram read with native histograms off is its classic self: `_count`, `_sum`
/// and the classic buckets, or only `+Inf` when it has none (Prometheus's
/// `ignoreNativeHistograms`).
#[test]
fn a_native_histogram_read_as_classic_keeps_count_sum_and_buckets() {
    let body = delimited(&[r#"name: "n" type: HISTOGRAM metric: < histogram: <
        sample_count: 4 sample_sum: 10 schema: 0 zero_threshold: 0.001 zero_count: 1
        positive_span: < offset: 0 length: 2 > positive_delta: 1 positive_delta: 1 > >"#]);
    let d = decoded(&body, CLASSIC).unwrap();
    let keys: Vec<(String, f64)> = Parser::decoded(&d)
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) => Some((rendered(&s), s.value)),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("n_count".to_string(), 4.0),
            ("n_sum".to_string(), 10.0),
            ("n_bucket{le=\"+Inf\"}".to_string(), 4.0),
        ]
    );
}

fn family(name: &str) -> &'static str {
    FAMILIES
        .iter()
        .find(|f| f.starts_with(&format!("name: \"{name}\"")))
        .unwrap()
}

/// Entries as (kind, series key), histograms by index.
fn outline(d: &Decoded) -> Vec<(&'static str, String)> {
    Parser::decoded(d)
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) => Some(("sample", rendered(&s))),
            Entry::Histogram { series, index } => {
                Some(("histogram", format!("{}#{index}", rendered(&series))))
            }
            _ => None,
        })
        .collect()
}

const NATIVE: Options = Options {
    ignore_native: false,
    keep_classic: false,
};

/// Prometheus's `test_histogram` input read with native histograms on: one integer histogram,
/// as its first `TestProtobufParse` scenario expects (spans and deltas as exposed), labels and
/// timestamp on the entry.
#[test]
fn a_native_histogram_is_one_entry_with_prometheus_values() {
    let (d, h) = decoded_all(&delimited(&[family("test_histogram")]), NATIVE).unwrap();
    assert_eq!(outline(&d), [("histogram", "test_histogram#0".to_string())]);
    let span = |offset, length| Span { offset, length };
    assert_eq!(
        h,
        [Histogram {
            schema: 3,
            zero_threshold: 2.938735877055719e-39,
            sum: 0.0008280461746287094,
            positive_spans: vec![span(-161, 1), span(8, 3)],
            negative_spans: vec![span(-162, 1), span(23, 4)],
            counts: Counts::Int {
                count: 175,
                zero_count: 2,
                positive: vec![1, 2, -1, -1],
                negative: vec![1, 3, -2, -1, 1],
            },
            custom_values: vec![],
            gauge: false,
        }]
    );
    let Some(Entry::Histogram { series, .. }) = Parser::decoded(&d)
        .filter_map(Result::ok)
        .find(|e| matches!(e, Entry::Histogram { .. }))
    else {
        panic!("no histogram entry");
    };
    assert_eq!(series.timestamp_ms, Some(1234568));
    assert_eq!(series.metric_type, MetricType::Histogram);

    let (_, g) = decoded_all(&delimited(&[family("test_gauge_histogram")]), NATIVE).unwrap();
    assert!(g[0].gauge);
    let (_, f) = decoded_all(&delimited(&[family("test_float_histogram")]), NATIVE).unwrap();
    assert!(f[0].is_float(), "{:?}", f[0]);
}

/// `always_scrape_classic_histograms`: the native histogram, then its classic series, in
/// Prometheus's order; a histogram without native parts stays classic either way.
#[test]
fn keep_classic_adds_the_classic_series_after_the_native_histogram() {
    let body = delimited(&[family("test_histogram"), family("empty_histogram")]);
    let keep = Options {
        keep_classic: true,
        ..NATIVE
    };
    let (d, _) = decoded_all(&body, keep).unwrap();
    let got = outline(&d);
    assert_eq!(got[0], ("histogram", "test_histogram#0".to_string()));
    assert_eq!(got[1], ("sample", "test_histogram_count".to_string()));
    assert_eq!(got[2], ("sample", "test_histogram_sum".to_string()));
    assert_eq!(
        got[3],
        (
            "sample",
            "test_histogram_bucket{le=\"-0.0004899999999999998\"}".to_string()
        )
    );
    assert_eq!(
        got.iter().filter(|(k, _)| *k == "sample").count(),
        2 + 4,
        "count, sum, 3 buckets, +Inf: {got:?}"
    );
    // empty_histogram has a no-op span: native, and no classic buckets to keep.
    assert_eq!(
        got.last().unwrap(),
        &("histogram", "empty_histogram#1".to_string())
    );
}

/// Spans that need more buckets than there are fail the scrape, in Prometheus's words.
#[test]
fn an_inconsistent_native_histogram_fails() {
    let body = delimited(&[r#"name: "h" type: HISTOGRAM metric: < histogram: <
        schema: 0 positive_span: < offset: 0 length: 3 > positive_delta: 1 > >"#]);
    assert_eq!(
        decoded(&body, NATIVE).unwrap_err(),
        r#"histogram "h": positive side: spans require 3 buckets, have 1"#
    );
}

/// Every one of Prometheus's inputs with native histograms on, and with their classic series
/// kept too: the same series, in the same order, native histograms where Prometheus has them.
#[test]
fn prometheus_inputs_give_prometheus_series_with_native_histograms() {
    use super::testdata::{KEEP_CLASSIC_KEYS, NATIVE_KEYS};
    let body = delimited(FAMILIES);
    for (opts, want) in [
        (NATIVE, NATIVE_KEYS),
        (
            Options {
                keep_classic: true,
                ..NATIVE
            },
            KEEP_CLASSIC_KEYS,
        ),
    ] {
        let (d, h) = decoded_all(&body, opts).unwrap();
        let got: Vec<(String, bool)> = Parser::decoded(&d)
            .filter_map(|e| match e.unwrap() {
                Entry::Sample(s) => Some((rendered(&s), false)),
                Entry::Histogram { series, .. } => Some((rendered(&series), true)),
                _ => None,
            })
            .collect();
        let want: Vec<(String, bool)> = want
            .iter()
            .map(|(m, n)| (prometheus_rendered(m), *n))
            .collect();
        assert_eq!(got, want, "{opts:?}");
        assert_eq!(h.len(), want.iter().filter(|(_, n)| *n).count());
    }
}

/// Labels are read in place: invalid UTF-8 in a label value fails the scrape with Prometheus's
/// words (`parseLabel`), as a missing name does.
#[test]
fn invalid_utf8_in_a_label_value_fails() {
    let mf = pb::MetricFamily {
        name: "a".into(),
        r#type: pb::MetricType::Gauge as i32,
        metric: vec![pb::Metric {
            label: vec![pb::LabelPair {
                name: "l".into(),
                value: "\u{e9}".into(),
            }],
            gauge: Some(pb::Gauge { value: 1.0 }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut body = mf.encode_length_delimited_to_vec();
    // "é" is 0xc3 0xa9; cut it to a lone lead byte followed by ASCII.
    let at = body.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    body[at + 1] = b'x';
    let e = first_labels_error(&decoded(&body, CLASSIC).unwrap());
    assert!(e.starts_with("invalid label value: "), "{e}");
}

/// The error of the first sample whose labels do not read.
fn first_labels_error(d: &Decoded) -> String {
    let mut buf = Vec::new();
    Parser::decoded(d)
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) => s.labels_into(&mut buf).err().map(|e| e.to_string()),
            _ => None,
        })
        .next()
        .expect("a label error")
}
