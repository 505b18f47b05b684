//! A remote-write receiver that records everything and checks the sender against the spec.
//!
//! It accepts Prometheus remote write 1.0 (`POST /api/v1/write`, snappy block-compressed
//! `prometheus.WriteRequest`) and 2.0 (`io.prometheus.write.v2.Request`, decoded through its
//! symbols table, metadata kept per series), and keeps every sample per series, so tests can
//! assert exact values. Prometheus 2.42 has no 2.0 receiver, so this is where 2.0 is checked;
//! [`RecordingReceiver::set_refuse_v2`] makes it answer 415 to 2.0 like a 1.0-only receiver. It also judges the sender: every breach of the 1.0 sender rules (headers, label
//! order and validity, sample order within and across requests, a series in two concurrent
//! requests) is recorded as a human-readable violation instead of failing the request, because
//! a test wants the full list, not the first symptom. Re-sent (series, timestamp) pairs are kept
//! apart as duplicates: handoff and retry tests count them.
//!
//! Responses are programmable (a default status, a queue of one-off responses with headers and
//! delays, or down altogether), and every request is logged with its arrival time, headers and
//! answer, including failed ones, for retry and backoff tests.
//!
//! For order across senders: [`RecordingReceiver::delay_sender`] holds one sender's requests
//! (matched by its User-Agent; promshard workers put their id there) before they are stored, as
//! a slow path to the upstream would, and [`RecordingReceiver::set_strict_order`] makes it judge
//! like a TSDB with an out-of-order window of 0 (Prometheus's `memSeries.appendable`): a request
//! with one sample older than the newest stored of its series, or at the same time with another
//! value, is refused whole with a 400 "out of order sample" and nothing of it is stored.
//! [`RecordingReceiver::forward_to`] relays every request, after that delay and in the order the
//! receiver stores them, to a real receiver (Prometheus), whose answer the sender gets: the real
//! TSDB then judges the very stream this receiver records.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response};
use promshard_proto::prometheus::{
    Histogram as WireHistogram, Label, Sample, TimeSeries, WriteRequest,
};
use prost::Message;

use crate::server::{Handler, Server, lock, response};

/// A series' labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Requests and violations kept; older entries are forgotten (counts stay exact), so a long
/// demo does not grow without bound.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;
pub const MAX_RECORDED_VIOLATIONS: usize = 10_000;

/// Content type of a remote write 2.0 request (refused with 415 after
/// [`RecordingReceiver::set_refuse_v2`], the spec's signal for a sender to fall back to 1.0).
pub const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// Whether `value` is Prometheus's staleness marker (a NaN with particular bits; any other NaN
/// is an ordinary value).
pub fn is_stale(value: f64) -> bool {
    value.to_bits() == promshard_proto::STALE_NAN_BITS
}

/// Builds [`Labels`] from pairs: `labels(&[("__name__", "up"), ("job", "a")])`.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// `{__name__="up", job="a"}`, for messages.
pub fn format_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let pairs: Vec<String> = labels
        .into_iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A programmed answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverResponse {
    pub status: u16,
    /// Extra response headers, e.g. `Retry-After`.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Held this long before answering (a slow upstream; remote_timeout tests).
    pub delay: Duration,
}

impl ReceiverResponse {
    pub fn status(status: u16) -> ReceiverResponse {
        ReceiverResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ReceiverResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: &str) -> ReceiverResponse {
        self.body = body.to_owned();
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> ReceiverResponse {
        self.delay = delay;
        self
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request as received, whatever became of it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// 1-based arrival number.
    pub number: u64,
    pub at: SystemTime,
    pub headers: HeaderMap,
    /// What the receiver answered.
    pub status: u16,
    /// Whether its samples were stored (a 2xx answer to a decodable 1.0 request).
    pub stored: bool,
    /// `TimeSeries` entries and samples in the request (0 if it could not be decoded).
    pub series: usize,
    pub samples: usize,
    /// Size of the compressed body.
    pub body_bytes: usize,
    /// The protocol the request claimed by its Content-Type: 1 or 2.
    pub version: u8,
}

impl RequestRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A (series, timestamp) received again in a stored request.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    pub labels: Labels,
    pub timestamp: i64,
    /// The value stored first, and the value that came again.
    pub first: f64,
    pub again: f64,
}

/// Counters at an instant; two of them give rates for the demo's live summary.
#[derive(Clone, Copy, Debug)]
pub struct ReceiverStats {
    pub at: Instant,
    pub requests: u64,
    pub stored_requests: u64,
    /// Samples in stored requests, duplicates included.
    pub samples: u64,
    pub series: usize,
    pub violations: u64,
    pub duplicates: u64,
}

impl ReceiverStats {
    /// Samples per second between `earlier` and `self`.
    pub fn samples_per_second_since(&self, earlier: &ReceiverStats) -> f64 {
        let seconds = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if seconds == 0.0 {
            0.0
        } else {
            self.samples.saturating_sub(earlier.samples) as f64 / seconds
        }
    }
}

#[derive(Default)]
struct SeriesData {
    samples: Vec<(i64, f64)>,
    /// Kept apart from `samples`, which retention may trim.
    last_timestamp: Option<i64>,
    /// The request that brought `last_timestamp`.
    last_request: u64,
}

struct State {
    series: BTreeMap<Labels, SeriesData>,
    violations: VecDeque<String>,
    violation_count: u64,
    duplicates: Vec<Duplicate>,
    requests: VecDeque<RequestRecord>,
    request_count: u64,
    stored_requests: u64,
    samples: u64,
    default_response: ReceiverResponse,
    queued_responses: VecDeque<ReceiverResponse>,
    /// Series in requests not yet answered, with how many such requests hold each.
    in_flight_series: HashMap<Labels, usize>,
    max_samples_per_series: Option<usize>,
    refuse_v2: bool,
    /// Remote write 2.0 metadata, latest per series: (type as the proto numbers it, help).
    metadata: BTreeMap<Labels, (i32, String)>,
    /// Remote write 2.0 created timestamps (ms), latest non-zero per series.
    created: BTreeMap<Labels, i64>,
    /// Native histograms per series, as received (1.0's and 2.0's messages are numbered alike;
    /// 2.0's are kept in 1.0's type).
    histograms: BTreeMap<Labels, Vec<WireHistogram>>,
    /// User-Agent substring → delay before a matching request is stored.
    sender_delays: Vec<(String, Duration)>,
    strict_order: bool,
    /// Requests refused in strict mode, and the samples in them.
    out_of_order_requests: u64,
    out_of_order_request_samples: u64,
}

impl State {
    fn violation(&mut self, message: String) {
        self.violation_count += 1;
        if self.violations.len() == MAX_RECORDED_VIOLATIONS {
            self.violations.pop_front();
        }
        self.violations.push_back(message);
    }

