//! Requests to responses: the URL layout of the Kubernetes API, LIST, WATCH, single-object
//! verbs, discovery, and the accounting of every request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::protobuf::{self, Codec};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ApiError, Event, EventType, Manager, PatchType, WriteMode};
use super::{RequestRecord, Shared, Verb};
use crate::server::lock;

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// Events fetched from the store per lock; also bounds how long one watch holds the lock.
const WATCH_BATCH: usize = 1000;
/// Watch output is coalesced into chunks of about this size.
const WATCH_CHUNK_BYTES: usize = 64 * 1024;

/// Where a request goes.
enum Route {
    /// A discovery document or another non-resource path (`/version`, `/healthz`).
    Document(Value),
    Text(&'static str),
    Resource {
        res: &'static ResourceType,
        namespace: Option<String>,
        name: Option<String>,
    },
    NotFound,
}

pub(super) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let user_agent = header(&request, USER_AGENT);
    let authorization = header(&request, hyper::header::AUTHORIZATION);
    let accept = header(&request, hyper::header::ACCEPT);
    let route = route(&shared, &path);
    let params = Params::parse(&query);
    let method = request.method().clone();
    let verb = match (&route, &method) {
        (Route::Resource { name: None, .. }, &Method::GET) => match &params {
            Ok(params) if params.watch => Verb::Watch,
            _ => Verb::List,
        },
        (Route::Resource { name: None, .. }, &Method::POST) => Verb::Create,
        (Route::Resource { name: Some(_), .. }, &Method::PUT) => Verb::Update,
        (Route::Resource { name: Some(_), .. }, &Method::PATCH) => Verb::Patch,
        (Route::Resource { name: Some(_), .. }, &Method::DELETE) => Verb::Delete,
        _ => Verb::Get,
    };
    let (resource, namespace, name) = match &route {
        Route::Resource {
            res,
            namespace,
            name,
        } => (res.plural.to_owned(), namespace.clone(), name.clone()),
        _ => (String::new(), None, None),
    };

    let throttled = matches!(route, Route::Resource { .. })
        .then(|| shared.take_throttle())
        .flatten();
    let response = if shared.unavailable.load(Ordering::SeqCst) {
        error(&ApiError::new(
            503,
            "ServiceUnavailable",
            "the API server double is set unavailable",
        ))
    } else if let Some(retry_after) = throttled {
        // What API Priority and Fairness answers when a flow's queue is full.
        let mut response = error(&ApiError::new(
            429,
            "TooManyRequests",
            "too many requests, please try again later",
        ));
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            HeaderValue::from(retry_after.as_secs()),
        );
        response
    } else {
        let protobuf = shared.config.protobuf && accept.contains(protobuf::CONTENT_TYPE);
        match params {
            Err(e) => error(&e),
            Ok(params) => dispatch(&shared, route, method, verb, params, protobuf, request).await,
        }
    };

    lock(&shared.requests).push(RequestRecord {
        verb,
        resource,
        namespace,
        name,
        user_agent,
        authorization,
        accept,
        path,
        query,
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        at: std::time::Instant::now(),
    });
    response
}

