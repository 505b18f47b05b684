//! Native histograms on the write path: the remote-write `Histogram` message, which remote write
//! 1.0 (`prometheus.TimeSeries.histograms = 4`) and 2.0 (`io.prometheus.write.v2.TimeSeries.histograms
//! = 3`) number alike, so one encoding serves both requests and the WAL (which stores it without
//! the timestamp). Follows Prometheus's `storage/remote/codec.go` (`HistogramToHistogramProto`,
//! `FloatHistogramToHistogramProto`, `HistogramProtoToHistogram`): integer histograms as
//! `count_int`/`zero_count_int` and bucket deltas, float ones as `count_float`/`zero_count_float`
//! and absolute counts, a gauge histogram with `reset_hint: GAUGE`.

use promshard_model::histogram::{Counts, Histogram, Span};
use promshard_proto::STALE_NAN_BITS;
use promshard_proto::write_v2::{self, BucketSpan, histogram as h};
use prost::Message;

use super::Sample;
use super::wire::{nested_len, put_nested, put_sample, sample_len};

fn spans_to(s: &[Span]) -> Vec<BucketSpan> {
    s.iter()
        .map(|s| BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn spans_from(s: &[BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

/// The wire message of `hist` at `timestamp_ms`.
pub(crate) fn to_proto(hist: &Histogram, timestamp_ms: i64) -> write_v2::Histogram {
    let mut m = write_v2::Histogram {
        sum: hist.sum,
        schema: hist.schema,
        zero_threshold: hist.zero_threshold,
        negative_spans: spans_to(&hist.negative_spans),
        positive_spans: spans_to(&hist.positive_spans),
        reset_hint: if hist.gauge {
            h::ResetHint::Gauge
        } else {
            h::ResetHint::Unspecified
        } as i32,
        timestamp: timestamp_ms,
        custom_values: hist.custom_values.clone(),
        ..Default::default()
    };
    match &hist.counts {
        Counts::Int {
            count,
            zero_count,
            positive,
            negative,
        } => {
            m.count = Some(h::Count::CountInt(*count));
            m.zero_count = Some(h::ZeroCount::ZeroCountInt(*zero_count));
            m.positive_deltas = positive.clone();
            m.negative_deltas = negative.clone();
        }
        Counts::Float {
            count,
            zero_count,
            positive,
            negative,
        } => {
            m.count = Some(h::Count::CountFloat(*count));
            m.zero_count = Some(h::ZeroCount::ZeroCountFloat(*zero_count));
            m.positive_counts = positive.clone();
            m.negative_counts = negative.clone();
        }
    }
    m
}

/// The histogram of a wire message (and its timestamp).
pub(crate) fn from_proto(m: &write_v2::Histogram) -> (Histogram, i64) {
    let float = matches!(m.count, Some(h::Count::CountFloat(_)));
    let counts = if float {
        Counts::Float {
            count: match m.count {
                Some(h::Count::CountFloat(c)) => c,
                _ => 0.0,
            },
            zero_count: match m.zero_count {
                Some(h::ZeroCount::ZeroCountFloat(c)) => c,
                Some(h::ZeroCount::ZeroCountInt(c)) => c as f64,
                None => 0.0,
            },
            positive: m.positive_counts.clone(),
            negative: m.negative_counts.clone(),
        }
    } else {
        Counts::Int {
            count: match m.count {
                Some(h::Count::CountInt(c)) => c,
                _ => 0,
            },
            zero_count: match m.zero_count {
                Some(h::ZeroCount::ZeroCountInt(c)) => c,
                Some(h::ZeroCount::ZeroCountFloat(c)) => c as u64,
                None => 0,
            },
            positive: m.positive_deltas.clone(),
            negative: m.negative_deltas.clone(),
        }
    };
    (
        Histogram {
            schema: m.schema,
            zero_threshold: m.zero_threshold,
            sum: m.sum,
            positive_spans: spans_from(&m.positive_spans),
            negative_spans: spans_from(&m.negative_spans),
            counts,
            custom_values: m.custom_values.clone(),
            gauge: m.reset_hint == h::ResetHint::Gauge as i32,
        },
        m.timestamp,
    )
}

/// The histogram message of `p`, if it goes out as one: a native histogram, or the stale marker
/// of a series whose other points in the request are histograms (a 2.0 series carries samples
/// or histograms, never both). Prometheus sends that marker as a histogram too: its TSDB turns a
/// stale float on a histogram series into `Histogram{Sum: StaleNaN}` (`head_append.go`).
fn message(p: &Sample, histogram_series: bool) -> Option<write_v2::Histogram> {
    match &p.histogram {
        Some(h) => Some(to_proto(h, p.timestamp_ms)),
        None if histogram_series && p.value.to_bits() == STALE_NAN_BITS => {
            Some(write_v2::Histogram {
                sum: p.value,
                count: Some(h::Count::CountInt(0)),
                zero_count: Some(h::ZeroCount::ZeroCountInt(0)),
                timestamp: p.timestamp_ms,
                ..Default::default()
            })
        }
        None => None,
    }
}

/// Whether any of a series' points in a request is a native histogram.
pub(super) fn is_histogram_series<'a>(mut points: impl Iterator<Item = &'a Sample>) -> bool {
    points.any(|p| p.histogram.is_some())
}

/// Bytes of a request's sample or histogram field for `p` (its tag and length included).
pub(super) fn point_len(p: &Sample, histogram_series: bool) -> usize {
    match message(p, histogram_series) {
        None => nested_len(sample_len(p.timestamp_ms, p.value)),
        Some(m) => nested_len(m.encoded_len()),
    }
}

/// `p` as a `samples` field (`sample_key`) or a `histograms` field (`histogram_key`): 1.0 and
/// 2.0 differ only in the field numbers.
pub(super) fn put_point(
    buf: &mut Vec<u8>,
    sample_key: u8,
    histogram_key: u8,
    p: &Sample,
    histogram_series: bool,
) {
    match message(p, histogram_series) {
        None => put_sample(buf, sample_key, p.timestamp_ms, p.value),
        Some(m) => {
            put_nested(buf, histogram_key, m.encoded_len());
            m.encode_raw(buf);
        }
    }
}

/// The message's bytes, for a request's `histograms` field or a WAL record.
pub(crate) fn encode(hist: &Histogram, timestamp_ms: i64) -> Vec<u8> {
    to_proto(hist, timestamp_ms).encode_to_vec()
}

/// A histogram from [`encode`]'s bytes.
pub(crate) fn decode(b: &[u8]) -> Result<Histogram, prost::DecodeError> {
    Ok(from_proto(&write_v2::Histogram::decode(b)?).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_float_histograms_round_trip_through_the_wire_message() {
        let span = |offset, length| Span { offset, length };
        let int = Histogram {
            schema: 3,
            zero_threshold: 1e-3,
            sum: 12.5,
            positive_spans: vec![span(-2, 2), span(3, 1)],
            negative_spans: vec![span(0, 1)],
            counts: Counts::Int {
                count: 9,
                zero_count: 1,
                positive: vec![2, 1, -1],
                negative: vec![4],
            },
            custom_values: vec![],
            gauge: false,
        };
        let m = to_proto(&int, 77);
        assert_eq!(m.count, Some(h::Count::CountInt(9)));
        assert_eq!(m.positive_deltas, [2, 1, -1]);
        assert_eq!(from_proto(&m), (int.clone(), 77));
        assert_eq!(decode(&encode(&int, 0)).unwrap(), int);

        let float = Histogram {
            schema: -53,
            counts: Counts::Float {
                count: 2.5,
                zero_count: 0.0,
                positive: vec![1.0, 1.5],
                negative: vec![],
            },
            custom_values: vec![0.5, 1.0],
            negative_spans: vec![],
            gauge: true,
            ..int
        };
        let m = to_proto(&float, 1);
        assert_eq!(m.reset_hint, h::ResetHint::Gauge as i32);
        assert_eq!(m.positive_counts, [1.0, 1.5]);
        assert_eq!(decode(&encode(&float, 1)).unwrap(), float);
    }
}
