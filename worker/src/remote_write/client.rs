//! The write client: encodes one request (remote write 1.0 or 2.0 protobuf, then snappy block
//! format) and POSTs it with the headers the spec requires, classifying failures as the spec
//! says. Auth and TLS come from the worker's shared [`HttpClient`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use promshard_model::config::RemoteWriteConfig;
use promshard_proto::write_v2;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};

use super::{MetricMetadata, Sample};
use crate::http_client::{ClientOptions, HttpClient};

pub(crate) const USER_AGENT_VALUE: &str = concat!("promshard/", env!("CARGO_PKG_VERSION"));

/// The User-Agent of a worker's remote-write requests: the product, then the worker's id, so a
/// receiver's logs (and a test's recording receiver) can tell workers apart.
pub fn user_agent(worker_id: &str) -> String {
    if worker_id.is_empty() {
        USER_AGENT_VALUE.to_string()
    } else {
        format!("{USER_AGENT_VALUE} (worker {worker_id})")
    }
}
pub const V1_CONTENT_TYPE: &str = "application/x-protobuf";
pub const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// The wire protocol of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V2,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 5xx, 429 (when configured) or a network error: retry with backoff.
    #[error("recoverable: {message}")]
    Recoverable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 415 to a 2.0 request: the receiver only speaks 1.0.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A 400 or 409 that the receiver explains as an out-of-order, out-of-bounds or duplicate
    /// sample. Prometheus, Mimir and Thanos receive roll back the whole request for one such
    /// sample: the sender splits it to deliver the rest (see `queue::Shard::send`).
    #[error("out of order: {0}")]
    OutOfOrder(String),
    /// Any other 4xx: the data will never be accepted; drop and count it.
    #[error("non-recoverable: {0}")]
    Fatal(String),
}

/// Whether a refusal is about one sample's time: the receivers' own words, as they send them
/// (Prometheus `storage.ErrOutOfOrderSample`, `ErrOutOfBounds`, `ErrDuplicateSampleForTimestamp`;
/// Mimir `err-mimir-sample-out-of-order`, `-sample-timestamp-too-old`,
/// `-sample-duplicate-timestamp`; Thanos receive's 409 with Prometheus's messages).
pub(crate) fn is_out_of_order(status: StatusCode, body: &str) -> bool {
    if status != StatusCode::BAD_REQUEST && status != StatusCode::CONFLICT {
        return false;
    }
    let body = body.to_ascii_lowercase();
    [
        "out of order",
        "out-of-order",
        "out of bounds",
        "out-of-bounds",
        "duplicate sample",
        "duplicate-timestamp",
        "too old",
        "too-old",
    ]
    .iter()
    .any(|p| body.contains(p))
}

pub struct WriteClient {
    http: HttpClient,
    url: String,
    headers: HeaderMap,
    timeout: Duration,
    retry_on_429: bool,
}