fn header(request: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn route(shared: &Shared, path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Document(resources::version()),
        ["healthz" | "livez" | "readyz"] => return Route::Text("ok"),
        ["api"] => return Route::Document(resources::api_versions(shared.addr)),
        ["apis"] => return Route::Document(resources::api_group_list()),
        ["apis", group] => {
            return resources::api_group_document(group).map_or(Route::NotFound, Route::Document);
        }
        ["api", version] => {
            return document_or_not_found(resources::api_resource_list("", version));
        }
        ["apis", group, version] => {
            return document_or_not_found(resources::api_resource_list(group, version));
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let resource =
        |plural: &str, namespace: Option<&str>, name: Option<&str>| match resources::by_path(
            group, version, plural,
        ) {
            Some(res) if namespace.is_none() || res.namespaced => Route::Resource {
                res,
                namespace: namespace.map(str::to_owned),
                name: name.map(str::to_owned),
            },
            _ => Route::NotFound,
        };
    match rest {
        // `/api/v1/namespaces/{name}` is the namespace object itself.
        ["namespaces", name] if group.is_empty() => resource("namespaces", None, Some(name)),
        ["namespaces", namespace, plural] => resource(plural, Some(namespace), None),
        ["namespaces", namespace, plural, name] => resource(plural, Some(namespace), Some(name)),
        [plural] => resource(plural, None, None),
        // A namespaced kind's objects are only reachable through their namespace.
        [plural, name] => match resource(plural, None, Some(name)) {
            Route::Resource { res, .. } if res.namespaced => Route::NotFound,
            route => route,
        },
        _ => Route::NotFound,
    }
}

fn document_or_not_found(document: Option<Value>) -> Route {
    document.map_or(Route::NotFound, Route::Document)
}

/// The query parameters the double understands; others are ignored, as a real server does.
#[derive(Default)]
struct Params {
    watch: bool,
    resource_version: Option<String>,
    limit: Option<usize>,
    continue_token: Option<String>,
    label_selector: String,
    field_selector: String,
    bookmarks: bool,
    send_initial_events: bool,
    resource_version_match: Option<String>,
    timeout: Option<Duration>,
    manager: Manager,
}

impl Params {
    fn parse(query: &str) -> Result<Params, ApiError> {
        let mut params = Params::default();
        let flag = |value: &str| value == "true" || value == "1";
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "watch" => params.watch = flag(&value),
                "resourceVersion" => params.resource_version = Some(value.into_owned()),
                "limit" => params.limit = Some(parse_number(&key, &value)? as usize),
                "continue" => params.continue_token = Some(value.into_owned()),
                "labelSelector" => params.label_selector = value.into_owned(),
                "fieldSelector" => params.field_selector = value.into_owned(),
                "allowWatchBookmarks" => params.bookmarks = flag(&value),
                "sendInitialEvents" => params.send_initial_events = flag(&value),
                "resourceVersionMatch" => params.resource_version_match = Some(value.into_owned()),
                "fieldManager" => params.manager.name = Some(value.into_owned()),
                "force" => params.manager.force = flag(&value),
                "timeoutSeconds" => {
                    params.timeout = Some(Duration::from_secs(parse_number(&key, &value)?));
                }
                _ => {}
            }
        }
        Ok(params)
    }
}

fn parse_number(key: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {key} {value:?}")))
}

