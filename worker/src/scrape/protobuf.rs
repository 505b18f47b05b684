//! The protobuf exposition format: a body of length-delimited `io.prometheus.client.MetricFamily`
//! messages (`application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`),
//! decoded with prost into the [`Decoded`] entries the exposition parser hands on.
//!
//! It follows Prometheus's `model/textparse/protobufparse.go` (`ProtobufParser.Next`,
//! `getMagicName`, `getMagicLabel`, `isNativeHistogram`) and its streaming decoder
//! (`prompb/io/prometheus/client/decoder.go`), so a target yields the same entries, in the same
//! order, as Prometheus 3 reads from it:
//! - a family without metrics yields nothing; otherwise `HELP`, `UNIT` when set, `TYPE`;
//! - counters, gauges and untyped metrics one sample each, named after the family (no
//!   `_total` added); `timestamp_ms` 0 means no timestamp;
//! - a summary `_count`, `_sum`, then one sample per quantile (`quantile` formatted as
//!   OpenMetrics floats);
//! - a classic histogram `_count`, `_sum`, then `_bucket` per bucket up to the first `+Inf`
//!   one (an `le="+Inf"` bucket with the count is added when the target left it out); a
//!   `*_float` count overrides the integer one when it is not 0.
//!
//! Histograms with native parts (spans, a zero threshold or zero count) are read as classic
//! ones with [`Options::ignore_native`] (`scrape_native_histograms: false`), as Prometheus does:
//! their classic buckets, or only `_count`, `_sum` and `+Inf` when there are none. Otherwise
//! they are one native histogram sample (integer, or float when a `*_float` count is set),
//! followed by the classic series when [`Options::keep_classic`]
//! (`always_scrape_classic_histograms`) and the histogram has classic buckets.
//!
//! Decoding follows Prometheus's streaming decoder too: a family is read in place with its
//! metrics left as bytes, each metric decoded without its labels (`unmarshalWithoutMetrics`,
//! `unmarshalWithoutLabels`). The labels are not parsed at all here: a sample's series key is
//! its metric's `label` fields as encoded (plus `le`/`quantile`), and the parser reads them only
//! when the series cache misses, as the text formats' labels are. Decoding whole messages with
//! prost allocated two `String`s per label per sample: the cAdvisor fixture took 10 times the
//! text path's time (`benches/protobuf.rs`).
//!
//! Where this differs from Prometheus, on purpose: spans and buckets are kept as exposed;
//! Prometheus also compacts them (`Compact(0)`: empty buckets at span edges dropped, adjacent
//! spans merged), which describes the same distribution.

use promshard_model::histogram::{Counts, Histogram, Span};
use promshard_proto::exposition as pb;
use prost::Message;

use super::parser::pb::{Value, next_field};
use super::parser::{Decoded, MetricType, openmetrics_float};

/// How histograms are read (Prometheus's `ParserOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Read native histograms as classic ones (`scrape_native_histograms: false`).
    pub(crate) ignore_native: bool,
    /// Also the classic series of a native histogram that has classic buckets
    /// (`always_scrape_classic_histograms`).
    pub(crate) keep_classic: bool,
}

/// `io.prometheus.client.MetricFamily` read in place, its metrics left encoded.
#[derive(Default)]
struct FamilyHead<'a> {
    name: &'a str,
    help: &'a str,
    r#type: i32,
    metric: Vec<&'a [u8]>,
    unit: &'a str,
}

impl<'a> FamilyHead<'a> {
    fn read(mut b: &'a [u8]) -> Result<FamilyHead<'a>, String> {
        let text = |s: &'a [u8], what: &str| {
            std::str::from_utf8(s).map_err(|_| format!("proto: invalid UTF-8 in the family {what}"))
        };
        let mut f = FamilyHead::default();
        while !b.is_empty() {
            match next_field(&mut b)? {
                (1, Value::Bytes(s)) => f.name = text(s, "name")?,
                (2, Value::Bytes(s)) => f.help = text(s, "help")?,
                (3, Value::Varint(v)) => f.r#type = v as i32,
                (4, Value::Bytes(s)) => f.metric.push(s),
                (5, Value::Bytes(s)) => f.unit = text(s, "unit")?,
                _ => {}
            }
        }
        Ok(f)
    }
}

