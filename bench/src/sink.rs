//! The null remote-write sink: accepts remote-write 1.0 requests on `127.0.0.1`, answers 204 and
//! counts what arrived, so "samples delivered" is measured where the data lands.
//!
//! It must never be the bottleneck: every request is snappy-decoded into a reused per-thread
//! buffer and its protobuf is walked without building messages (no label strings, no `Vec`s), to
//! count series and samples. That costs a few percent of a core at 200k samples/s, in the bench
//! process, which is not what is measured.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Totals since the sink started. Take two snapshots and subtract for a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub requests: u64,
    /// Request bodies as sent (snappy).
    pub bytes: u64,
    /// Time series entries (one per series per request).
    pub series: u64,
    /// Float samples plus histogram samples.
    pub samples: u64,
    /// Requests that were not valid snappy or protobuf (answered 400).
    pub rejected: u64,
}

impl std::ops::Sub for SinkCounts {
    type Output = SinkCounts;
    fn sub(self, earlier: SinkCounts) -> SinkCounts {
        SinkCounts {
            requests: self.requests - earlier.requests,
            bytes: self.bytes - earlier.bytes,
            series: self.series - earlier.series,
            samples: self.samples - earlier.samples,
            rejected: self.rejected - earlier.rejected,
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    series: AtomicU64,
    samples: AtomicU64,
    rejected: AtomicU64,
}

/// A running sink; stops serving when dropped.
pub struct NullSink {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NullSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NullSink {
    /// Binds `127.0.0.1:0` and serves.
    pub async fn start() -> std::io::Result<NullSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, counters.clone()));
        Ok(NullSink {
            addr,
            counters,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/api/v1/write`.
    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    pub fn counts(&self) -> SinkCounts {
        let c = &self.counters;
        SinkCounts {
            requests: c.requests.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            series: c.series.load(Ordering::Relaxed),
            samples: c.samples.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }
}

async fn accept_loop(listener: TcpListener, counters: Arc<Counters>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and friends: back off rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let counters = counters.clone();
                async move { Ok::<_, Infallible>(handle(request, &counters).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>, counters: &Counters) -> Response<Empty<Bytes>> {
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    match count_request(&body) {
        Some((series, samples)) => {
            counters.series.fetch_add(series, Ordering::Relaxed);
            counters.samples.fetch_add(samples, Ordering::Relaxed);
            status(StatusCode::NO_CONTENT)
        }
        None => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            status(StatusCode::BAD_REQUEST)
        }
    }
}

fn status(code: StatusCode) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = code;
    response
}

thread_local! {
    static DECODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Series and samples in one snappy-compressed `prometheus.WriteRequest`; `None` if it is not one.
pub fn count_request(snappy_body: &[u8]) -> Option<(u64, u64)> {
    DECODED.with_borrow_mut(|buf| {
        let len = snap::raw::decompress_len(snappy_body).ok()?;
        buf.resize(len, 0);
        let n = snap::raw::Decoder::new()
            .decompress(snappy_body, buf)
            .ok()?;
        count_write_request(&buf[..n])
    })
}

/// Walks `WriteRequest{repeated TimeSeries timeseries = 1}` and, in each
/// `TimeSeries{samples = 2, histograms = 4}`, counts the samples.
pub fn count_write_request(mut buf: &[u8]) -> Option<(u64, u64)> {
    let (mut series, mut samples) = (0, 0);
    while !buf.is_empty() {
        let (field, payload) = next_field(&mut buf)?;
        if field == 1 {
            let mut ts = payload?;
            series += 1;
            while !ts.is_empty() {
                let (field, _) = next_field(&mut ts)?;
                if field == 2 || field == 4 {
                    samples += 1;
                }
            }
        }
    }
    Some((series, samples))
}

/// Reads one field; returns its number and, for length-delimited fields, its payload.
/// `None` (outer) on malformed input.
#[allow(clippy::option_option)]
fn next_field<'a>(buf: &mut &'a [u8]) -> Option<(u64, Option<&'a [u8]>)> {
    let key = varint(buf)?;
    let (field, wire_type) = (key >> 3, key & 7);
    match wire_type {
        0 => {
            varint(buf)?;
            Some((field, None))
        }
        1 => {
            *buf = buf.get(8..)?;
            Some((field, None))
        }
        2 => {
            let len = usize::try_from(varint(buf)?).ok()?;
            let payload = buf.get(..len)?;
            *buf = &buf[len..];
            Some((field, Some(payload)))
        }
        5 => {
            *buf = buf.get(4..)?;
            Some((field, None))
        }
        _ => None,
    }
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use promshard_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;

    fn request(series: usize, samples_each: usize) -> WriteRequest {
        WriteRequest {
            timeseries: (0..series)
                .map(|i| TimeSeries {
                    labels: vec![
                        Label {
                            name: "__name__".into(),
                            value: "m".into(),
                        },
                        Label {
                            name: "i".into(),
                            value: i.to_string(),
                        },
                    ],
                    samples: (0..samples_each)
                        .map(|j| Sample {
                            value: j as f64,
                            timestamp: 1_700_000_000_000 + j as i64,
                        })
                        .collect(),
                    exemplars: Vec::new(),
                    histograms: Vec::new(),
                })
                .collect(),
            metadata: Vec::new(),
        }
    }

    #[test]
    fn counts_series_and_samples_of_a_real_encoding() {
        let body = snap::raw::Encoder::new()
            .compress_vec(&request(300, 3).encode_to_vec())
            .unwrap();
        assert_eq!(count_request(&body), Some((300, 900)));
        assert_eq!(count_request(b"not snappy at all"), None);
    }

    #[tokio::test]
    async fn answers_204_and_counts() {
        let sink = NullSink::start().await.unwrap();
        let body = snap::raw::Encoder::new()
            .compress_vec(&request(10, 2).encode_to_vec())
            .unwrap();
        let client = reqwest::Client::new();
        for _ in 0..3 {
            let response = client
                .post(sink.url())
                .header("Content-Encoding", "snappy")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
        }
        let response = client.post(sink.url()).body("junk").send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(
            sink.counts(),
            SinkCounts {
                requests: 4,
                bytes: 3 * body.len() as u64 + 4,
                series: 30,
                samples: 60,
                rejected: 1,
            }
        );
    }
}