/// Which objects a LIST or WATCH selects.
struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn new(namespace: Option<String>, params: &Params) -> Result<Filter, ApiError> {
        Ok(Filter {
            namespace,
            labels: LabelSelector::parse(&params.label_selector)
                .map_err(|e| ApiError::bad_request(format!("invalid labelSelector: {e}")))?,
            fields: FieldSelector::parse(&params.field_selector)
                .map_err(|e| ApiError::bad_request(format!("invalid fieldSelector: {e}")))?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let namespace_matches = self.namespace.as_deref().is_none_or(|ns| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                == Some(ns)
        });
        namespace_matches && self.labels.matches(object) && self.fields.matches(object)
    }

    /// What a watch with this filter sees of an event: an object that starts matching is
    /// ADDED, one that stops matching is DELETED, as on a real server.
    fn translate(&self, event: &Event) -> Option<&'static str> {
        let now = self.matches(&event.object);
        match event.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = event.previous.as_deref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    method: Method,
    verb: Verb,
    params: Params,
    protobuf: bool,
    request: Request<Incoming>,
) -> Response<Body> {
    let (res, namespace, name) = match route {
        Route::Document(document) if method == Method::GET => return json_response(200, &document),
        Route::Text(text) if method == Method::GET => {
            return full(200, "text/plain; charset=utf-8", text);
        }
        Route::Resource {
            res,
            namespace,
            name,
        } => (res, namespace, name),
        Route::NotFound => {
            return error(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        _ => {
            return error(&ApiError::new(
                405,
                "MethodNotAllowed",
                "method not allowed",
            ));
        }
    };
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return error(&ApiError::bad_request("could not read the request body")),
            }
        }
        _ => Bytes::new(),
    };
    let result = match (verb, name) {
        (Verb::Watch, _) => return watch(shared, res, namespace, params, protobuf),
        (Verb::List, _) => return list(shared, res, namespace, &params, protobuf),
        (Verb::Get, Some(name)) => {
            let store = lock(&shared.store);
            store
                .get(res, namespace.as_deref().unwrap_or_default(), &name)
                .map(|o| (200, o))
                .ok_or_else(|| ApiError::not_found(res, &name))
        }
        (Verb::Create, None) => parse_body(&body).and_then(|object| {
            let mut store = lock(&shared.store);
            store
                .write(res, namespace.as_deref(), None, object, WriteMode::Create)
                .map(|(o, _)| (201, o))
        }),
        (Verb::Update, Some(name)) => parse_body(&body).and_then(|object| {
            let mut store = lock(&shared.store);
            store
                .write(
                    res,
                    namespace.as_deref(),
                    Some(&name),
                    object,
                    WriteMode::Update,
                )
                .map(|(o, _)| (200, o))
        }),
        (Verb::Patch, Some(name)) => patch_type(&content_type).and_then(|patch_type| {
            let patch = parse_body(&body)?;
            let mut store = lock(&shared.store);
            store
                .patch(
                    res,
                    namespace.as_deref().unwrap_or_default(),
                    &name,
                    patch,
                    patch_type,
                    &params.manager,
                )
                .map(|(o, created)| (if created { 201 } else { 200 }, o))
        }),
        (Verb::Delete, Some(name)) => {
            // DeleteOptions may carry a resourceVersion precondition.
            let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let expected = options
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str);
            let mut store = lock(&shared.store);
            store
                .delete(
                    res,
                    namespace.as_deref().unwrap_or_default(),
                    &name,
                    expected,
                )
                .map(|o| (200, o))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok((status, object)) => json_response(status, &object),
        Err(e) => error(&e),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the double only accepts JSON bodies: {e}")))
}

fn patch_type(content_type: &str) -> Result<PatchType, ApiError> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        // kube sends apply patches as JSON, which is YAML too.
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the double does not support patch content type {other:?}"),
        )),
    }
}

fn list(
    shared: &Shared,
    res: &'static ResourceType,
    namespace: Option<String>,
    params: &Params,
    protobuf: bool,
) -> Response<Body> {
    let filter = match Filter::new(namespace.clone(), params) {
        Ok(filter) => filter,
        Err(e) => return error(&e),
    };
    // resourceVersion is accepted in every form (unset: a consistent read; "0": from the
    // cache; a number with resourceVersionMatch): the double always has the latest state,
    // which satisfies each of them.
    let page = lock(&shared.store).list(
        res,
        namespace.as_deref(),
        |o| filter.matches(o),
        params.limit,
        params.continue_token.as_deref(),
    );
    let page = match page {
        Ok(page) => page,
        Err(e) => return error(&e),
    };
    if let Some(codec) = protobuf.then(|| Codec::of(res.plural)).flatten() {
        // The double's pages are for kubectl; protobuf clients list whole (rv=0, no limit).
        return match codec.list(page.rv, &page.items) {
            Ok(out) => {
                shared.count_bytes(res.plural, out.len());
                full(200, protobuf::CONTENT_TYPE, out)
            }
            Err(e) => error(&ApiError::new(500, "InternalError", e)),
        };
    }
    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    // Written by hand so that 10k items are serialized once, straight from the store's Arcs.
    let mut out = Vec::with_capacity(256 + page.items.len() * 1024);
    out.extend_from_slice(b"{\"kind\":");
    push_json(&mut out, &json!(res.list_kind()));
    out.extend_from_slice(b",\"apiVersion\":");
    push_json(&mut out, &json!(res.api_version()));
    out.extend_from_slice(b",\"metadata\":");
    push_json(&mut out, &metadata);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json(&mut out, item);
    }
    out.extend_from_slice(b"]}");
    shared.count_bytes(res.plural, out.len());
    full(200, "application/json", out)
}