impl WriteClient {
    pub fn new(cfg: &RemoteWriteConfig, user_agent: &str) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            headers.insert(
                HeaderName::try_from(k.as_str())?,
                HeaderValue::try_from(v.as_str())?,
            );
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(USER_AGENT, HeaderValue::try_from(user_agent)?);
        let http = HttpClient::new(
            &cfg.http_client_config(),
            ClientOptions {
                // Remote write bodies are already snappy-compressed; responses are tiny.
                gzip: false,
                ..ClientOptions::default()
            },
        )?;
        Ok(WriteClient {
            http,
            url: cfg.url.clone(),
            headers,
            timeout: cfg.remote_timeout.0,
            retry_on_429: cfg.queue_config.retry_on_http_429,
        })
    }

    /// Sends one compressed body. `attempt` > 0 adds the `Retry-Attempt` header. On success,
    /// returns the receiver's `X-Prometheus-Remote-Write-Samples-Written` count, which every
    /// 2.0 receiver sends (its absence after a 2.0 request means a 1.0 receiver that decoded
    /// the body as an empty 1.0 request).
    pub async fn send(
        &self,
        body: Vec<u8>,
        protocol: Protocol,
        attempt: u32,
    ) -> Result<Option<u64>, SendError> {
        let mut req = self
            .http
            .request(reqwest::Method::POST, &self.url)
            .await
            .map_err(|e| SendError::Recoverable {
                message: format!("{e:#}"),
                retry_after: None,
            })?
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .body(body);
        req = match protocol {
            Protocol::V1 => req
                .header(CONTENT_TYPE, V1_CONTENT_TYPE)
                .header("x-prometheus-remote-write-version", "0.1.0"),
            Protocol::V2 => req
                .header(CONTENT_TYPE, V2_CONTENT_TYPE)
                .header("x-prometheus-remote-write-version", "2.0.0"),
        };
        if attempt > 0 {
            req = req.header("retry-attempt", attempt.to_string());
        }
        let resp = req.send().await.map_err(|e| SendError::Recoverable {
            message: format!("{e:#}"),
            retry_after: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            let written = resp
                .headers()
                .get("x-prometheus-remote-write-samples-written")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            return Ok(written);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Logged as the receiver sent it (capped), so its reason reaches the operator.
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(1024).collect();
        let message = format!("server returned HTTP status {status}: {body}");
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && protocol == Protocol::V2 {
            Err(SendError::UnsupportedMediaType(message))
        } else if is_out_of_order(status, &body) {
            Err(SendError::OutOfOrder(message))
        } else if status.is_server_error()
            || (status == StatusCode::TOO_MANY_REQUESTS && self.retry_on_429)
        {
            Err(SendError::Recoverable {
                message,
                retry_after,
            })
        } else {
            Err(SendError::Fatal(message))
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Samples grouped by series (by id), each series' samples in the order given (their
/// timestamp order: WAL order), without an allocation per series.
struct Groups {
    /// Per series: its first and last sample (indexes into the batch).
    heads: Vec<(u32, u32)>,
    /// Next sample of the same series, `u32::MAX` at the end.
    next: Vec<u32>,
}

impl Groups {
    fn new(samples: &[Sample]) -> Groups {
        // Open addressing on the id (Fibonacci hashing), group numbers in the table and ids
        // beside them: a std HashMap here was 5 % of the worker's CPU.
        let bits = (samples.len() * 2)
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let mask = (1usize << bits) - 1;
        let mut table = vec![u32::MAX; 1 << bits];
        let mut ids: Vec<u64> = Vec::with_capacity(samples.len());
        let mut heads: Vec<(u32, u32)> = Vec::with_capacity(samples.len());
        let mut next = vec![u32::MAX; samples.len()];
        for (i, s) in samples.iter().enumerate() {
            let (i, id) = (i as u32, s.series.id());
            let mut h = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize;
            loop {
                match table[h] {
                    u32::MAX => {
                        table[h] = heads.len() as u32;
                        heads.push((i, i));
                        ids.push(id);
                        break;
                    }
                    g if ids[g as usize] == id => {
                        let head = &mut heads[g as usize];
                        next[head.1 as usize] = i;
                        head.1 = i;
                        break;
                    }
                    _ => h = (h + 1) & mask,
                }
            }
        }
        Groups { heads, next }
    }

    /// The samples of the series whose first sample is `first`, in order.
    fn chain<'a>(
        &'a self,
        samples: &'a [Sample],
        first: u32,
    ) -> impl Iterator<Item = &'a Sample> + Clone {
        std::iter::successors(Some(first), move |&i| {
            Some(self.next[i as usize]).filter(|&n| n != u32::MAX)
        })
        .map(move |i| &samples[i as usize])
    }

    /// Each series: its first sample and all its samples.
    fn iter<'a>(
        &'a self,
        samples: &'a [Sample],
    ) -> impl Iterator<Item = (&'a Sample, impl Iterator<Item = &'a Sample> + Clone)> {
        self.heads
            .iter()
            .map(move |&(first, _)| (&samples[first as usize], self.chain(samples, first)))
    }
}

/// Encodes samples as a 1.0 `WriteRequest`, protobuf then snappy block format. A series'
/// labels are already encoded ([`Series::encoded`](super::Series::encoded)): one copy each.
pub fn encode_v1(samples: &[Sample], bufs: &mut EncodeBuffers) -> Vec<u8> {
    use super::wire::*;
    let proto_buf = &mut bufs.proto;
    proto_buf.clear();
    super::series::warm_labels(samples.iter().map(|s| &*s.series));
    let groups = Groups::new(samples);
    for (s, points) in groups.iter(samples) {
        let labels = s.series.encoded();
        let hs = super::histogram::is_histogram_series(points.clone());
        let samples_len: usize = points
            .clone()
            .map(|p| super::histogram::point_len(p, hs))
            .sum();
        // WriteRequest.timeseries = 1 { labels = 1 (encoded), samples = 2 }
        put_nested(proto_buf, 0x0a, labels.len() + samples_len);
        proto_buf.extend_from_slice(labels);
        for p in points {
            // TimeSeries.samples = 2, TimeSeries.histograms = 4
            super::histogram::put_point(proto_buf, 0x12, 0x22, p, hs);
        }
    }
    bufs.snappy()
}

/// Metric metadata for 2.0, keyed by metric family name.
pub type MetadataMap = HashMap<String, MetricMetadata>;

/// Prometheus's type name (`counter`, `gauge`, ...) as the 2.0 enum.
fn metric_type(kind: &str) -> write_v2::metadata::MetricType {
    use write_v2::metadata::MetricType as T;
    match kind {
        "counter" => T::Counter,
        "gauge" => T::Gauge,
        "histogram" => T::Histogram,
        "gaugehistogram" => T::Gaugehistogram,
        "summary" => T::Summary,
        "info" => T::Info,
        "stateset" => T::Stateset,
        _ => T::Unspecified,
    }
}

/// Encodes samples as a 2.0 `Request`: one symbols table for every string in the request
/// (`symbols[0] = ""`), series as pairs of references, metadata (type, help, unit) where the
/// exposition declared it, and the created timestamp of counters, histograms and summaries
/// whose OpenMetrics `_created` series is in the same batch.
pub fn encode_v2(samples: &[Sample], metadata: &MetadataMap, bufs: &mut EncodeBuffers) -> Vec<u8> {
    use super::wire::*;
    struct Series {
        refs: std::ops::Range<usize>,
        /// (type, help_ref, unit_ref)
        meta: Option<(u64, u64, u64)>,
        created: i64,
        first: u32,
    }
    fn intern<'a>(
        s: &'a str,
        symbols: &mut Vec<&'a str>,
        index: &mut HashMap<&'a str, u32>,
    ) -> u32 {
        if let Some(&r) = index.get(s) {
            return r;
        }
        let r = symbols.len() as u32;
        symbols.push(s);
        index.insert(s, r);
        r
    }
    let mut symbols: Vec<&str> = vec![""];
    let mut index: HashMap<&str, u32> = HashMap::from([("", 0)]);
    let created = created_timestamps(samples);
    let mut refs: Vec<u32> = Vec::with_capacity(samples.len() * 16);
    let mut series = Vec::new();
    let groups = Groups::new(samples);
    for (s, _) in groups.iter(samples) {
        let start = refs.len();
        for (n, v) in s.series.iter() {
            refs.push(intern(n, &mut symbols, &mut index));
            refs.push(intern(v, &mut symbols, &mut index));
        }
        let name = s.series.get("__name__").unwrap_or("");
        let meta = family_of(name, metadata).map(|m| {
            (
                metric_type(&m.kind) as u64,
                u64::from(intern(&m.help, &mut symbols, &mut index)),
                u64::from(intern(&m.unit, &mut symbols, &mut index)),
            )
        });
        let created = if created.is_empty() {
            0
        } else {
            created_key(s, name)
                .and_then(|k| created.get(&k).copied())
                .unwrap_or(0)
        };
        series.push(Series {
            refs: start..refs.len(),
            meta,
            created,
            first: groups.heads[series.len()].0,
        });
    }
    let proto_buf = &mut bufs.proto;
    proto_buf.clear();
    for s in &symbols {
        // Request.symbols = 4: every element, "" included.
        put_nested(proto_buf, 0x22, s.len());
        proto_buf.extend_from_slice(s.as_bytes());
    }
    for se in &series {
        let r = &refs[se.refs.clone()];
        let points = groups.chain(samples, se.first);
        let packed: usize = r.iter().map(|&x| varint_len(u64::from(x))).sum();
        let labels_len = if r.is_empty() { 0 } else { nested_len(packed) };
        let hs = super::histogram::is_histogram_series(points.clone());
        let samples_len: usize = points
            .clone()
            .map(|p| super::histogram::point_len(p, hs))
            .sum();
        let meta_inner = se
            .meta
            .map(|(t, h, u)| varint_field_len(t) + varint_field_len(h) + varint_field_len(u));
        let meta_len = meta_inner.map_or(0, nested_len);
        let created_len = varint_field_len(se.created as u64);
        // Request.timeseries = 5
        put_nested(
            proto_buf,
            0x2a,
            labels_len + samples_len + meta_len + created_len,
        );
        if !r.is_empty() {
            // TimeSeries.labels_refs = 1, packed
            put_nested(proto_buf, 0x0a, packed);
            for &x in r {
                put_varint(proto_buf, u64::from(x));
            }
        }
        for p in points {
            // TimeSeries.samples = 2, TimeSeries.histograms = 3
            super::histogram::put_point(proto_buf, 0x12, 0x1a, p, hs);
        }
        if let (Some((t, h, u)), Some(inner)) = (se.meta, meta_inner) {
            // TimeSeries.metadata = 5 { type = 1, help_ref = 3, unit_ref = 4 }
            put_nested(proto_buf, 0x2a, inner);
            put_varint_field(proto_buf, 0x08, t);
            put_varint_field(proto_buf, 0x18, h);
            put_varint_field(proto_buf, 0x20, u);
        }
        // TimeSeries.created_timestamp = 6
        put_varint_field(proto_buf, 0x30, se.created as u64);
    }
    bufs.snappy()
}

