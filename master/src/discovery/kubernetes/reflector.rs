//! The LIST/WATCH loop of one resource kind, in either wire encoding (protobuf or JSON) and
//! either initial-sync strategy (a streaming list, or LIST `resourceVersion=0`), feeding the
//! kind's store through kube-runtime's `watcher::Event`s.
//!
//! Why our own loop rather than kube-runtime's `watcher`: kube 5 has no protobuf support, and
//! its `streaming_lists()` has no fallback for an API server without the WatchList feature.
//! One loop keeps the store semantics identical across the four combinations:
//! - the initial state is `Init`, `InitApply`…, `InitDone` (the store swaps atomically);
//! - the WATCH resumes from the last resourceVersion seen (events and bookmarks), so a
//!   control-plane outage or a closed stream costs a WATCH, not a LIST;
//! - only `410 Gone` (an HTTP status or an ERROR event) sends the kind back to a re-list;
//! - errors back off exponentially with jitter, a `429` waits at least its `Retry-After`, and
//!   every request of a cluster first takes a token from its [`RateLimiter`].
//!
//! A streaming list is one WATCH with `sendInitialEvents=true`: the API server streams the
//! current objects from its watch cache as ADDED events, ends them with a BOOKMARK annotated
//! `k8s.io/initial-events-end`, and the same stream goes on as the watch. A server that
//! refuses it (a 4xx other than 410 and 429: the WatchList feature is off, or it predates it)
//! is remembered per kind and logged once; from then on the kind lists with `resourceVersion=0`.
//!
//! Encoding: requests ask for protobuf and accept JSON (`Accept:` [`protobuf::ACCEPT`]); each
//! response is decoded by its `Content-Type`, so a server or proxy that answers JSON is
//! followed without a retry.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt as _;
use kube::Resource;
use kube::core::WatchEvent;
use kube::runtime::watcher;
use prost::Message as _;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::protobuf::{self, ProtobufKind};

/// The annotation of the BOOKMARK that ends a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";
/// How long one WATCH lasts before the server closes it and we resume (kube's and client-go's
/// order of magnitude; jittered so the kinds do not all re-watch at once).
const WATCH_TIMEOUT_SECS: u64 = 290;
const BACKOFF_INITIAL: Duration = Duration::from_millis(800);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Retry-After values above this are capped: a broken header must not park discovery.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// What the reflector asks the API server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Ask for protobuf (JSON is still accepted and decoded).
    pub protobuf: bool,
    /// Try a streaming list first; fall back to LIST `resourceVersion=0` if refused.
    pub streaming_lists: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            protobuf: true,
            streaming_lists: true,
        }
    }
}

/// A kind the reflector can watch: known to kube (its URL) and to our protobuf codec.
pub trait WatchedKind:
    ProtobufKind
    + Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> WatchedKind for K where
    K: ProtobufKind
        + Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// A client-side token bucket shared by the watches of one API server, as client-go's