fn push_json(out: &mut Vec<u8>, value: &Value) {
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Where a watch starts.
enum Since {
    /// Unset or "0": the current state as ADDED events, then every change.
    Now,
    /// Every change after this resourceVersion.
    Version(u64),
}

fn watch(
    shared: &Arc<Shared>,
    res: &'static ResourceType,
    namespace: Option<String>,
    params: Params,
    protobuf: bool,
) -> Response<Body> {
    if !shared.config.streaming_lists
        && (params.send_initial_events || params.resource_version_match.is_some())
    {
        // A server without the WatchList feature (or older than 1.27) rejects both.
        return error(&ApiError::new(
            422,
            "Invalid",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the \
             WatchList feature gate is enabled",
        ));
    }
    let filter = match Filter::new(namespace, &params) {
        Ok(filter) => filter,
        Err(e) => return error(&e),
    };
    let since = match params.resource_version.as_deref() {
        None | Some("" | "0") => Since::Now,
        Some(rv) => match rv.parse() {
            Ok(rv) => Since::Version(rv),
            Err(_) => {
                return error(&ApiError::bad_request(format!(
                    "invalid resourceVersion {rv:?}"
                )));
            }
        },
    };
    let since = if params.send_initial_events {
        Since::Now
    } else {
        since
    };
    let codec = protobuf.then(|| Codec::of(res.plural)).flatten();
    let (tx, rx) = mpsc::channel(8);
    let stream = WatchStream {
        codec,
        shared: shared.clone(),
        res,
        filter,
        bookmarks: params.bookmarks,
        initial_events_end: params.send_initial_events && !shared.config.initial_events_end_never,
        deadline: params.timeout.map(|t| Instant::now() + t),
        closes: shared.closes.subscribe(),
        tx,
    };
    *lock(&shared.open_watches).entry(res.plural).or_default() += 1;
    tokio::spawn(stream.run(since));
    let mut response = Response::new(WatchBody { rx }.boxed());
    let content_type = if codec.is_some() {
        protobuf::WATCH_CONTENT_TYPE
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// One open watch: replays the kind's history from its cursor, then follows new events.
struct WatchStream {
    /// Set when the client asked for protobuf and the kind has an encoding.
    codec: Option<Codec>,
    shared: Arc<Shared>,
    res: &'static ResourceType,
    filter: Filter,
    bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial state with the `k8s.io/initial-events-end`
    /// bookmark that kube's streaming list waits for.
    initial_events_end: bool,
    deadline: Option<Instant>,
    closes: tokio::sync::watch::Receiver<u64>,
    tx: mpsc::Sender<Bytes>,
}

impl WatchStream {
    async fn run(mut self, since: Since) {
        self.follow(since).await;
        let mut open = lock(&self.shared.open_watches);
        if let Some(count) = open.get_mut(self.res.plural) {
            *count = count.saturating_sub(1);
        }
    }

    async fn follow(&mut self, since: Since) {
        let start = {
            let store = lock(&self.shared.store);
            let changed = store.subscribe(self.res);
            match since {
                Since::Now => Ok((
                    changed,
                    store.objects(self.res, self.filter.namespace.as_deref()),
                    store.resource_version(),
                )),
                // Checks that the history still reaches back to `rv`.
                Since::Version(rv) => store
                    .events_after(self.res, rv, 0)
                    .map(|_| (changed, Vec::new(), rv)),
            }
        };
        let (mut changed, initial, mut cursor) = match start {
            Ok(start) => start,
            Err(e) => {
                let _ = self.tx.send(self.error_event(&e)).await;
                return;
            }
        };
        let mut chunk = Vec::new();
        for object in &initial {
            if !self.filter.matches(object) {
                continue;
            }
            self.push_event(&mut chunk, "ADDED", object);
            if chunk.len() >= WATCH_CHUNK_BYTES && !self.send(&mut chunk).await {
                return;
            }
        }
        if self.initial_events_end && self.bookmarks {
            self.push_bookmark(&mut chunk, cursor, true);
        }
        if !self.send(&mut chunk).await {
            return;
        }

        let interval = self.shared.config.bookmark_interval;
        let mut bookmark = tokio::time::interval_at(Instant::now() + interval, interval);
        bookmark.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let deadline = self.deadline;
        let timeout = async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        loop {
            changed.borrow_and_update();
            let events = lock(&self.shared.store).events_after(self.res, cursor, WATCH_BATCH);
            let events = match events {
                Ok(events) => events,
                Err(e) => {
                    // Fell behind the bounded history: the client must re-list.
                    let _ = self.tx.send(self.error_event(&e)).await;
                    return;
                }
            };
            let full_batch = events.len() == WATCH_BATCH;
            for event in &events {
                cursor = event.rv;
                if let Some(kind) = self.filter.translate(event) {
                    self.push_event(&mut chunk, kind, &event.object);
                    if chunk.len() >= WATCH_CHUNK_BYTES && !self.send(&mut chunk).await {
                        return;
                    }
                }
            }
            if !self.send(&mut chunk).await {
                return;
            }
            if full_batch {
                continue;
            }
            tokio::select! {
                _ = self.closes.changed() => return,
                () = self.tx.closed() => return,
                () = &mut timeout => return,
                result = changed.changed() => if result.is_err() { return },
                _ = bookmark.tick(), if self.bookmarks => {
                    self.push_bookmark(&mut chunk, cursor, false);
                    if !self.send(&mut chunk).await {
                        return;
                    }
                }
            }
        }
    }

    /// A BOOKMARK carries only kind, apiVersion and the resourceVersion the client may resume
    /// from: the last event of this kind the watch has passed (not the global counter, so
    /// that a `compact()` reliably expires every open watch's position).
    fn push_bookmark(&self, chunk: &mut Vec<u8>, rv: u64, initial_events_end: bool) {
        if let Some(codec) = &self.codec {
            codec.push_bookmark(chunk, rv, initial_events_end);
            return;
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.res.kind,
            "apiVersion": self.res.api_version(),
            "metadata": metadata,
        });
        push_event(chunk, "BOOKMARK", &object);
    }

    fn push_event(&self, out: &mut Vec<u8>, kind: &str, object: &Value) {
        match &self.codec {
            Some(codec) => {
                if let Err(e) = codec.push_event(out, kind, object) {
                    // A test stored an object that is not of its kind: say so on the stream.
                    protobuf::push_error(out, 500, "InternalError", &e);
                }
            }
            None => push_event(out, kind, object),
        }
    }

    fn error_event(&self, e: &ApiError) -> Bytes {
        match &self.codec {
            Some(_) => {
                let mut out = Vec::new();
                protobuf::push_error(&mut out, e.code, e.reason, &e.message);
                Bytes::from(out)
            }
            None => error_event(e),
        }
    }

    /// Sends and clears the chunk; false when the client has gone or the watch was cut.
    async fn send(&mut self, chunk: &mut Vec<u8>) -> bool {
        if chunk.is_empty() {
            return true;
        }
        self.shared.count_bytes(self.res.plural, chunk.len());
        let bytes = Bytes::from(std::mem::take(chunk));
        tokio::select! {
            sent = self.tx.send(bytes) => sent.is_ok(),
            _ = self.closes.changed() => false,
        }
    }
}

fn push_event(out: &mut Vec<u8>, kind: &str, object: &Value) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    push_json(out, object);
    out.extend_from_slice(b"}\n");
}

fn error_event(e: &ApiError) -> Bytes {
    let mut out = Vec::new();
    push_event(&mut out, "ERROR", &e.status());
    Bytes::from(out)
}

/// A chunked response body fed by a watch task; ends when the task drops its sender.
struct WatchBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

fn full(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut out = Vec::new();
    push_json(&mut out, value);
    full(status, "application/json", out)
}

fn error(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}