/// Suffixes of the series of one counter, histogram or summary family.
const FAMILY_SUFFIXES: [&str; 5] = ["_total", "_bucket", "_sum", "_count", "_info"];

/// The series' family and its labels other than the name, `le` and `quantile`: what its
/// `_created` series carries. `None` for a series that has no created timestamp.
fn created_key(s: &Sample, name: &str) -> Option<(String, Vec<(String, String)>)> {
    let family = FAMILY_SUFFIXES
        .iter()
        .find_map(|suf| name.strip_suffix(suf))?;
    Some((family.to_string(), other_labels(s)))
}

fn other_labels(s: &Sample) -> Vec<(String, String)> {
    s.series
        .iter()
        .filter(|(n, _)| !matches!(*n, "__name__" | "le" | "quantile"))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// `<family>_created` samples in the batch (seconds since the epoch) as milliseconds.
fn created_timestamps(samples: &[Sample]) -> HashMap<(String, Vec<(String, String)>), i64> {
    samples
        .iter()
        .filter_map(|s| {
            let family = s.series.get("__name__")?.strip_suffix("_created")?;
            if !s.value.is_finite() || s.value <= 0.0 {
                return None;
            }
            Some((
                (family.to_string(), other_labels(s)),
                (s.value * 1000.0).round() as i64,
            ))
        })
        .collect()
}

/// Metadata of the family a series belongs to: the series name itself, or the name without
/// a histogram, summary, counter or info suffix.
fn family_of<'a>(name: &str, metadata: &'a MetadataMap) -> Option<&'a MetricMetadata> {
    if let Some(m) = metadata.get(name) {
        return Some(m);
    }
    FAMILY_SUFFIXES
        .iter()
        .chain(&["_created"])
        .find_map(|suf| metadata.get(name.strip_suffix(suf)?))
}

