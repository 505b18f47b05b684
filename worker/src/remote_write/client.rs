//! The write client: encodes one request (remote write 1.0 or 2.0 protobuf, then snappy block
//! format) and POSTs it with the headers the spec requires, classifying failures as the spec
//! says. Auth and TLS come from the worker's shared [`HttpClient`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use promshard_model::config::RemoteWriteConfig;
use promshard_proto::prometheus::{
    Label as WireLabel, Sample as WireSample, TimeSeries, WriteRequest,
};
use promshard_proto::write_v2;
use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};

use super::{MetricMetadata, Sample};
use crate::http_client::{ClientOptions, HttpClient};

pub(crate) const USER_AGENT_VALUE: &str = concat!("promshard/", env!("CARGO_PKG_VERSION"));
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
    /// Any other 4xx: the data will never be accepted; drop and count it.
    #[error("non-recoverable: {0}")]
    Fatal(String),
}

pub struct WriteClient {
    http: HttpClient,
    url: String,
    headers: HeaderMap,
    timeout: Duration,
    retry_on_429: bool,
}

impl WriteClient {
    pub fn new(cfg: &RemoteWriteConfig) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            headers.insert(
                HeaderName::try_from(k.as_str())?,
                HeaderValue::try_from(v.as_str())?,
            );
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
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

/// Groups samples by series, keeping each series' samples in the order given (which is their
/// timestamp order: WAL order).
fn group(samples: &[Sample]) -> Vec<(&Sample, Vec<(i64, f64)>)> {
    let mut index: HashMap<&promshard_model::Labels, usize> = HashMap::new();
    let mut out: Vec<(&Sample, Vec<(i64, f64)>)> = Vec::new();
    for s in samples {
        let i = *index.entry(&s.labels).or_insert_with(|| {
            out.push((s, Vec::new()));
            out.len() - 1
        });
        out[i].1.push((s.timestamp_ms, s.value));
    }
    out
}

/// Encodes samples as a 1.0 `WriteRequest`, protobuf then snappy block format.
pub fn encode_v1(samples: &[Sample], proto_buf: &mut Vec<u8>) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: group(samples)
            .into_iter()
            .map(|(s, points)| TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| WireLabel {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: points
                    .into_iter()
                    .map(|(timestamp, value)| WireSample { value, timestamp })
                    .collect(),
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    compress(&req, proto_buf)
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
pub fn encode_v2(samples: &[Sample], metadata: &MetadataMap, proto_buf: &mut Vec<u8>) -> Vec<u8> {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut refs: HashMap<String, u32> = HashMap::from([(String::new(), 0)]);
    let mut sym = |s: &str| -> u32 {
        if let Some(r) = refs.get(s) {
            return *r;
        }
        let r = symbols.len() as u32;
        symbols.push(s.to_string());
        refs.insert(s.to_string(), r);
        r
    };
    let created = created_timestamps(samples);
    let mut timeseries = Vec::new();
    for (s, points) in group(samples) {
        let mut labels_refs = Vec::with_capacity(s.labels.len() * 2);
        for l in s.labels.iter() {
            labels_refs.push(sym(&l.name));
            labels_refs.push(sym(&l.value));
        }
        let name = s.labels.get("__name__").unwrap_or("");
        let family = family_of(name, metadata);
        let meta = family.map(|m| write_v2::Metadata {
            r#type: metric_type(&m.kind) as i32,
            help_ref: sym(&m.help),
            unit_ref: sym(&m.unit),
        });
        let created_timestamp = created_key(s, name)
            .and_then(|k| created.get(&k).copied())
            .unwrap_or(0);
        timeseries.push(write_v2::TimeSeries {
            labels_refs,
            samples: points
                .into_iter()
                .map(|(timestamp, value)| write_v2::Sample { value, timestamp })
                .collect(),
            histograms: Vec::new(),
            exemplars: Vec::new(),
            metadata: meta,
            created_timestamp,
        });
    }
    let req = write_v2::Request {
        symbols,
        timeseries,
    };
    compress(&req, proto_buf)
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
    s.labels
        .iter()
        .filter(|l| !matches!(l.name.as_str(), "__name__" | "le" | "quantile"))
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// `<family>_created` samples in the batch (seconds since the epoch) as milliseconds.
fn created_timestamps(samples: &[Sample]) -> HashMap<(String, Vec<(String, String)>), i64> {
    samples
        .iter()
        .filter_map(|s| {
            let family = s.labels.get("__name__")?.strip_suffix("_created")?;
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

fn compress(msg: &impl Message, proto_buf: &mut Vec<u8>) -> Vec<u8> {
    proto_buf.clear();
    proto_buf.reserve(msg.encoded_len());
    // Encoding into a Vec with enough capacity cannot fail.
    let _ = msg.encode(proto_buf);
    snap::raw::Encoder::new()
        .compress_vec(proto_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use promshard_model::Labels;

    fn s(pairs: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        Sample {
            labels: Labels::from_pairs(pairs.iter().copied()),
            timestamp_ms: ts,
            value: v,
        }
    }

    fn decode<M: Message + Default>(body: &[u8]) -> M {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        M::decode(raw.as_slice()).unwrap()
    }

    #[test]
    fn v1_groups_a_series_samples_in_order() {
        let a = [("__name__", "a"), ("job", "j")];
        let b = [("__name__", "b"), ("job", "j")];
        let body = encode_v1(
            &[s(&a, 1, 1.0), s(&b, 1, 2.0), s(&a, 2, 3.0)],
            &mut Vec::new(),
        );
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
        let body = encode_v2(&[s(&a, 1, 1.0), s(&b, 1, 2.0)], &meta, &mut Vec::new());
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
            &mut Vec::new(),
        );
        let req: write_v2::Request = decode(&body);
        let ct: Vec<i64> = req.timeseries.iter().map(|t| t.created_timestamp).collect();
        assert_eq!(ct, [1700000000500, 0, 1600000000000, 0, 0]);
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