/// `io.prometheus.client.Metric` without its labels (field 1, read by [`metric_labels`]).
#[derive(Clone, PartialEq, prost::Message)]
struct MetricBody {
    #[prost(message, optional, tag = "2")]
    gauge: Option<pb::Gauge>,
    #[prost(message, optional, tag = "3")]
    counter: Option<pb::Counter>,
    #[prost(message, optional, tag = "4")]
    summary: Option<pb::Summary>,
    #[prost(message, optional, tag = "5")]
    untyped: Option<pb::Untyped>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<pb::Histogram>,
    #[prost(int64, tag = "6")]
    timestamp_ms: i64,
}

/// `binary.MaxVarintLen32`: Prometheus refuses a longer length prefix.
const MAX_PREFIX: usize = 5;

/// Decodes a whole body into `out`, native histograms into `histograms` (which
/// [`Entry::Histogram`](super::parser::Entry::Histogram) indexes). Any error fails the scrape
/// (nothing of it is kept), with Prometheus's wording.
pub(crate) fn decode(
    body: &[u8],
    opts: Options,
    out: &mut Decoded,
    histograms: &mut Vec<Histogram>,
) -> Result<(), String> {
    // Sized for the whole body at once: growing the arenas cost a copy each time.
    out.reserve(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (len, n) = prefix(rest).ok_or("clientpb: invalid varint encountered")?;
        let total = n.saturating_add(len);
        if total > rest.len() {
            return Err(format!(
                "clientpb: insufficient length of buffer, expected at least {total} bytes, got {} bytes",
                rest.len()
            ));
        }
        let mf = FamilyHead::read(&rest[n..total])?;
        rest = &rest[total..];
        family(&mf, opts, out, histograms)?;
    }
    Ok(())
}

/// The varint length prefix of a message: (length, bytes it took).
fn prefix(b: &[u8]) -> Option<(usize, usize)> {
    let mut v: u64 = 0;
    for (i, &c) in b.iter().take(MAX_PREFIX).enumerate() {
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, i + 1));
        }
    }
    None
}