/// What one sender reuses for every request: the protobuf, snappy's tables, and snappy's
/// output space, zeroed once instead of per request (`compress_vec` zeroes 1.2× the input
/// each time: 2 % of the worker's CPU at 100 cAdvisor targets).
pub struct EncodeBuffers {
    proto: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for EncodeBuffers {
    fn default() -> Self {
        EncodeBuffers {
            proto: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

/// Larger output space is not kept between requests.
const KEEP_COMPRESSED: usize = 4 << 20;

impl EncodeBuffers {
    /// The protobuf of the last request encoded, before compression.
    pub fn proto(&self) -> &[u8] {
        &self.proto
    }

    /// `proto` in snappy's block format.
    fn snappy(&mut self) -> Vec<u8> {
        let need = snap::raw::max_compress_len(self.proto.len());
        if self.compressed.len() < need {
            self.compressed.resize(need, 0);
        }
        // Only fails for inputs over ~4 GiB, far above any batch.
        let n = (self.snappy)
            .compress(&self.proto, &mut self.compressed)
            .unwrap_or_default();
        let out = self.compressed[..n].to_vec();
        if self.compressed.len() > KEEP_COMPRESSED {
            self.compressed = Vec::new();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::Series;
    use super::*;
    use promshard_model::Labels;
    use promshard_proto::prometheus::{
        Label as WireLabel, Sample as WireSample, TimeSeries, WriteRequest,
    };
    use prost::Message;

    /// Grouped by series, as the encoders group: the reference for the tests.
    fn group(samples: &[Sample]) -> Vec<(&Sample, Vec<(i64, f64)>)> {
        let groups = Groups::new(samples);
        groups
            .heads
            .iter()
            .map(|&(first, _)| {
                let points = groups.chain(samples, first);
                let points = points.map(|p| (p.timestamp_ms, p.value)).collect();
                (&samples[first as usize], points)
            })
            .collect()
    }

    #[test]
    fn refusals_about_a_samples_time_are_told_apart_from_other_refusals() {
        let bad = StatusCode::BAD_REQUEST;
        // Prometheus 2.42 and 3.x (write_handler.go answers http.Error(err.Error())).
        assert!(is_out_of_order(bad, "out of order sample\n"));
        assert!(is_out_of_order(bad, "out of bounds"));
        assert!(is_out_of_order(bad, "duplicate sample for timestamp"));
        // Mimir's documented error ids.
        assert!(is_out_of_order(
            bad,
            "failed pushing to ingester: the sample has been rejected because another sample with a more recent timestamp has already been ingested and out-of-order samples are not allowed (err-mimir-sample-out-of-order)"
        ));
        assert!(is_out_of_order(bad, "(err-mimir-sample-timestamp-too-old)"));
        // Thanos receive answers 409 Conflict.
        assert!(is_out_of_order(
            StatusCode::CONFLICT,
            "add 3 samples: out of order sample"
        ));
        // Other refusals, and the words under another status, are not.
        assert!(!is_out_of_order(bad, "invalid label name"));
        assert!(!is_out_of_order(
            StatusCode::INTERNAL_SERVER_ERROR,
            "out of order sample"
        ));
        assert!(!is_out_of_order(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out of order sample"
        ));
    }

    /// One series per label set, as a scrape keeps them.
    #[derive(Default)]
    struct Interner(HashMap<Labels, Arc<Series>>);

    impl Interner {
        fn sample(&mut self, labels: Labels, timestamp_ms: i64, value: f64) -> Sample {
            let series = self
                .0
                .entry(labels.clone())
                .or_insert_with(|| Series::new(&labels))
                .clone();
            Sample {
                series,
                timestamp_ms,
                value,
                histogram: None,
            }
        }
    }

    /// 1.0 through prost's own types: the reference for [`encode_v1`]'s bytes.
    fn reference_v1(samples: &[Sample]) -> Vec<u8> {
        WriteRequest {
            timeseries: group(samples)
                .into_iter()
                .map(|(s, points)| TimeSeries {
                    labels: s
                        .series
                        .iter()
                        .map(|(name, value)| WireLabel {
                            name: name.into(),
                            value: value.into(),
                        })
                        .collect(),
                    samples: points
                        .into_iter()
                        .map(|(timestamp, value)| WireSample { value, timestamp })
                        .collect(),
                    exemplars: Vec::new(),
                    histograms: Vec::new(),
                })
                .collect(),
            metadata: Vec::new(),
        }
        .encode_to_vec()
    }

    /// A mixed batch: repeated series, zero values and timestamps, negative timestamps,
    /// big values, empty-valued and unicode labels, metadata and created timestamps.
    fn mixed() -> (Vec<Sample>, MetadataMap) {
        let mut out = Vec::new();
        let mut series = Interner::default();
        for i in 0..300i64 {
            let name = ["rq_total", "rq_created", "temp", "lat_bucket"][(i % 4) as usize];
            let mut pairs = vec![
                ("__name__".to_string(), name.to_string()),
                ("i".to_string(), (i % 37).to_string()),
                ("zone".to_string(), "ü-ß".repeat((i % 3) as usize)),
            ];
            if name == "lat_bucket" {
                pairs.push(("le".into(), (i % 5).to_string()));
            }
            out.push(series.sample(
                Labels::from_pairs(pairs),
                [0, -5, 1_700_000_000_000 + i, i64::MAX][(i % 4) as usize],
                [0.0, -0.5, 1e300, 1_700_000_000.25, f64::NAN][(i % 5) as usize],
            ));
        }
        let mut meta = MetadataMap::new();
        for (family, kind, help, unit) in [
            ("rq", "counter", "Requests.", ""),
            ("temp", "gauge", "", "celsius"),
            ("lat", "histogram", "Latency.", "seconds"),
        ] {
            meta.insert(
                family.into(),
                MetricMetadata {
                    family: family.into(),
                    kind: kind.into(),
                    help: help.into(),
                    unit: unit.into(),
                },
            );
        }
        (out, meta)
    }

    #[test]
    fn hand_written_v1_is_byte_for_byte_prost() {
        let (samples, _) = mixed();
        let mut bufs = EncodeBuffers::default();
        let body = encode_v1(&samples, &mut bufs);
        let raw = bufs.proto();
        assert_eq!(raw, reference_v1(&samples));
        let decoded: WriteRequest = decode(&body);
        assert_eq!(decoded.encode_to_vec(), raw);
        // A second, smaller request through the same buffers: nothing of the first is left.
        let body = encode_v1(&samples[..1], &mut bufs);
        assert_eq!(bufs.proto(), reference_v1(&samples[..1]));
        assert_eq!(decode::<WriteRequest>(&body).encode_to_vec(), bufs.proto());
    }

    #[test]
    fn hand_written_v2_decodes_as_prost_reads_it() {
        let (samples, meta) = mixed();
        let mut bufs = EncodeBuffers::default();
        let body = encode_v2(&samples, &meta, &mut bufs);
        let raw = bufs.proto();
        let req: write_v2::Request = decode(&body);
        // Re-encoding what prost decoded gives the same bytes: nothing was misframed.
        assert_eq!(req.encode_to_vec(), raw);
        let groups = group(&samples);
        assert_eq!(req.timeseries.len(), groups.len());
        for (ts, (s, points)) in req.timeseries.iter().zip(&groups) {
            let labels: Vec<(&str, &str)> = ts
                .labels_refs
                .chunks(2)
                .map(|p| {
                    (
                        req.symbols[p[0] as usize].as_str(),
                        req.symbols[p[1] as usize].as_str(),
                    )
                })
                .collect();
            let want: Vec<(&str, &str)> = s.series.iter().collect();
            assert_eq!(labels, want);
            let got: Vec<(i64, u64)> = ts
                .samples
                .iter()
                .map(|p| (p.timestamp, p.value.to_bits()))
                .collect();
            let want: Vec<(i64, u64)> = points.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            assert_eq!(got, want);
        }
        let temp = req
            .timeseries
            .iter()
            .find(|t| req.symbols[t.labels_refs[1] as usize] == "temp")
            .unwrap();
        let m = temp.metadata.unwrap();
        assert_eq!(m.r#type, write_v2::metadata::MetricType::Gauge as i32);
        assert_eq!(
            (
                req.symbols[m.help_ref as usize].as_str(),
                req.symbols[m.unit_ref as usize].as_str()
            ),
            ("", "celsius")
        );
    }

    fn s(pairs: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        Sample::new(&Labels::from_pairs(pairs.iter().copied()), ts, v)
    }

    fn decode<M: Message + Default>(body: &[u8]) -> M {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        M::decode(raw.as_slice()).unwrap()
    }

    fn native(count: u64) -> Arc<promshard_model::histogram::Histogram> {
        use promshard_model::histogram::{Counts, Histogram, Span};
        Arc::new(Histogram {
            schema: 1,
            zero_threshold: 0.001,
            sum: 4.5,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            negative_spans: vec![],
            counts: Counts::Int {
                count,
                zero_count: 0,
                positive: vec![1, 1],
                negative: vec![],
            },
            custom_values: vec![],
            gauge: false,
        })
    }

    /// A native histogram goes in `histograms` (1.0: field 4, 2.0: field 3) with its
    /// timestamp; a stale marker in the same request for that series goes as Prometheus sends
    /// it, a histogram with a stale sum, so a 2.0 series never mixes samples and histograms.
    #[test]
    fn native_histograms_go_in_the_histograms_fields_of_both_versions() {
        let labels = [("__name__", "lat"), ("job", "j")];
        let first = Sample {
            histogram: Some(native(3)),
            value: f64::NAN,
            ..s(&labels, 1, 0.0)
        };
        let stale = Sample {
            timestamp_ms: 2,
            value: f64::from_bits(promshard_proto::STALE_NAN_BITS),
            histogram: None,
            ..first.clone()
        };
        let other = s(&[("__name__", "up"), ("job", "j")], 1, 1.0);
        let batch = [first, other, stale];

        let v1: WriteRequest = decode(&encode_v1(&batch, &mut EncodeBuffers::default()));
        let h = &v1.timeseries[0];
        assert!(h.samples.is_empty());
        assert_eq!(h.histograms.len(), 2);
        assert_eq!(h.histograms[0].timestamp, 1);
        assert_eq!(
            h.histograms[0].count,
            Some(promshard_proto::prometheus::histogram::Count::CountInt(3))
        );
        assert_eq!(h.histograms[0].positive_deltas, [1, 1]);
        assert_eq!(h.histograms[0].schema, 1);
        assert_eq!(h.histograms[1].timestamp, 2);
        assert_eq!(
            h.histograms[1].sum.to_bits(),
            promshard_proto::STALE_NAN_BITS
        );
        assert_eq!(v1.timeseries[1].samples[0].value, 1.0);

        let v2: write_v2::Request = decode(&encode_v2(
            &batch,
            &MetadataMap::new(),
            &mut EncodeBuffers::default(),
        ));
        let h = &v2.timeseries[0];
        assert!(h.samples.is_empty());
        assert_eq!(h.histograms.len(), 2);
        let (back, ts) = super::super::histogram::from_proto(&h.histograms[0]);
        assert_eq!((back, ts), ((*native(3)).clone(), 1));
        assert_eq!(v2.timeseries[1].samples.len(), 1);
        assert!(v2.timeseries[1].histograms.is_empty());
    }

    #[test]
    fn v1_groups_a_series_samples_in_order() {
        let a = [("__name__", "a"), ("job", "j")];
        let b = [("__name__", "b"), ("job", "j")];
        let a1 = s(&a, 1, 1.0);
        let a2 = Sample {
            timestamp_ms: 2,
            value: 3.0,
            ..a1.clone()
        };
        let body = encode_v1(&[a1, s(&b, 1, 2.0), a2], &mut EncodeBuffers::default());
        let req: WriteRequest = decode(&body);
        assert_eq!(req.timeseries.len(), 2);
        let ts: Vec<i64> = req.timeseries[0]
            .samples
            .iter()
            .map(|s| s.timestamp)
            .collect();
        assert_eq!(ts, [1, 2]);
        assert_eq!(req.timeseries[0].labels[0].value, "a");
        assert_eq!(req.timeseries[1].samples[0].value, 2.0);
    }

    #[test]
    fn v2_uses_a_symbols_table_and_carries_metadata() {
        let a = [("__name__", "http_requests_total"), ("job", "j")];
        let b = [("__name__", "temp"), ("job", "j")];
        let mut meta = MetadataMap::new();
        meta.insert(
            "http_requests".into(),
            MetricMetadata {
                family: "http_requests".into(),
                kind: "counter".into(),
                help: "Requests.".into(),
                unit: String::new(),
            },
        );
        let body = encode_v2(
            &[s(&a, 1, 1.0), s(&b, 1, 2.0)],
            &meta,
            &mut EncodeBuffers::default(),
        );
        let req: write_v2::Request = decode(&body);
        assert_eq!(req.symbols[0], "");
        let labels = |ts: &write_v2::TimeSeries| -> Vec<(String, String)> {
            ts.labels_refs
                .chunks(2)
                .map(|p| {
                    (
                        req.symbols[p[0] as usize].clone(),
                        req.symbols[p[1] as usize].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            labels(&req.timeseries[0]),
            [
                ("__name__".into(), "http_requests_total".into()),
                ("job".into(), "j".into())
            ]
        );
        // "job" and "j" are stored once for both series.
        assert_eq!(req.symbols.iter().filter(|s| *s == "job").count(), 1);
        let m = req.timeseries[0].metadata.unwrap();
        assert_eq!(m.r#type, write_v2::metadata::MetricType::Counter as i32);
        assert_eq!(req.symbols[m.help_ref as usize], "Requests.");
        assert_eq!(req.timeseries[1].metadata, None);
        assert_eq!(req.timeseries[0].created_timestamp, 0);
    }

    #[test]
    fn v2_takes_created_timestamps_from_created_series() {
        let total = [("__name__", "rq_total"), ("code", "200")];
        let created = [("__name__", "rq_created"), ("code", "200")];
        let bucket = [("__name__", "lat_bucket"), ("le", "0.5")];
        let lat_created = [("__name__", "lat_created")];
        let other = [("__name__", "rq_total"), ("code", "500")];
        let body = encode_v2(
            &[
                s(&total, 5000, 3.0),
                s(&created, 5000, 1700000000.5),
                s(&bucket, 5000, 1.0),
                s(&lat_created, 5000, 1600000000.0),
                s(&other, 5000, 1.0),
            ],
            &MetadataMap::new(),
            &mut EncodeBuffers::default(),
        );
        let req: write_v2::Request = decode(&body);
        let ct: Vec<i64> = req.timeseries.iter().map(|t| t.created_timestamp).collect();
        assert_eq!(ct, [1700000000500, 0, 1600000000000, 0, 0]);
    }

    /// One TLS connection: records the request head and body, answers 204.
    async fn tls_receiver(
        cfg: std::sync::Arc<rustls::ServerConfig>,
    ) -> (String, tokio::task::JoinHandle<Option<(String, Vec<u8>)>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/api/v1/write", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            let mut s = tokio_rustls::TlsAcceptor::from(cfg)
                .accept(tcp)
                .await
                .ok()?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            s.write_all(
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await
            .ok()?;
            let _ = s.shutdown().await;
            Some((head, buf[head_end..head_end + len].to_vec()))
        });
        (url, task)
    }

    /// A CA and a server certificate for `rw.example` (the URL says 127.0.0.1, so the client
    /// needs `server_name`).
    fn pki() -> (String, std::sync::Arc<rustls::ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["rw.example".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        (ca.pem(), std::sync::Arc::new(cfg))
    }

    fn endpoint(url: &str, extra: &str) -> RemoteWriteConfig {
        let yaml = format!("remote_write:\n  - url: {url}\n{extra}");
        promshard_model::config::Config::parse(&yaml)
            .unwrap()
            .remote_write[0]
            .clone()
    }

    #[tokio::test]
    async fn sends_over_tls_with_basic_auth_and_the_spec_headers() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, server) = pki();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let (url, got) = tls_receiver(server).await;
        let cfg = endpoint(
            &url,
            &format!(
                "    tls_config: {{ca_file: {}, server_name: rw.example}}\n    basic_auth: {{username: u, password: p}}\n",
                ca_file.display()
            ),
        );
        let client = WriteClient::new(&cfg, &user_agent("w-7")).unwrap();
        let samples = [s(&[("__name__", "up"), ("job", "j")], 1000, 1.0)];
        let body = encode_v1(&samples, &mut EncodeBuffers::default());
        assert_eq!(client.send(body, Protocol::V1, 2).await.unwrap(), None);
        let (head, sent) = got.await.unwrap().unwrap();
        for want in [
            "post /api/v1/write http/1.1",
            "authorization: basic dtpw",
            "content-encoding: snappy",
            "content-type: application/x-protobuf",
            "x-prometheus-remote-write-version: 0.1.0",
            "retry-attempt: 2",
            "user-agent: promshard/",
            "(worker w-7)",
        ] {
            assert!(head.contains(want), "{want:?} not in {head}");
        }
        let req: WriteRequest = decode(&sent);
        assert_eq!(req.timeseries[0].samples[0].timestamp, 1000);
    }

    #[tokio::test]
    async fn an_unverifiable_certificate_is_a_retryable_network_error() {
        let (_, server) = pki();
        let (url, _got) = tls_receiver(server).await;
        let client = WriteClient::new(&endpoint(&url, ""), USER_AGENT_VALUE).unwrap();
        let body = encode_v1(
            &[s(&[("__name__", "up")], 1, 1.0)],
            &mut EncodeBuffers::default(),
        );
        let err = client.send(body, Protocol::V1, 0).await.unwrap_err();
        assert!(matches!(err, SendError::Recoverable { .. }), "{err:?}");
    }

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