/// per-client QPS/burst: a re-list storm (every kind hitting 410 at once, a watch closing at
/// once in a loop) is spread out instead of hammering an API server that is already in trouble.
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    /// The time at which the bucket would be full again.
    full_at: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(qps: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / qps.max(0.001)),
            burst: burst.max(1),
            full_at: Mutex::new(Instant::now()),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let wait = {
            let mut full_at = self.full_at.lock().await;
            let now = Instant::now();
            let window = self.interval * self.burst;
            // The bucket never holds more than `burst` tokens.
            let start = (*full_at).max(now.checked_sub(window).unwrap_or(now));
            *full_at = start + self.interval;
            (*full_at).saturating_duration_since(now + window)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Exponential backoff with full jitter in [d/2, d], reset after progress.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let exp = BACKOFF_INITIAL.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let d = exp.min(BACKOFF_MAX);
        d.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Why a request or stream failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {resource}: HTTP {code}: {message}")]
    Http {
        verb: &'static str,
        resource: &'static str,
        code: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{resource}: {0}", resource = .1)]
    Transport(kube::Error, &'static str),
    #[error("{resource}: reading the response: {message}")]
    Body {
        resource: &'static str,
        message: String,
    },
    #[error("{resource}: decoding: {message}")]
    Decode {
        resource: &'static str,
        message: String,
    },
    #[error("{resource}: the watch ended before the initial events did")]
    InitialEventsCut { resource: &'static str },
}

/// What the loop tells its owner.
pub enum Output<K> {
    Event(watcher::Event<K>),
    Error(Error),
    /// The kind fell back from streaming lists to LIST (once).
    StreamingRefused,
}

/// An event off the wire, whichever the encoding.
enum WireEvent<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    Bookmark { rv: String, initial_end: bool },
    Error { code: i32, message: String },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(response: &http::Response<kube::client::Body>) -> Encoding {
        let ct = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if ct.starts_with(protobuf::CONTENT_TYPE) {
            Encoding::Protobuf
        } else {
            Encoding::Json
        }
    }
}

/// The loop of one kind.
pub struct Reflector {
    client: kube::Client,
    resource: &'static str,
    path: String,
    options: Options,
    limiter: Arc<RateLimiter>,
}

enum Phase {
    /// No consistent state yet (start, or after 410 Gone).
    Empty,
    /// Synced up to this resourceVersion.
    Synced(String),
}

impl Reflector {
    pub fn new<K: WatchedKind>(
        client: kube::Client,
        resource: &'static str,
        options: Options,
        limiter: Arc<RateLimiter>,
    ) -> Reflector {
        Reflector {
            client,
            resource,
            path: K::url_path(&(), None),
            options,
            limiter,
        }
    }

    /// Runs forever, handing every event and error to `emit`.
    pub async fn run<K: WatchedKind>(mut self, mut emit: impl FnMut(Output<K>)) {
        let mut phase = Phase::Empty;
        let mut backoff = Backoff::default();
        loop {
            let result = match &phase {
                Phase::Empty if self.options.streaming_lists => {
                    self.streaming_list(&mut phase, &mut emit, &mut backoff)
                        .await
                }
                Phase::Empty => self.list(&mut phase, &mut emit).await,
                Phase::Synced(rv) => {
                    let rv = rv.clone();
                    self.watch(&rv, &mut phase, &mut emit, &mut backoff).await
                }
            };
            let Err(e) = result else {
                // A clean end (a LIST done, a WATCH closed by its timeout): go on at once.
                continue;
            };
            let mut delay = backoff.next();
            match &e {
                Error::Http { code: 410, .. } => {
                    tracing::info!(
                        resource = self.resource,
                        "resourceVersion expired (410 Gone): re-listing"
                    );
                    phase = Phase::Empty;
                    // Expected after compaction or a long outage: no need to wait long.
                    backoff.reset();
                    delay = Duration::ZERO;
                }
                Error::Http {
                    code: 429,
                    retry_after,
                    ..
                } => {
                    if let Some(ra) = retry_after {
                        delay = delay.max((*ra).min(RETRY_AFTER_MAX));
                    }
                    tracing::warn!(
                        resource = self.resource,
                        ?delay,
                        "API server throttled us (429); waiting"
                    );
                }
                _ => {}
            }
            emit(Output::Error(e));
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    fn request(&self, query: &str) -> Result<http::Request<kube::client::Body>, http::Error> {
        let accept = if self.options.protobuf {
            protobuf::ACCEPT
        } else {
            "application/json"
        };
        http::Request::get(format!("{}?{query}", self.path))
            .header(http::header::ACCEPT, accept)
            // A watch stream is not compressed (kube does the same: multi-member gzip breaks it).
            .header(http::header::ACCEPT_ENCODING, "identity")
            .body(kube::client::Body::empty())
    }

    async fn send(
        &self,
        verb: &'static str,
        query: &str,
    ) -> Result<http::Response<kube::client::Body>, Error> {
        self.limiter.acquire().await;
        // The client's accounting layer counts the request and its code.
        let req = self.request(query).map_err(|e| Error::Body {
            resource: self.resource,
            message: format!("building the request: {e}"),
        })?;
        let res = self
            .client
            .send(req)
            .await
            .map_err(|e| Error::Transport(e, self.resource))?;
        let code = res.status().as_u16();
        if res.status().is_success() {
            return Ok(res);
        }
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let encoding = Encoding::of(&res);
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = status_message(encoding, &body)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(Error::Http {
            verb,
            resource: self.resource,
            code,
            message,
            retry_after,
        })
    }

    /// LIST `resourceVersion=0` without a limit: served whole from the watch cache.
    async fn list<K: WatchedKind>(
        &mut self,
        phase: &mut Phase,
        emit: &mut impl FnMut(Output<K>),
    ) -> Result<(), Error> {
        let res = self.send("list", "resourceVersion=0").await?;
        let encoding = Encoding::of(&res);
        let body = res.into_body().collect().await.map_err(|e| Error::Body {
            resource: self.resource,
            message: e.to_string(),
        })?;
        let body = body.to_bytes();
        let decode_err = |message: String| Error::Decode {
            resource: self.resource,
            message,
        };
        let (rv, items): (String, Vec<K>) = match encoding {
            Encoding::Protobuf => {
                protobuf::decode_list::<K>(&body).map_err(|e| decode_err(e.to_string()))?
            }
            Encoding::Json => {
                let list: TrimmedList<K> =
                    serde_json::from_slice(&body).map_err(|e| decode_err(e.to_string()))?;
                (list.rv, list.items)
            }
        };
        drop(body);
        emit(Output::Event(watcher::Event::Init));
        for item in items {
            emit(Output::Event(watcher::Event::InitApply(item)));
        }
        emit(Output::Event(watcher::Event::InitDone));
        *phase = Phase::Synced(rv);
        Ok(())
    }

    async fn streaming_list<K: WatchedKind>(
        &mut self,
        phase: &mut Phase,
        emit: &mut impl FnMut(Output<K>),
        backoff: &mut Backoff,
    ) -> Result<(), Error> {
        let query = format!(
            "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds={}",
            watch_timeout()
        );
        let res = match self.send("watch", &query).await {
            Err(Error::Http {
                code, ref message, ..
            }) if (400..500).contains(&code) && code != 410 && code != 429 => {
                tracing::warn!(
                    resource = self.resource,
                    code,
                    %message,
                    "the API server refused a streaming list; this kind lists with resourceVersion=0 from now on"
                );
                self.options.streaming_lists = false;
                emit(Output::StreamingRefused);
                return self.list(phase, emit).await;
            }
            r => r?,
        };
        emit(Output::Event(watcher::Event::Init));
        let mut initial = true;
        let resource = self.resource;
        let result = read_stream(res, resource, |ev: WireEvent<K>| {
            if initial {
                match ev {
                    WireEvent::Added(o) | WireEvent::Modified(o) => {
                        emit(Output::Event(watcher::Event::InitApply(o)))
                    }
                    // Cannot happen before the initial state is complete; ignore.
                    WireEvent::Deleted(_) => {}
                    WireEvent::Bookmark { rv, initial_end } => {
                        if initial_end {
                            emit(Output::Event(watcher::Event::InitDone));
                            *phase = Phase::Synced(rv);
                            initial = false;
                            backoff.reset();
                        }
                    }
                    WireEvent::Error { code, message } => return Err((code, message)),
                }
                Ok(())
            } else {
                apply(ev, phase, emit)
            }
        })
        .await;
        match result {
            Err(e) => Err(e),
            Ok(()) if initial => {
                // The server closed the stream (its timeout) without ever ending the initial
                // events: it ignores `sendInitialEvents` rather than refusing it, and the store
                // would wait forever. List instead, as for a refusal.
                tracing::warn!(
                    resource,
                    "the API server ended a streaming list without the initial-events-end bookmark; \
                     this kind lists with resourceVersion=0 from now on"
                );
                self.options.streaming_lists = false;
                emit(Output::StreamingRefused);
                Err(Error::InitialEventsCut { resource })
            }
            Ok(()) => Ok(()),
        }
    }

    async fn watch<K: WatchedKind>(
        &mut self,
        rv: &str,
        phase: &mut Phase,
        emit: &mut impl FnMut(Output<K>),
        backoff: &mut Backoff,
    ) -> Result<(), Error> {
        let query = format!(
            "watch=true&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds={}",
            form_urlencoded::byte_serialize(rv.as_bytes()).collect::<String>(),
            watch_timeout()
        );
        let res = self.send("watch", &query).await?;
        let mut progressed = false;
        let result = read_stream(res, self.resource, |ev: WireEvent<K>| {
            progressed = true;
            apply(ev, phase, emit)
        })
        .await;
        if progressed {
            backoff.reset();
        }
        result
    }
}

/// Applies a watch event after the initial state; an ERROR ends the stream.
fn apply<K: WatchedKind>(
    ev: WireEvent<K>,
    phase: &mut Phase,
    emit: &mut impl FnMut(Output<K>),
) -> Result<(), (i32, String)> {
    let rv_of = |o: &K| o.meta().resource_version.clone();
    match ev {
        WireEvent::Added(o) | WireEvent::Modified(o) => {
            if let Some(rv) = rv_of(&o) {
                *phase = Phase::Synced(rv);
            }
            emit(Output::Event(watcher::Event::Apply(o)));
        }
        WireEvent::Deleted(o) => {
            if let Some(rv) = rv_of(&o) {
                *phase = Phase::Synced(rv);
            }
            emit(Output::Event(watcher::Event::Delete(o)));
        }
        WireEvent::Bookmark { rv, .. } => *phase = Phase::Synced(rv),
        WireEvent::Error { code, message } => return Err((code, message)),
    }
    Ok(())
}

/// Reads a watch response to its end, decoding frames by the response's encoding. An ERROR
/// event ends it as an [`Error::Http`] with the event's code (410 for an expired version).
async fn read_stream<K: WatchedKind>(
    res: http::Response<kube::client::Body>,
    resource: &'static str,
    mut on_event: impl FnMut(WireEvent<K>) -> Result<(), (i32, String)>,
) -> Result<(), Error> {
    let encoding = Encoding::of(&res);
    let mut body = res.into_body();
    let mut buf = BytesMut::new();
    let to_err = |(code, message): (i32, String)| Error::Http {
        verb: "watch",
        resource,
        code: code as u16,
        message,
        retry_after: None,
    };
    loop {
        // Every complete frame in the buffer.
        loop {
            let frame = match encoding {
                Encoding::Protobuf => {
                    if buf.len() < 4 {
                        break;
                    }
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + len {
                        buf.reserve(4 + len - buf.len());
                        break;
                    }
                    buf.advance(4);
                    buf.split_to(len)
                }
                Encoding::Json => match buf.iter().position(|b| *b == b'\n') {
                    None => break,
                    Some(i) => {
                        let line = buf.split_to(i + 1);
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        line
                    }
                },
            };
            let ev = decode_event::<K>(encoding, &frame)
                .map_err(|message| Error::Decode { resource, message })?;
            on_event(ev).map_err(to_err)?;
        }
        match body.frame().await {
            None => return Ok(()),
            Some(Err(e)) => {
                return Err(Error::Body {
                    resource,
                    message: e.to_string(),
                });
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

fn decode_event<K: WatchedKind>(encoding: Encoding, frame: &[u8]) -> Result<WireEvent<K>, String> {
    match encoding {
        Encoding::Protobuf => {
            let (ty, envelope) = protobuf::decode_watch_event(frame).map_err(|e| e.to_string())?;
            let (_, raw) = protobuf::decode_envelope(&envelope).map_err(|e| e.to_string())?;
            let object = || {
                K::Pb::decode(raw.as_slice())
                    .map(K::from_pb)
                    .map_err(|e| e.to_string())
            };
            Ok(match ty.as_str() {
                "ADDED" => WireEvent::Added(object()?),
                "MODIFIED" => WireEvent::Modified(object()?),
                "DELETED" => WireEvent::Deleted(object()?),
                "BOOKMARK" => {
                    let pb = K::Pb::decode(raw.as_slice()).map_err(|e| e.to_string())?;
                    WireEvent::Bookmark {
                        rv: K::resource_version(&pb).unwrap_or_default().to_string(),
                        initial_end: K::annotations(&pb)
                            .and_then(|a| a.get(INITIAL_EVENTS_END))
                            .is_some_and(|v| v == "true"),
                    }
                }
                "ERROR" => {
                    let (code, reason, message) =
                        protobuf::decode_status(&raw).map_err(|e| e.to_string())?;
                    WireEvent::Error {
                        code,
                        message: format!("{reason}: {message}"),
                    }
                }
                other => return Err(format!("unknown watch event type {other:?}")),
            })
        }
        Encoding::Json => {
            let ev: WatchEvent<K> = serde_json::from_slice(frame).map_err(|e| e.to_string())?;
            Ok(match ev {
                WatchEvent::Added(o) => WireEvent::Added(trim(o)),
                WatchEvent::Modified(o) => WireEvent::Modified(trim(o)),
                WatchEvent::Deleted(o) => WireEvent::Deleted(trim(o)),
                WatchEvent::Bookmark(b) => WireEvent::Bookmark {
                    initial_end: b
                        .metadata
                        .annotations
                        .get(INITIAL_EVENTS_END)
                        .is_some_and(|v| v == "true"),
                    rv: b.metadata.resource_version,
                },
                WatchEvent::Error(s) => WireEvent::Error {
                    code: s.code as i32,
                    message: format!("{}: {}", s.reason, s.message),
                },
            })
        }
    }
}

/// Keeps only the fields discovery reads, whichever the encoding, so the stores (and the
/// targets built from them) are the same for JSON and protobuf, and memory is the same small.
fn trim<K: WatchedKind>(o: K) -> K {
    K::from_pb(o.to_pb())
}

/// A JSON list whose items are trimmed one by one as they are parsed, so a LIST of 100k pods
/// never holds 100k whole pods at once (kube's `ObjectList` would).
struct TrimmedList<K> {
    rv: String,
    items: Vec<K>,
}

impl<'de, K: WatchedKind> serde::Deserialize<'de> for TrimmedList<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::marker::PhantomData;

        struct Items<K>(PhantomData<K>);
        impl<'de, K: WatchedKind> DeserializeSeed<'de> for Items<K> {
            type Value = Vec<K>;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<K>, D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de, K: WatchedKind> Visitor<'de> for Items<K> {
            type Value = Vec<K>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list's items")
            }
            fn visit_unit<E>(self) -> Result<Vec<K>, E> {
                Ok(Vec::new())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<K>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<K>()? {
                    out.push(trim(item));
                }
                Ok(out)
            }
        }

        struct List<K>(PhantomData<K>);
        impl<'de, K: WatchedKind> Visitor<'de> for List<K> {
            type Value = TrimmedList<K>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Kubernetes list")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TrimmedList<K>, A::Error> {
                let mut list = TrimmedList {
                    rv: String::new(),
                    items: Vec::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "metadata" => {
                            let m: k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta =
                                map.next_value()?;
                            list.rv = m.resource_version.unwrap_or_default();
                        }
                        "items" => list.items = map.next_value_seed(Items(PhantomData))?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(list)
            }
        }

        d.deserialize_map(List(PhantomData))
    }
}

fn status_message(encoding: Encoding, body: &[u8]) -> Option<String> {
    match encoding {
        Encoding::Protobuf => {
            let (_, raw) = protobuf::decode_envelope(body).ok()?;
            let (_, reason, message) = protobuf::decode_status(&raw).ok()?;
            Some(format!("{reason}: {message}"))
        }
        Encoding::Json => {
            let s: kube::core::Status = serde_json::from_slice(body).ok()?;
            Some(format!("{}: {}", s.reason, s.message))
        }
    }
}

fn watch_timeout() -> u64 {
    // 290-319 s: spread the re-watches of many kinds and masters.
    WATCH_TIMEOUT_SECS + rand::random::<u64>() % 30
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_limiter_allows_a_burst_then_its_rate() {
        // 2 per second, burst 3: three at once, the fourth half a second later.
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        let burst = start.elapsed();
        assert!(
            burst < Duration::from_millis(400),
            "the burst waited {burst:?}"
        );
        limiter.acquire().await;
        let fourth = start.elapsed();
        assert!(
            fourth >= Duration::from_millis(500),
            "the fourth request came after {fourth:?}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let mut bound = BACKOFF_INITIAL;
        for _ in 0..10 {
            let d = b.next();
            assert!(
                d >= bound / 2 && d <= bound,
                "{d:?} not within [{:?}, {bound:?}]",
                bound / 2
            );
            bound = (bound * 2).min(BACKOFF_MAX);
        }
        assert_eq!(bound, BACKOFF_MAX);
        b.reset();
        assert!(b.next() <= BACKOFF_INITIAL);
    }
}
