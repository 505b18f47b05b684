//! Cases ported from Prometheus: `model/histogram/generic_test.go`
//! (`TestReduceResolutionHistogram`, `TestReduceResolutionFloatHistogram`),
//! `scrape/target_test.go` (`TestBucketLimitAppender`) and `scrape/scrape_test.go`
//! (`TestPickSchema`).

use super::*;

fn spans(s: &[(i32, u32)]) -> Vec<Span> {
    s.iter()
        .map(|&(offset, length)| Span { offset, length })
        .collect()
}

fn int(schema: i32, pos: &[(i32, u32)], p: &[i64], neg: &[(i32, u32)], n: &[i64]) -> Histogram {
    Histogram {
        schema,
        zero_threshold: 0.001,
        sum: 33.0,
        positive_spans: spans(pos),
        negative_spans: spans(neg),
        counts: Counts::Int {
            count: 21,
            zero_count: 3,
            positive: p.to_vec(),
            negative: n.to_vec(),
        },
        custom_values: Vec::new(),
        gauge: false,
    }
}

#[test]
fn reducing_resolution_merges_buckets_as_prometheus() {
    let mut h = int(
        0,
        &[(0, 4), (0, 0), (3, 2)],
        &[1, 2, -2, 1, -1, 0],
        &[],
        &[],
    );
    h.reduce_resolution(-1).unwrap();
    assert_eq!(h.schema, -1);
    assert_eq!(h.positive_spans, spans(&[(0, 3), (1, 1)]));
    assert_eq!(
        h.counts,
        Counts::Int {
            count: 21,
            zero_count: 3,
            positive: vec![1, 3, -2, 0],
            negative: vec![]
        }
    );

    let mut f = Histogram {
        counts: Counts::Float {
            count: 21.0,
            zero_count: 3.0,
            positive: vec![1.0, 3.0, 1.0, 2.0, 1.0, 1.0],
            negative: vec![],
        },
        ..int(0, &[(0, 4), (0, 0), (3, 2)], &[], &[], &[])
    };
    f.reduce_resolution(-1).unwrap();
    assert_eq!(f.positive_spans, spans(&[(0, 3), (1, 1)]));
    assert_eq!(
        f.counts,
        Counts::Float {
            count: 21.0,
            zero_count: 3.0,
            positive: vec![1.0, 4.0, 2.0, 2.0],
            negative: vec![]
        }
    );
}

#[test]
fn the_bucket_limit_lowers_resolution_or_fails() {
    let example = int(0, &[(0, 3)], &[3, 0, 0], &[(0, 3)], &[3, 0, 0]);
    let big_gap = int(0, &[(1, 1), (2, 1)], &[1, 0], &[], &[]);
    let custom = Histogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: vec![1.0, 2.0, 3.0],
        ..int(0, &[(0, 3)], &[3, 0, 0], &[], &[])
    };
    for (h, limit, want) in [
        (&example, 3, None),
        (&example, 4, Some((4, -1))),
        (&example, 10, Some((6, 0))),
        (&big_gap, 1, Some((1, -2))),
        (&custom, 2, None),
        (&custom, 3, Some((3, CUSTOM_BUCKETS_SCHEMA))),
    ] {
        let mut h = h.clone();
        let got = h
            .apply_limits(limit, EXPONENTIAL_SCHEMA_MAX)
            .map(|()| (h.bucket_count(), h.schema));
        match want {
            None => assert_eq!(got, Err(HistogramError::BucketLimit), "limit {limit}"),
            Some(w) => assert_eq!(got, Ok(w), "limit {limit}"),
        }
    }
}

#[test]
fn the_min_bucket_factor_caps_the_schema() {
    for (factor, schema) in [
        (65536.0, -4),
        (256.0, -3),
        (16.0, -2),
        (4.0, -1),
        (2.0, 0),
        (1.4, 1),
        (1.1, 2),
        (1.09, 3),
        (1.04, 4),
        (1.02, 5),
        (1.01, 6),
        (1.005, 7),
        (1.002, 8),
        // The default of native_histogram_min_bucket_factor.
        (0.0, 8),
    ] {
        assert_eq!(pick_schema(factor), schema, "factor {factor}");
    }
    // Schema 3 capped at 1: buckets merge by four.
    let mut h = int(3, &[(0, 4)], &[1, 0, 0, 0], &[], &[]);
    h.apply_limits(0, pick_schema(1.4)).unwrap();
    assert_eq!((h.schema, h.bucket_count()), (1, 2));
}