fn family(
    mf: &FamilyHead,
    opts: Options,
    out: &mut Decoded,
    histograms: &mut Vec<Histogram>,
) -> Result<(), String> {
    if mf.metric.is_empty() {
        return Ok(());
    }
    let name = mf.name;
    // `model.UTF8Validation.IsValidMetricName`: any non-empty UTF-8 (prost checked UTF-8).
    if name.is_empty() {
        return Err(format!("invalid metric name: {name}"));
    }
    let kind = match pb::MetricType::try_from(mf.r#type) {
        Ok(pb::MetricType::Counter) => MetricType::Counter,
        Ok(pb::MetricType::Gauge) => MetricType::Gauge,
        Ok(pb::MetricType::Summary) => MetricType::Summary,
        Ok(pb::MetricType::Untyped) => MetricType::Unknown,
        Ok(pb::MetricType::Histogram) => MetricType::Histogram,
        Ok(pb::MetricType::GaugeHistogram) => MetricType::GaugeHistogram,
        Err(_) => {
            return Err(format!(
                "unknown metric type for metric {name:?}: {}",
                mf.r#type
            ));
        }
    };
    out.push_help(name, mf.help);
    if !mf.unit.is_empty() {
        out.push_unit(name, mf.unit);
    }
    out.push_type(name, kind);
    let mut fields = Vec::new();
    for raw in &mf.metric {
        let m = MetricBody::decode(*raw).map_err(|e| format!("proto: {e}"))?;
        let m = &m;
        let ts = (m.timestamp_ms != 0).then_some(m.timestamp_ms);
        if let (MetricType::Histogram | MetricType::GaugeHistogram, Some(h), false) =
            (kind, &m.histogram, opts.ignore_native)
            && is_native(h)
        {
            check_consistency(h).map_err(|e| format!("histogram {name:?}: {e}"))?;
            let index = histograms.len() as u32;
            histograms.push(native(h, kind == MetricType::GaugeHistogram));
            label_fields(raw, &mut fields)?;
            out.push_histogram(name, &fields, index, ts, kind);
            if !opts.keep_classic || h.bucket.is_empty() {
                continue;
            }
        }
        label_fields(raw, &mut fields)?;
        let fields = &fields;
        let mut sample = |suffix: &str, extra: Option<(&str, String)>, value: f64| {
            let full;
            let metric_name = if suffix.is_empty() {
                name
            } else {
                full = format!("{name}{suffix}");
                &full
            };
            let extra = extra.as_ref().map(|(n, v)| (*n, v.as_str()));
            out.push_sample(metric_name, fields, extra, value, ts, kind);
            Ok::<(), String>(())
        };
        match kind {
            MetricType::Counter => sample("", None, m.counter.as_ref().map_or(0.0, |c| c.value))?,
            MetricType::Gauge => sample("", None, m.gauge.as_ref().map_or(0.0, |g| g.value))?,
            MetricType::Unknown => sample("", None, m.untyped.as_ref().map_or(0.0, |u| u.value))?,
            MetricType::Summary => {
                let none = pb::Summary::default();
                let s = m.summary.as_ref().unwrap_or(&none);
                sample("_count", None, s.sample_count as f64)?;
                sample("_sum", None, s.sample_sum)?;
                for q in &s.quantile {
                    sample(
                        "",
                        Some(("quantile", openmetrics_float(q.quantile))),
                        q.value,
                    )?;
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let none = pb::Histogram::default();
                let h = m.histogram.as_ref().unwrap_or(&none);
                let count = if h.sample_count_float != 0.0 {
                    h.sample_count_float
                } else {
                    h.sample_count as f64
                };
                sample("_count", None, count)?;
                sample("_sum", None, h.sample_sum)?;
                let mut inf = false;
                for b in &h.bucket {
                    let v = if b.cumulative_count_float != 0.0 {
                        b.cumulative_count_float
                    } else {
                        b.cumulative_count as f64
                    };
                    sample("_bucket", Some(("le", openmetrics_float(b.upper_bound))), v)?;
                    if b.upper_bound == f64::INFINITY {
                        inf = true;
                        break;
                    }
                }
                if !inf {
                    sample("_bucket", Some(("le", "+Inf".to_string())), count)?;
                }
            }
            // Not produced by the mapping above.
            MetricType::Info | MetricType::StateSet => {}
        }
    }
    Ok(())
}

/// The encoded `label` fields of an encoded metric, copied as they are into `out` (cleared):
/// the series key. They are parsed and checked only when the key is new
/// ([`Sample::labels_into`](super::parser::Sample::labels_into)).
fn label_fields(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut b = raw;
    while !b.is_empty() {
        let start = raw.len() - b.len();
        if let (1, _) = next_field(&mut b)? {
            out.extend_from_slice(&raw[start..raw.len() - b.len()]);
        }
    }
    Ok(())
}

/// The native histogram of `h` (Prometheus's `ProtobufParser.Histogram`, without `Compact`).
fn native(h: &pb::Histogram, gauge: bool) -> Histogram {
    let spans = |s: &[pb::BucketSpan]| {
        s.iter()
            .map(|s| Span {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let counts = if h.sample_count_float > 0.0 || h.zero_count_float > 0.0 {
        Counts::Float {
            count: h.sample_count_float,
            zero_count: h.zero_count_float,
            positive: h.positive_count.clone(),
            negative: h.negative_count.clone(),
        }
    } else {
        Counts::Int {
            count: h.sample_count,
            zero_count: h.zero_count,
            positive: h.positive_delta.clone(),
            negative: h.negative_delta.clone(),
        }
    };
    Histogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        sum: h.sample_sum,
        positive_spans: spans(&h.positive_span),
        negative_spans: spans(&h.negative_span),
        counts,
        custom_values: Vec::new(),
        gauge,
    }
}

/// Prometheus's `checkNativeHistogramConsistency`: the spans need as many buckets as there are.
fn check_consistency(h: &pb::Histogram) -> Result<(), String> {
    let float = h.sample_count_float > 0.0 || h.zero_count_float > 0.0;
    let (pos, neg) = if float {
        (h.positive_count.len(), h.negative_count.len())
    } else {
        (h.positive_delta.len(), h.negative_delta.len())
    };
    for (side, spans, have) in [
        ("positive", &h.positive_span, pos),
        ("negative", &h.negative_span, neg),
    ] {
        let need: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
        if need != have as u64 {
            return Err(format!(
                "{side} side: spans require {need} buckets, have {have}"
            ));
        }
    }
    Ok(())
}

/// Prometheus's `isNativeHistogram`.
pub(crate) fn is_native(h: &pb::Histogram) -> bool {
    !h.positive_span.is_empty()
        || !h.negative_span.is_empty()
        || h.zero_threshold > 0.0
        || h.zero_count > 0
}

#[cfg(test)]
#[path = "protobuf_testdata.rs"]
mod testdata;

#[cfg(test)]
#[path = "protobuf_tests.rs"]
pub(crate) mod tests;
