//! Native histograms as Prometheus's `model/histogram` defines them, reduced to what a collector
//! needs between scrape and remote write: the integer and float forms, exponential and custom
//! bucket schemas, and the scrape limits that change a histogram (`native_histogram_bucket_limit`,
//! `native_histogram_min_bucket_factor`) by reducing its resolution as Prometheus does
//! (`model/histogram/generic.go` `reduceResolution`, `scrape/target.go` `bucketLimitAppender`
//! and `maxSchemaAppender`, `scrape/scrape.go` `pickSchema`).
//!
//! Integer histograms keep their bucket counts as deltas (each bucket's count minus the previous
//! one's), as the protobuf exposition and both remote-write versions carry them, so nothing is
//! converted on the way through.

use std::fmt;

/// Lowest exponential schema (Prometheus's `ExponentialSchemaMin`).
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
/// Highest exponential schema (`ExponentialSchemaMax`).
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// Reserved exponential schemas, accepted and reduced by the limits
/// (`ExponentialSchemaMinReserved`, `ExponentialSchemaMaxReserved`).
pub const EXPONENTIAL_SCHEMA_MIN_RESERVED: i32 = -9;
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;
/// Native histograms with custom bucket bounds (`CustomBucketsSchema`).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// A run of consecutive buckets: `offset` from the end of the previous span (from index 0 for
/// the first), `length` buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// Bucket counts of one histogram: integer (deltas) or float (absolute).
#[derive(Clone, Debug, PartialEq)]
pub enum Counts {
    Int {
        count: u64,
        zero_count: u64,
        /// Each bucket's count as a delta to the previous bucket's (to 0 for the first).
        positive: Vec<i64>,
        negative: Vec<i64>,
    },
    Float {
        count: f64,
        zero_count: f64,
        positive: Vec<f64>,
        negative: Vec<f64>,
    },
}

/// One native histogram sample's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub counts: Counts,
    /// Upper bounds of the buckets, with [`CUSTOM_BUCKETS_SCHEMA`] only.
    pub custom_values: Vec<f64>,
    /// A gauge histogram (Prometheus's `CounterResetHint: GaugeType`).
    pub gauge: bool,
}

/// Why a histogram cannot be stored; the scrape fails, as in Prometheus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistogramError {
    /// More buckets than `native_histogram_bucket_limit` at the lowest resolution, or with
    /// custom buckets (Prometheus's `errBucketLimit`).
    BucketLimit,
    /// Spans that need a different number of buckets than there are, or a negative offset
    /// after the first span.
    Inconsistent(String),
}