    fn record_request(&mut self, record: RequestRecord) {
        if self.requests.len() == MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }
}

struct Inner {
    state: Mutex<State>,
    /// Where requests are relayed, and the lock that keeps relaying and storing in one order.
    forward: Mutex<Option<String>>,
    forward_order: tokio::sync::Mutex<()>,
    client: reqwest::Client,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// The receiver. Cheap to clone; clones share the same recording.
#[derive(Clone)]
pub struct RecordingReceiver {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

impl RecordingReceiver {
    /// Starts listening on `127.0.0.1:0`, answering 204 to every valid request.
    pub async fn start() -> RecordingReceiver {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                series: BTreeMap::new(),
                violations: VecDeque::new(),
                violation_count: 0,
                duplicates: Vec::new(),
                requests: VecDeque::new(),
                request_count: 0,
                stored_requests: 0,
                samples: 0,
                default_response: ReceiverResponse::status(204),
                queued_responses: VecDeque::new(),
                in_flight_series: HashMap::new(),
                max_samples_per_series: None,
                refuse_v2: false,
                metadata: BTreeMap::new(),
                created: BTreeMap::new(),
                histograms: BTreeMap::new(),
                sender_delays: Vec::new(),
                strict_order: false,
                out_of_order_requests: 0,
                out_of_order_request_samples: 0,
            }),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            forward: Mutex::new(None),
            forward_order: tokio::sync::Mutex::new(()),
            client: reqwest::Client::new(),
        });
        let handler_inner = inner.clone();
        let handler: Handler = Arc::new(move |request, peer| {
            let inner = handler_inner.clone();
            Box::pin(async move { inner.handle(request, peer).await })
        });
        let server = Server::bind(([127, 0, 0, 1], 0).into(), handler)
            .await
            .expect("binding the recording receiver on 127.0.0.1:0");
        RecordingReceiver {
            inner,
            server: Arc::new(server),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT/api/v1/write`, the `remote_write` URL.
    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr())
    }

    // --- programming the answers ---

    /// Answers every request with `status` from now on (after queued responses run out).
    pub fn set_response(&self, status: u16) {
        self.set_default_response(ReceiverResponse::status(status));
    }

    pub fn set_default_response(&self, response: ReceiverResponse) {
        lock(&self.inner.state).default_response = response;
    }

    /// Answers the next request with `response` (queued: each queued response is used once, in
    /// order, before the default).
    pub fn push_response(&self, response: ReceiverResponse) {
        lock(&self.inner.state).queued_responses.push_back(response);
    }

    /// Stops listening and cuts open connections: senders see network errors.
    pub async fn set_down(&self) {
        self.server.stop().await;
    }

    /// Listens again on the same port.
    pub async fn set_up(&self) {
        if let Err(e) = self.server.start().await {
            panic!("the receiver cannot listen on {} again: {e}", self.addr());
        }
    }

    /// Holds requests whose User-Agent contains `user_agent` for `delay` before storing them
    /// (a sender with a slow path to the upstream). `Duration::ZERO` removes the delay.
    pub fn delay_sender(&self, user_agent: &str, delay: Duration) {
        let mut state = lock(&self.inner.state);
        state.sender_delays.retain(|(ua, _)| ua != user_agent);
        if !delay.is_zero() {
            state.sender_delays.push((user_agent.to_owned(), delay));
        }
    }

    /// Relays every request to `url` (a real receiver) and answers with its answer; stores
    /// only what it accepted.
    pub fn forward_to(&self, url: &str) {
        *lock(&self.inner.forward) = Some(url.to_owned());
    }

    /// Refuses a request with an out-of-order sample whole, as a real TSDB does (see the
    /// module comment).
    pub fn set_strict_order(&self, strict: bool) {
        lock(&self.inner.state).strict_order = strict;
    }

    /// Requests refused in strict mode for an out-of-order sample, and the samples they held
    /// (most of them fine: that is what one old sample costs a sender that does not split).
    pub fn out_of_order_refusals(&self) -> (u64, u64) {
        let state = lock(&self.inner.state);
        (
            state.out_of_order_requests,
            state.out_of_order_request_samples,
        )
    }

    /// Answers remote write 2.0 requests with 415 (`true`), as a 1.0-only receiver does.
    pub fn set_refuse_v2(&self, refuse: bool) {
        lock(&self.inner.state).refuse_v2 = refuse;
    }

    /// The 2.0 metadata last received for a series: (type number, help).
    pub fn metadata(&self, labels: &Labels) -> Option<(i32, String)> {
        lock(&self.inner.state).metadata.get(labels).cloned()
    }

    /// The 2.0 created timestamp (ms) last received for a series, if any was non-zero.
    pub fn created_timestamp(&self, labels: &Labels) -> Option<i64> {
        lock(&self.inner.state).created.get(labels).copied()
    }

    /// The native histograms stored for `labels`, in arrival order.
    pub fn histograms(&self, labels: &Labels) -> Vec<WireHistogram> {
        lock(&self.inner.state)
            .histograms
            .get(labels)
            .cloned()
            .unwrap_or_default()
    }

    /// Series that received native histograms.
    pub fn histogram_series(&self) -> Vec<Labels> {
        lock(&self.inner.state).histograms.keys().cloned().collect()
    }

    /// Keeps only the newest `max` samples of each series (`None`: all), for long demos.
    pub fn set_max_samples_per_series(&self, max: Option<usize>) {
        lock(&self.inner.state).max_samples_per_series = max;
    }

    // --- what was received ---

    /// Every series that has stored samples or had them, sorted.
    pub fn series(&self) -> Vec<Labels> {
        lock(&self.inner.state).series.keys().cloned().collect()
    }

    /// The stored samples of one series, `(timestamp ms, value)` in timestamp order; empty if the
    /// series never came. Duplicates and samples that went backwards are not stored.
    pub fn samples(&self, labels: &Labels) -> Vec<(i64, f64)> {
        lock(&self.inner.state)
            .series
            .get(labels)
            .map(|data| data.samples.clone())
            .unwrap_or_default()
    }

    /// Series named `name` whose labels include all of `matchers`, with their samples.
    pub fn find<V: AsRef<str>>(
        &self,
        name: &str,
        matchers: &[(&str, V)],
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        lock(&self.inner.state)
            .series
            .iter()
            .filter(|(labels, _)| {
                labels.get("__name__").map(String::as_str) == Some(name)
                    && matchers
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(v.as_ref()))
            })
            .map(|(labels, data)| (labels.clone(), data.samples.clone()))
            .collect()
    }

    /// Samples in stored requests, duplicates included.
    pub fn total_samples(&self) -> u64 {
        lock(&self.inner.state).samples
    }

    /// Requests received, whatever their answer.
    pub fn requests(&self) -> u64 {
        lock(&self.inner.state).request_count
    }

    /// The newest requests (at most [`MAX_RECORDED_REQUESTS`]), oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        lock(&self.inner.state).requests.iter().cloned().collect()
    }

    /// Headers of the latest request.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        lock(&self.inner.state)
            .requests
            .back()
            .map(|r| r.headers.clone())
    }

    /// Breaches of the remote-write 1.0 sender rules, oldest first (at most
    /// [`MAX_RECORDED_VIOLATIONS`], the newest).
    pub fn violations(&self) -> Vec<String> {
        lock(&self.inner.state).violations.iter().cloned().collect()
    }

    /// Panics listing the violations, if there are any.
    pub fn assert_no_violations(&self) {
        let state = lock(&self.inner.state);
        if state.violation_count > 0 {
            let list: Vec<&str> = state.violations.iter().map(String::as_str).collect();
            panic!(
                "the remote-write sender broke the spec {} times:\n  {}",
                state.violation_count,
                list.join("\n  ")
            );
        }
    }

    /// (series, timestamp) pairs received again in stored requests.
    pub fn duplicates(&self) -> Vec<Duplicate> {
        lock(&self.inner.state).duplicates.clone()
    }

    /// The most requests that were being handled at the same time (senders' shard concurrency).
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ReceiverStats {
        let state = lock(&self.inner.state);
        ReceiverStats {
            at: Instant::now(),
            requests: state.request_count,
            stored_requests: state.stored_requests,
            samples: state.samples,
            series: state.series.len(),
            violations: state.violation_count,
            duplicates: state.duplicates.len() as u64,
        }
    }
}

/// Counts a request as in flight until dropped, which also covers a client that gives up and
/// closes the connection (hyper then drops the handler future).
struct InFlight<'a> {
    inner: &'a Inner,
    series: Vec<Labels>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.series.is_empty() {
            return;
        }
        let mut state = lock(&self.inner.state);
        for labels in &self.series {
            if let Some(count) = state.in_flight_series.get_mut(labels) {
                *count -= 1;
                if *count == 0 {
                    state.in_flight_series.remove(labels);
                }
            }
        }
    }
}

impl Inner {
    async fn handle(&self, request: Request<Incoming>, _peer: SocketAddr) -> Response<Full<Bytes>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut in_flight = InFlight {
            inner: self,
            series: Vec::new(),
        };
        let at = SystemTime::now();
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            // The sender went away mid-body; it will retry, nothing to record.
            Err(_) => return response(400, "text/plain", "cannot read body\n"),
        };
        let sender_delay = {
            let ua = parts
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            lock(&self.state)
                .sender_delays
                .iter()
                .find(|(want, _)| ua.contains(want.as_str()))
                .map(|(_, d)| *d)
        };
        if let Some(delay) = sender_delay {
            tokio::time::sleep(delay).await;
        }
        let number = {
            let mut state = lock(&self.state);
            state.request_count += 1;
            state.request_count
        };
        let mut record = RequestRecord {
            number,
            at,
            headers: parts.headers.clone(),
            status: 0,
            stored: false,
            series: 0,
            samples: 0,
            body_bytes: body.len(),
            version: 1,
        };
        let finish = |record: RequestRecord, answer: Response<Full<Bytes>>| {
            lock(&self.state).record_request(record);
            answer
        };

        if parts.uri.path() != "/api/v1/write" || parts.method != hyper::Method::POST {
            let mut state = lock(&self.state);
            state.violation(format!(
                "request #{number}: {} {} (remote write is POST /api/v1/write)",
                parts.method,
                parts.uri.path()
            ));
            drop(state);
            record.status = 404;
            return finish(record, response(404, "text/plain", "not found\n"));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let v2 = header("content-type").is_some_and(|ct| {
            ct.replace(' ', "")
                .contains("proto=io.prometheus.write.v2.Request")
        });
        if v2 {
            record.version = 2;
            if lock(&self.state).refuse_v2 {
                record.status = 415;
                return finish(
                    record,
                    response(
                        415,
                        "text/plain",
                        "remote write 2.0 is not supported here\n",
                    ),
                );
            }
        }

        let mut problems = Vec::new();
        check_header(
            &mut problems,
            header("content-encoding"),
            "Content-Encoding",
            "snappy",
        );
        if !v2 {
            check_header(
                &mut problems,
                header("content-type"),
                "Content-Type",
                "application/x-protobuf",
            );
        }
        check_header(
            &mut problems,
            header("x-prometheus-remote-write-version"),
            "X-Prometheus-Remote-Write-Version",
            if v2 { "2.0.0" } else { "0.1.0" },
        );
        if header("user-agent").is_none_or(str::is_empty) {
            problems.push("no User-Agent header".to_owned());
        }

        let mut metadata = Vec::new();
        let mut created = Vec::new();
        let decoded = if v2 {
            decode_v2(&body, &mut problems, &mut metadata, &mut created)
        } else {
            decode(&body)
        };
        let write_request = match decoded {
            Ok(write_request) => write_request,
            Err(problem) => {
                problems.push(problem);
                let mut state = lock(&self.state);
                for problem in problems {
                    state.violation(format!("request #{number}: {problem}"));
                }
                drop(state);
                record.status = 400;
                return finish(record, response(400, "text/plain", "cannot decode body\n"));
            }
        };
        record.series = write_request.timeseries.len();
        record.samples = write_request
            .timeseries
            .iter()
            .map(|s| s.samples.len())
            .sum();
        let histograms_in: usize = write_request
            .timeseries
            .iter()
            .map(|s| s.histograms.len())
            .sum();
        for series in &write_request.timeseries {
            check_series(&mut problems, series);
        }
        let series_labels: Vec<Labels> = write_request
            .timeseries
            .iter()
            .map(|s| to_labels(&s.labels))
            .collect();

        // Relayed and stored under one lock: the real receiver sees what this one records, in
        // the same order.
        let forward = lock(&self.forward).clone();
        let _relaying = match &forward {
            Some(_) => Some(self.forward_order.lock().await),
            None => None,
        };
        let upstream = match &forward {
            Some(url) => Some(self.relay(url, &parts.headers, body.clone()).await),
            None => None,
        };

        let answer = {
            let mut state = lock(&self.state);
            // A sender must not have one series in two requests at once: order across requests
            // then depends on the network.
            let mut unique: Vec<Labels> = series_labels.clone();
            unique.sort();
            unique.dedup();
            for labels in &unique {
                let count = state.in_flight_series.entry(labels.clone()).or_insert(0);
                *count += 1;
                if *count > 1 {
                    problems.push(format!(
                        "series {} is also in another request still in flight",
                        format_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    ));
                }
            }
            in_flight.series = unique;

            let mut answer = state
                .queued_responses
                .pop_front()
                .unwrap_or_else(|| state.default_response.clone());
            if let Some((status, text)) = &upstream
                && answer.is_success()
                && !(200..300).contains(status)
            {
                answer = ReceiverResponse::status(*status).with_body(text);
            }
            if answer.is_success()
                && state.strict_order
                && let Some(refusal) = out_of_order(&state, &series_labels, &write_request)
            {
                problems.push(refusal);
                state.out_of_order_requests += 1;
                state.out_of_order_request_samples += record.samples as u64;
                answer = ReceiverResponse::status(400).with_body("out of order sample\n");
            }
            if answer.is_success() {
                for (labels, meta) in metadata {
                    state.metadata.insert(labels, meta);
                }
                for (labels, ct) in created {
                    state.created.insert(labels, ct);
                }
                record.stored = true;
                state.stored_requests += 1;
                state.samples += record.samples as u64;
                for (labels, series) in series_labels.into_iter().zip(&write_request.timeseries) {
                    if !series.histograms.is_empty() {
                        state
                            .histograms
                            .entry(labels.clone())
                            .or_default()
                            .extend(series.histograms.iter().cloned());
                    }
                    if series.samples.is_empty() {
                        continue;
                    }
                    store(&mut state, number, labels, &series.samples, &mut problems);
                }
            }
            for problem in problems {
                state.violation(format!("request #{number}: {problem}"));
            }
            answer
        };

        if !answer.delay.is_zero() {
            tokio::time::sleep(answer.delay).await;
        }
        record.status = answer.status;
        let mut reply = response(answer.status, "text/plain", answer.body.clone());
        if v2 && answer.is_success() {
            // Required of every 2.0 receiver: how much of the request it wrote.
            for (name, n) in [
                ("x-prometheus-remote-write-samples-written", record.samples),
                (
                    "x-prometheus-remote-write-histograms-written",
                    histograms_in,
                ),
                ("x-prometheus-remote-write-exemplars-written", 0),
            ] {
                reply.headers_mut().insert(name, n.into());
            }
        }
        for (name, value) in &answer.headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(value),
            ) {
                reply.headers_mut().insert(name, value);
            }
        }
        drop(in_flight);
        finish(record, reply)
    }
}

impl Inner {
    /// POSTs the request as it came to `url`; the upstream's status and body (a network error
    /// is a 503, which the sender retries).
    async fn relay(&self, url: &str, headers: &HeaderMap, body: Bytes) -> (u16, String) {
        let mut req = self.client.post(url).body(body);
        for name in [
            "content-type",
            "content-encoding",
            "user-agent",
            "x-prometheus-remote-write-version",
        ] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v.as_bytes());
            }
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap_or_default())
            }
            Err(e) => (503, format!("relay to {url}: {e}")),
        }
    }
}

fn check_header(problems: &mut Vec<String>, value: Option<&str>, name: &str, want: &str) {
    match value {
        Some(value) if value == want => {}
        Some(value) => problems.push(format!("{name} is {value:?}, want {want:?}")),
        None => problems.push(format!("no {name} header (want {want:?})")),
    }
}

/// Snappy block format, then protobuf.
fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    const FRAMED_STREAM_START: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    if body.starts_with(FRAMED_STREAM_START) {
        return Err(
            "body uses the snappy framed format; remote write needs the block format".into(),
        );
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("body is not snappy block-compressed: {e}"))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| format!("body is not a WriteRequest: {e}"))
}

/// Snappy block format, then a 2.0 `Request`, resolved through its symbols table into the 1.0
/// shape the rest of the receiver checks and stores. 2.0-only rules (symbols[0] is "", label
/// references in pairs and in range) are recorded in `problems`; metadata goes to `metadata`.
fn decode_v2(
    body: &[u8],
    problems: &mut Vec<String>,
    metadata: &mut Vec<(Labels, (i32, String))>,
    created: &mut Vec<(Labels, i64)>,
) -> Result<WriteRequest, String> {
    use promshard_proto::write_v2;
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("body is not snappy block-compressed: {e}"))?;
    let request = write_v2::Request::decode(raw.as_slice())
        .map_err(|e| format!("body is not an io.prometheus.write.v2.Request: {e}"))?;
    let symbols = &request.symbols;
    if symbols.first().is_none_or(|s| !s.is_empty()) {
        problems.push("2.0 symbols table does not start with \"\"".to_owned());
    }
    let symbol = |r: u32, problems: &mut Vec<String>| -> String {
        match symbols.get(r as usize) {
            Some(s) => s.clone(),
            None => {
                problems.push(format!(
                    "2.0 symbol reference {r} out of range ({} symbols)",
                    symbols.len()
                ));
                String::new()
            }
        }
    };
    let mut timeseries = Vec::with_capacity(request.timeseries.len());
    for series in &request.timeseries {
        if series.labels_refs.len() % 2 != 0 {
            problems.push(format!(
                "2.0 series has an odd number of label references ({})",
                series.labels_refs.len()
            ));
        }
        let labels: Vec<Label> = series
            .labels_refs
            .chunks_exact(2)
            .map(|pair| Label {
                name: symbol(pair[0], problems),
                value: symbol(pair[1], problems),
            })
            .collect();
        if !series.histograms.is_empty() && !series.samples.is_empty() {
            problems.push("2.0 series carries both samples and histograms".to_owned());
        }
        if let Some(meta) = &series.metadata {
            let help = symbol(meta.help_ref, problems);
            metadata.push((to_labels(&labels), (meta.r#type, help)));
        }
        if series.created_timestamp != 0 {
            created.push((to_labels(&labels), series.created_timestamp));
        }
        timeseries.push(TimeSeries {
            labels,
            samples: series
                .samples
                .iter()
                .map(|s| Sample {
                    value: s.value,
                    timestamp: s.timestamp,
                })
                .collect(),
            exemplars: Vec::new(),
            // Numbered alike: 2.0's message read as 1.0's.
            histograms: series
                .histograms
                .iter()
                .filter_map(|h| WireHistogram::decode(h.encode_to_vec().as_slice()).ok())
                .collect(),
        });
    }
    Ok(WriteRequest {
        timeseries,
        metadata: Vec::new(),
    })
}

/// The per-series rules that need no history: label validity and sample order.
fn check_series(problems: &mut Vec<String>, series: &TimeSeries) {
    let (labels, samples) = (&series.labels, &series.samples);
    let shown = || format_labels(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    for label in labels {
        if label.name.is_empty() {
            problems.push(format!("series {} has a label with an empty name", shown()));
        }
        if label.value.is_empty() {
            problems.push(format!(
                "series {} has label {} with an empty value",
                shown(),
                label.name
            ));
        }
    }
    for pair in labels.windows(2) {
        if pair[0].name == pair[1].name {
            problems.push(format!("series {} repeats label {}", shown(), pair[0].name));
        } else if pair[0].name > pair[1].name {
            problems.push(format!(
                "series {} has labels out of order: {} before {}",
                shown(),
                pair[0].name,
                pair[1].name
            ));
        }
    }
    if !labels.iter().any(|l| l.name == "__name__") {
        problems.push(format!("series {} has no __name__", shown()));
    }
    if samples.is_empty() && series.exemplars.is_empty() && series.histograms.is_empty() {
        problems.push(format!("series {} has no samples", shown()));
    }
    for pair in samples.windows(2) {
        if pair[1].timestamp <= pair[0].timestamp {
            problems.push(format!(
                "series {} has samples out of timestamp order within one entry: {} then {}",
                shown(),
                pair[0].timestamp,
                pair[1].timestamp
            ));
        }
    }
}

fn to_labels(labels: &[Label]) -> Labels {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// The first sample of a request that a TSDB with an out-of-order window of 0 refuses: older
/// than the newest stored of its series (or earlier in the request), or at the same time with
/// another value. `None` when it would take the whole request.
fn out_of_order(state: &State, labels: &[Labels], request: &WriteRequest) -> Option<String> {
    let mut newest: HashMap<&Labels, (i64, f64)> = HashMap::new();
    for (l, series) in labels.iter().zip(&request.timeseries) {
        for s in &series.samples {
            let last = newest.get(l).copied().or_else(|| {
                let data = state.series.get(l)?;
                let t = data.last_timestamp?;
                let v = data
                    .samples
                    .binary_search_by_key(&t, |(t, _)| *t)
                    .ok()
                    .map_or(f64::NAN, |i| data.samples[i].1);
                Some((t, v))
            });
            if let Some((t, v)) = last
                && (s.timestamp < t || (s.timestamp == t && s.value.to_bits() != v.to_bits()))
            {
                return Some(format!(
                    "series {} refused as a TSDB would: sample at {} after one at {t} (the whole request was refused)",
                    format_labels(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    s.timestamp
                ));
            }
            newest.insert(l, (s.timestamp, s.value));
        }
    }
    None
}

/// Appends samples to a series, sorting out duplicates and samples that go back in time.
fn store(
    state: &mut State,
    request: u64,
    labels: Labels,
    samples: &[Sample],
    problems: &mut Vec<String>,
) {
    let max = state.max_samples_per_series;
    let data = state.series.entry(labels.clone()).or_default();
    let mut duplicates = Vec::new();
    for sample in samples {
        let (timestamp, value) = (sample.timestamp, sample.value);
        match data.last_timestamp {
            Some(last) if timestamp <= last => {
                if let Ok(i) = data.samples.binary_search_by_key(&timestamp, |(t, _)| *t) {
                    duplicates.push(Duplicate {
                        labels: labels.clone(),
                        timestamp,
                        first: data.samples[i].1,
                        again: value,
                    });
                }
                if timestamp < last {
                    let whence = if data.last_request == request {
                        "earlier in the same request"
                    } else {
                        "in an earlier request"
                    };
                    problems.push(format!(
                        "series {} went back in time: sample at {timestamp} after one at {last} {whence}",
                        format_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    ));
                }
            }
            _ => {
                data.samples.push((timestamp, value));
                data.last_timestamp = Some(timestamp);
                data.last_request = request;
            }
        }
    }
    if let Some(max) = max
        && data.samples.len() > max
    {
        let excess = data.samples.len() - max;
        data.samples.drain(..excess);
    }
    state.duplicates.extend(duplicates);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: pairs
                .iter()
                .map(|(name, value)| Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            exemplars: Vec::new(),
            histograms: Vec::new(),
        }
    }

    fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
        let request = WriteRequest {
            timeseries,
            metadata: Vec::new(),
        };
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    /// Posts like a correct remote-write 1.0 sender.
    async fn post(receiver: &RecordingReceiver, timeseries: Vec<TimeSeries>) -> u16 {
        reqwest::Client::new()
            .post(receiver.url())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", "promshard-test/0")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body(timeseries))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn stores_valid_requests_without_violations() {
        let receiver = RecordingReceiver::start().await;
        let up = [("__name__", "up"), ("instance", "a:1"), ("job", "j")];
        let stale = f64::from_bits(promshard_proto::STALE_NAN_BITS);
        assert_eq!(
            post(&receiver, vec![series(&up, &[(1000, 1.0), (2000, 0.0)])]).await,
            204
        );
        assert_eq!(
            post(&receiver, vec![series(&up, &[(3000, stale)])]).await,
            204
        );

        receiver.assert_no_violations();
        assert_eq!(receiver.series(), vec![labels(&up)]);
        let samples = receiver.samples(&labels(&up));
        assert_eq!(samples[..2], [(1000, 1.0), (2000, 0.0)]);
        assert_eq!(samples[2].0, 3000);
        assert!(is_stale(samples[2].1));
        assert!(!is_stale(f64::NAN));
        assert_eq!(receiver.total_samples(), 3);
        assert_eq!(receiver.requests(), 2);
        assert!(receiver.duplicates().is_empty());
        // Compared by bits: the stale marker is a NaN, which equals nothing.
        let bits = |found: Vec<(Labels, Vec<(i64, f64)>)>| -> Vec<(Labels, Vec<(i64, u64)>)> {
            found
                .into_iter()
                .map(|(l, s)| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect()))
                .collect()
        };
        assert_eq!(
            bits(receiver.find("up", &[("job", "j")])),
            bits(vec![(labels(&up), samples.clone())])
        );
        assert!(receiver.find("up", &[("job", "other")]).is_empty());
        assert!(receiver.find::<&str>("down", &[]).is_empty());
        let headers = receiver.last_headers().unwrap();
        assert_eq!(headers["user-agent"], "promshard-test/0");
        let log = receiver.request_log();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].number, log[0].status, log[0].stored),
            (1, 204, true)
        );
        assert_eq!((log[0].series, log[0].samples), (1, 2));
    }

    #[tokio::test]
    async fn flags_missing_headers() {
        let receiver = RecordingReceiver::start().await;
        let status = reqwest::Client::new()
            .post(receiver.url())
            .header("Content-Type", "application/protobuf")
            .body(body(vec![series(&[("__name__", "x")], &[(1, 1.0)])]))
            .send()
            .await
            .unwrap()
            .status();
        // Header problems are recorded, not refused: the samples still tell the rest.
        assert_eq!(status, 204);
        assert_eq!(
            receiver.violations(),
            [
                "request #1: no Content-Encoding header (want \"snappy\")",
                "request #1: Content-Type is \"application/protobuf\", want \"application/x-protobuf\"",
                "request #1: no X-Prometheus-Remote-Write-Version header (want \"0.1.0\")",
                "request #1: no User-Agent header",
            ]
        );
        assert_eq!(receiver.samples(&labels(&[("__name__", "x")])), [(1, 1.0)]);
    }

    #[tokio::test]
    async fn flags_bad_labels() {
        let receiver = RecordingReceiver::start().await;
        post(
            &receiver,
            vec![
                series(&[("job", "j"), ("__name__", "m")], &[(1, 1.0)]),
                series(&[("__name__", "m"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
                series(&[("__name__", "m"), ("b", "")], &[(1, 1.0)]),
                series(&[("", "v"), ("__name__", "m")], &[(1, 1.0)]),
                series(&[("job", "j")], &[(1, 1.0)]),
            ],
        )
        .await;
        assert_eq!(
            receiver.violations(),
            [
                "request #1: series {job=\"j\", __name__=\"m\"} has labels out of order: job before __name__",
                "request #1: series {__name__=\"m\", a=\"1\", a=\"2\"} repeats label a",
                "request #1: series {__name__=\"m\", b=\"\"} has label b with an empty value",
                "request #1: series {=\"v\", __name__=\"m\"} has a label with an empty name",
                "request #1: series {job=\"j\"} has no __name__",
            ]
        );
    }

    #[tokio::test]
    async fn flags_order_and_counts_duplicates() {
        let receiver = RecordingReceiver::start().await;
        let m = [("__name__", "m")];
        post(&receiver, vec![series(&m, &[(10, 1.0), (20, 2.0)])]).await;
        // A re-send of 20 is a duplicate; 15 goes back in time; 30 is fine.
        post(
            &receiver,
            vec![series(&m, &[(20, 2.5)]), series(&m, &[(15, 1.5)])],
        )
        .await;
        post(&receiver, vec![series(&m, &[(30, 3.0), (25, 9.0)])]).await;
        assert_eq!(
            receiver.duplicates(),
            [Duplicate {
                labels: labels(&m),
                timestamp: 20,
                first: 2.0,
                again: 2.5
            }]
        );
        assert_eq!(
            receiver.violations(),
            [
                "request #2: series {__name__=\"m\"} went back in time: sample at 15 after one at 20 in an earlier request",
                "request #3: series {__name__=\"m\"} has samples out of timestamp order within one entry: 30 then 25",
                "request #3: series {__name__=\"m\"} went back in time: sample at 25 after one at 30 earlier in the same request",
            ]
        );
        assert_eq!(
            receiver.samples(&labels(&m)),
            [(10, 1.0), (20, 2.0), (30, 3.0)]
        );
        assert_eq!(receiver.total_samples(), 6);
        assert_eq!(receiver.stats().duplicates, 1);
    }

    #[tokio::test]
    async fn flags_going_back_across_requests() {
        let receiver = RecordingReceiver::start().await;
        let m = [("__name__", "m")];
        post(&receiver, vec![series(&m, &[(20, 1.0)])]).await;
        post(&receiver, vec![series(&m, &[(10, 1.0)])]).await;
        assert_eq!(
            receiver.violations(),
            [
                "request #2: series {__name__=\"m\"} went back in time: sample at 10 after one at 20 in an earlier request"
            ]
        );
    }

    #[tokio::test]
    async fn programmed_responses_are_used_in_order_and_failures_not_stored() {
        let receiver = RecordingReceiver::start().await;
        let m = [("__name__", "m")];
        receiver.push_response(ReceiverResponse::status(503).with_body("busy"));
        receiver.push_response(ReceiverResponse::status(429).with_header("Retry-After", "1"));
        receiver.set_response(200);
        let client = reqwest::Client::new();
        let send = |n: i64| {
            client
                .post(receiver.url())
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("User-Agent", "t")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .header("Retry-Attempt", n.to_string())
                .body(body(vec![series(&m, &[(1, 1.0)])]))
                .send()
        };
        let first = send(0).await.unwrap();
        assert_eq!(first.status(), 503);
        assert_eq!(first.text().await.unwrap(), "busy");
        let second = send(1).await.unwrap();
        assert_eq!(second.status(), 429);
        assert_eq!(second.headers()["retry-after"], "1");
        assert_eq!(send(2).await.unwrap().status(), 200);

        let log = receiver.request_log();
        let summary: Vec<_> = log
            .iter()
            .map(|r| {
                (
                    r.status,
                    r.stored,
                    r.header("retry-attempt").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (503, false, "0".into()),
                (429, false, "1".into()),
                (200, true, "2".into())
            ]
        );
        assert_eq!(receiver.samples(&labels(&m)), [(1, 1.0)]);
        assert!(receiver.duplicates().is_empty());
        receiver.assert_no_violations();
    }

    #[tokio::test]
    async fn refuses_remote_write_2_with_415_on_demand() {
        let receiver = RecordingReceiver::start().await;
        receiver.set_refuse_v2(true);
        let status = reqwest::Client::new()
            .post(receiver.url())
            .header("Content-Type", V2_CONTENT_TYPE)
            .header("Content-Encoding", "snappy")
            .body(vec![1, 2, 3])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 415);
        let log = receiver.request_log();
        assert_eq!((log.len(), log[0].status, log[0].stored), (1, 415, false));
        receiver.assert_no_violations();
    }

    #[tokio::test]
    async fn decodes_remote_write_2_through_its_symbols_table() {
        use promshard_proto::write_v2;
        let receiver = RecordingReceiver::start().await;
        let request = write_v2::Request {
            symbols: ["", "__name__", "up", "job", "j", "Whether up."]
                .map(String::from)
                .to_vec(),
            timeseries: vec![write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    write_v2::Sample {
                        value: 1.0,
                        timestamp: 10,
                    },
                    write_v2::Sample {
                        value: 0.0,
                        timestamp: 20,
                    },
                ],
                histograms: Vec::new(),
                exemplars: Vec::new(),
                metadata: Some(write_v2::Metadata {
                    r#type: write_v2::metadata::MetricType::Gauge as i32,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                created_timestamp: 0,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let status = reqwest::Client::new()
            .post(receiver.url())
            .header("Content-Type", V2_CONTENT_TYPE)
            .header("Content-Encoding", "snappy")
            .header("User-Agent", "t")
            .header("X-Prometheus-Remote-Write-Version", "2.0.0")
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
        receiver.assert_no_violations();
        let up = labels(&[("__name__", "up"), ("job", "j")]);
        assert_eq!(receiver.samples(&up), [(10, 1.0), (20, 0.0)]);
        assert_eq!(
            receiver.metadata(&up),
            Some((
                write_v2::metadata::MetricType::Gauge as i32,
                "Whether up.".to_owned()
            ))
        );
        assert_eq!(receiver.request_log()[0].version, 2);
    }

    #[tokio::test]
    async fn flags_undecodable_bodies() {
        let receiver = RecordingReceiver::start().await;
        let client = reqwest::Client::new();
        let send = |body: Vec<u8>| {
            client
                .post(receiver.url())
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("User-Agent", "t")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body)
                .send()
        };
        let request = WriteRequest {
            timeseries: vec![series(&[("__name__", "m")], &[(1, 1.0)])],
            metadata: Vec::new(),
        };
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut writer = snap::write::FrameEncoder::new(&mut framed);
            writer.write_all(&request.encode_to_vec()).unwrap();
        }
        assert_eq!(send(framed).await.unwrap().status(), 400);
        assert_eq!(send(request.encode_to_vec()).await.unwrap().status(), 400);
        let violations = receiver.violations();
        assert_eq!(
            violations[0],
            "request #1: body uses the snappy framed format; remote write needs the block format"
        );
        assert!(
            violations[1].starts_with("request #2: body is not snappy block-compressed: "),
            "{violations:?}"
        );
        assert!(receiver.series().is_empty());
    }

    #[tokio::test]
    async fn flags_a_series_in_two_requests_in_flight() {
        let receiver = RecordingReceiver::start().await;
        let m = [("__name__", "m")];
        // The first request is held until the second has arrived.
        receiver.push_response(ReceiverResponse::status(204).with_delay(Duration::from_secs(2)));
        let first = {
            let receiver = receiver.clone();
            tokio::spawn(async move { post(&receiver, vec![series(&m, &[(1, 1.0)])]).await })
        };
        crate::eventually(
            Duration::from_secs(10),
            "the first request to arrive",
            || async {
                if receiver.requests() == 1 {
                    Ok(())
                } else {
                    Err(format!("{} requests", receiver.requests()))
                }
            },
        )
        .await;
        assert_eq!(post(&receiver, vec![series(&m, &[(2, 1.0)])]).await, 204);
        assert_eq!(first.await.unwrap(), 204);
        assert_eq!(
            receiver.violations(),
            ["request #2: series {__name__=\"m\"} is also in another request still in flight"]
        );
        assert_eq!(receiver.max_in_flight(), 2);
    }

    #[tokio::test]
    async fn down_gives_network_errors() {
        let receiver = RecordingReceiver::start().await;
        receiver.set_down().await;
        let error = reqwest::Client::new()
            .post(receiver.url())
            .body(vec![])
            .send()
            .await
            .unwrap_err();
        assert!(error.is_connect(), "{error:?}");
        receiver.set_up().await;
        assert_eq!(
            post(&receiver, vec![series(&[("__name__", "m")], &[(1, 1.0)])]).await,
            204
        );
    }

    #[test]
    fn rates_from_two_stats() {
        let now = Instant::now();
        let stats = |at, samples| ReceiverStats {
            at,
            requests: 0,
            stored_requests: 0,
            samples,
            series: 0,
            violations: 0,
            duplicates: 0,
        };
        let later = stats(now + Duration::from_secs(2), 500);
        assert_eq!(later.samples_per_second_since(&stats(now, 100)), 200.0);
        assert_eq!(later.samples_per_second_since(&later), 0.0);
    }
}