impl fmt::Display for HistogramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistogramError::BucketLimit => f.write_str("histogram bucket limit exceeded"),
            HistogramError::Inconsistent(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HistogramError {}

impl Histogram {
    /// Populated buckets (both sides), what `native_histogram_bucket_limit` counts.
    pub fn bucket_count(&self) -> usize {
        match &self.counts {
            Counts::Int {
                positive, negative, ..
            } => positive.len() + negative.len(),
            Counts::Float {
                positive, negative, ..
            } => positive.len() + negative.len(),
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self.counts, Counts::Float { .. })
    }

    fn exponential(&self) -> bool {
        (EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX).contains(&self.schema)
    }

    fn exponential_reserved(&self) -> bool {
        (EXPONENTIAL_SCHEMA_MIN_RESERVED..=EXPONENTIAL_SCHEMA_MAX_RESERVED).contains(&self.schema)
    }

    /// Merges buckets down to `target` (lower than the schema), as Prometheus's
    /// `ReduceResolution`: bucket `i` of schema `s` goes to `((i - 1) >> (s - target)) + 1`.
    pub fn reduce_resolution(&mut self, target: i32) -> Result<(), HistogramError> {
        if self.schema == CUSTOM_BUCKETS_SCHEMA || target >= self.schema {
            return Err(HistogramError::Inconsistent(format!(
                "cannot reduce resolution from schema {} to {target}",
                self.schema
            )));
        }
        let (from, to) = (self.schema, target);
        match &mut self.counts {
            Counts::Int {
                positive, negative, ..
            } => {
                reduce(&mut self.positive_spans, positive, from, to, true)?;
                reduce(&mut self.negative_spans, negative, from, to, true)?;
            }
            Counts::Float {
                positive, negative, ..
            } => {
                reduce(&mut self.positive_spans, positive, from, to, false)?;
                reduce(&mut self.negative_spans, negative, from, to, false)?;
            }
        }
        self.schema = target;
        Ok(())
    }

    /// The scrape limits, in Prometheus's order (`appenderWithLimits`: the bucket limit wraps
    /// the schema cap, so the schema is capped first). `bucket_limit` 0: none; `max_schema`
    /// from [`pick_schema`].
    pub fn apply_limits(
        &mut self,
        bucket_limit: usize,
        max_schema: i32,
    ) -> Result<(), HistogramError> {
        if max_schema < EXPONENTIAL_SCHEMA_MAX
            && self.exponential_reserved()
            && self.schema > max_schema
        {
            self.reduce_resolution(max_schema)?;
        }
        if bucket_limit > 0 {
            if self.bucket_count() > bucket_limit && !self.exponential() {
                return Err(HistogramError::BucketLimit);
            }
            while self.bucket_count() > bucket_limit {
                if self.schema <= EXPONENTIAL_SCHEMA_MIN {
                    return Err(HistogramError::BucketLimit);
                }
                self.reduce_resolution(self.schema - 1)?;
            }
        }
        Ok(())
    }
}

/// The highest schema whose bucket growth factor is at least `factor`
/// (`native_histogram_min_bucket_factor`; Prometheus's `pickSchema`).
pub fn pick_schema(factor: f64) -> i32 {
    let factor = if factor <= 1.0 { 1.00271 } else { factor };
    let floor = (-factor.log2().log2()).floor();
    if floor >= f64::from(EXPONENTIAL_SCHEMA_MAX) {
        EXPONENTIAL_SCHEMA_MAX
    } else if floor <= f64::from(EXPONENTIAL_SCHEMA_MIN) {
        EXPONENTIAL_SCHEMA_MIN
    } else {
        floor as i32
    }
}

/// Prometheus's `reduceResolution` on one side, in place: `delta` buckets are deltas.
fn reduce<C>(
    spans: &mut Vec<Span>,
    buckets: &mut Vec<C>,
    from: i32,
    to: i32,
    delta: bool,
) -> Result<(), HistogramError>
where
    C: Copy + Default + std::ops::Add<Output = C> + std::ops::Sub<Output = C>,
{
    let target_idx = |idx: i32| ((idx - 1) >> (from - to)) + 1;
    let mut out_spans: Vec<Span> = Vec::with_capacity(spans.len());
    let mut out: Vec<C> = Vec::with_capacity(buckets.len());
    let (mut idx, mut at) = (0i32, 0usize);
    let (mut last_target, mut last_count, mut last_target_count) =
        (0i32, C::default(), C::default());
    for (n, span) in spans.iter().enumerate() {
        if n > 0 && span.offset < 0 {
            return Err(HistogramError::Inconsistent(format!(
                "span number {} with offset {}",
                n + 1,
                span.offset
            )));
        }
        idx += span.offset;
        for _ in 0..span.length {
            let Some(&b) = buckets.get(at) else {
                return Err(HistogramError::Inconsistent(format!(
                    "have {} buckets but spans need more",
                    buckets.len()
                )));
            };
            let t = target_idx(idx);
            match out_spans.last_mut() {
                None => {
                    out_spans.push(Span {
                        offset: t,
                        length: 1,
                    });
                    out.push(b);
                    last_target = t;
                    last_count = b;
                    last_target_count = b;
                }
                Some(_) if t == last_target => {
                    let last = out.len() - 1;
                    if delta {
                        last_count = last_count + b;
                        out[last] = out[last] + last_count;
                        last_target_count = last_target_count + last_count;
                    } else {
                        out[last] = out[last] + b;
                    }
                }
                Some(s) => {
                    if t == last_target + 1 {
                        s.length += 1;
                    } else {
                        out_spans.push(Span {
                            offset: t - last_target - 1,
                            length: 1,
                        });
                    }
                    last_target = t;
                    if delta {
                        last_count = last_count + b;
                        out.push(last_count - last_target_count);
                        last_target_count = last_count;
                    } else {
                        out.push(b);
                    }
                }
            }
            idx += 1;
            at += 1;
        }
    }
    if at != buckets.len() {
        return Err(HistogramError::Inconsistent(format!(
            "spans need {at} buckets, have {} buckets",
            buckets.len()
        )));
    }
    *spans = out_spans;
    *buckets = out;
    Ok(())
}

#[cfg(test)]
#[path = "histogram_tests.rs"]
mod tests;
