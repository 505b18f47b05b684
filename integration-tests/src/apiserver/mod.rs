//! A Kubernetes API server double that speaks the real wire protocol, JSON and (for the
//! built-in kinds discovery watches, when a client's `Accept` asks for it) protobuf, for the
//! master's watches, kube-rs (leader election) and `kubectl`.
//!
//! It serves core/v1 pods, services, endpoints, nodes and namespaces,
//! discovery.k8s.io/v1 endpointslices, networking.k8s.io/v1 ingresses and
//! coordination.k8s.io/v1 leases, monitoring.coreos.com ServiceMonitors, PodMonitors, Probes
//! (v1) and ScrapeConfigs (v1alpha1), and stores the other kinds the Helm chart installs (secrets,
//! configmaps, serviceaccounts, networkpolicies, deployments, statefulsets,
//! poddisruptionbudgets, horizontalpodautoscalers, RBAC), so `helm` can render against it:
//! - LIST, cluster-wide (`/api/v1/pods`) or per namespace (`/api/v1/namespaces/ns/pods`),
//!   with `labelSelector`, `fieldSelector`, and `limit`/`continue` pagination that is
//!   consistent at the first page's resourceVersion;
//! - WATCH (`watch=true`) as a chunked stream of newline-delimited
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":...}` events, resuming after a
//!   `resourceVersion`, with periodic bookmarks (`allowWatchBookmarks=true`),
//!   `timeoutSeconds`, `sendInitialEvents=true`, and an ERROR event with a 410 `Expired`
//!   Status when the resourceVersion is older than the kept history, as a real server does;
//! - GET, POST (create), PUT (replace, 409 on a stale `metadata.resourceVersion`), PATCH
//!   (merge, strategic and apply patches, all applied as JSON merge patches; an apply that
//!   changes a field another `fieldManager` set is a 409 Conflict unless `force=true`, which is
//!   what keeps two Lease holders from both acquiring it) and DELETE of single objects;
//! - discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}[/{version}]`);
//! - protobuf (`application/vnd.kubernetes.protobuf`) LISTs and watch streams of pods, nodes,
//!   services, endpoints, endpointslices, ingresses and namespaces ([`Config::protobuf`]);
//! - streaming lists (`sendInitialEvents=true`), or their refusal with 422 as from a server
//!   without the WatchList feature ([`Config::streaming_lists`]);
//! - throttling: the next requests answered 429 with `Retry-After`
//!   ([`ApiServerDouble::throttle`]), as API Priority and Fairness does.
//!
//! Tests drive it in-process (`apply`, `delete`, `compact`, `close_watches`,
//! `set_unavailable`, `set_down`) and read back every request it received, by verb, resource
//! and user agent, to prove how much load a client puts on the API server.
//!
//! Objects are plain `serde_json::Value`s, so the harness does not share types (or bugs) with
//! the code under test; the protobuf encoding is the exception (see `protobuf.rs`).

mod http;
mod listener;
mod protobuf;
mod resources;
mod selector;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use self::listener::Listener;
use self::resources::ResourceType;
use self::store::{Store, WriteMode};
use crate::server::lock;

/// Settings of an [`ApiServerDouble`].
#[derive(Clone, Debug)]
pub struct Config {
    /// How often a watch that asked for bookmarks (`allowWatchBookmarks=true`) gets one.
    /// Real API servers send one about every minute; tests want them quickly.
    pub bookmark_interval: Duration,
    /// Events kept per kind for watches to resume from. A watch that falls further behind, or
    /// resumes from an older resourceVersion, gets 410 Gone. Events share their objects with
    /// the store, so this costs little beyond the object versions it keeps alive.
    pub history_limit: usize,
    /// Serve protobuf to clients that ask for it (built-in kinds); when false, JSON only, as
    /// for custom resources or behind a proxy that strips protobuf.
    pub protobuf: bool,
    /// Serve streaming lists (`sendInitialEvents=true`); when false, refuse them with 422 as
    /// an API server without the WatchList feature does.
    pub streaming_lists: bool,
    /// Accept `sendInitialEvents=true` but never end the initial events with the
    /// `k8s.io/initial-events-end` bookmark, as a server that ignores the parameter; for the
    /// client's defence against waiting for ever.
    pub initial_events_end_never: bool,
}

/// The bookmark interval of [`Config::default`].
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// The history limit of [`Config::default`]: enough for a 10k-pod create/update/delete cycle.
pub const DEFAULT_HISTORY_LIMIT: usize = 50_000;

impl Default for Config {
    fn default() -> Config {
        Config {
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            history_limit: DEFAULT_HISTORY_LIMIT,
            protobuf: true,
            streaming_lists: true,
            initial_events_end_never: false,
        }
    }
}

/// The API verb of a request, as the API server's audit log and RBAC name it. Discovery and
/// other non-resource requests (`/api`, `/version`) are `Get` with an empty resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    List,
    Watch,
    Get,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Get => "get",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request the double received (recorded when its response, or a watch's response
/// headers, went out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub verb: Verb,
    /// The plural resource (`pods`, `endpointslices`, `leases`); empty for non-resource paths.
    pub resource: String,
    /// The namespace in the path; `None` for cluster-wide requests.
    pub namespace: Option<String>,
    /// The object name in the path, for get, update, patch and delete.
    pub name: Option<String>,
    /// The `User-Agent` header; empty when there was none (kube 5 sends none by default).
    pub user_agent: String,
    /// The `Authorization` header; empty when there was none.
    pub authorization: String,
    /// The `Accept` header; empty when there was none.
    pub accept: String,
    pub path: String,
    /// The raw query string, e.g. `watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=12`.
    pub query: String,
    /// The HTTP status of the response (200 for a watch, whose errors come as events).
    pub status: u16,
    /// The response's `Content-Type` (`application/vnd.kubernetes.protobuf` when protobuf was
    /// served).
    pub content_type: String,
    /// When the response (or a watch's response headers) went out.
    pub at: std::time::Instant,
}

impl RequestRecord {
    /// A decoded query parameter, e.g. `param("resourceVersion") == Some("0".into())`.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

impl fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        write!(f, " -> {} (user agent {:?})", self.status, self.user_agent)
    }
}

/// State shared by the test API, the request handlers and the watch tasks.
struct Shared {
    store: Mutex<Store>,
    config: Config,
    addr: SocketAddr,
    requests: Mutex<Vec<RequestRecord>>,
    unavailable: AtomicBool,
    /// Bumped to end every open watch.
    closes: watch::Sender<u64>,
    open_watches: Mutex<HashMap<&'static str, usize>>,
    /// Resource requests still to answer 429, and their Retry-After.
    throttle: Mutex<(usize, Duration)>,
    /// LIST and watch body bytes sent per kind.
    bytes_sent: Mutex<HashMap<&'static str, u64>>,
}

impl Shared {
    /// The Retry-After to answer with if this request is to be throttled.
    fn take_throttle(&self) -> Option<Duration> {
        let mut t = lock(&self.throttle);
        if t.0 == 0 {
            return None;
        }
        t.0 -= 1;
        Some(t.1)
    }

    fn count_bytes(&self, plural: &'static str, n: usize) {
        *lock(&self.bytes_sent).entry(plural).or_default() += n as u64;
    }
}

/// A Kubernetes API server double on `127.0.0.1:<port>`. See the module documentation.
pub struct ApiServerDouble {
    shared: Arc<Shared>,
    listener: Listener,
}

impl ApiServerDouble {
    /// Starts a double with [`Config::default`] on a free loopback port.
    pub async fn start() -> ApiServerDouble {
        ApiServerDouble::start_with(Config::default()).await
    }

    /// Starts a double with the given settings on a free loopback port.
    ///
    /// Panics if no loopback port can be bound, which only happens on a broken machine.
    pub async fn start_with(config: Config) -> ApiServerDouble {
        // Bind first: discovery documents name the address.
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the API server double to 127.0.0.1:0: {e}"));
        let addr = socket
            .local_addr()
            .unwrap_or_else(|e| panic!("reading the API server double's address: {e}"));
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.history_limit)),
            config,
            addr,
            requests: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(false),
            closes: watch::Sender::new(0),
            open_watches: Mutex::new(HashMap::new()),
            throttle: Mutex::new((0, Duration::ZERO)),
            bytes_sent: Mutex::new(HashMap::new()),
        });
        let listener = Listener::serve(socket, shared.clone())
            .unwrap_or_else(|e| panic!("serving the API server double on {addr}: {e}"));
        ApiServerDouble { shared, listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `http://127.0.0.1:<port>`, what `kube::Config::new` and `kubectl --server` take.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A kubeconfig whose current context points at the double (namespace `default`, no
    /// credentials), for `--kubeconfig` and `KUBECONFIG`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: double\n  cluster:\n    server: {url}\n\
             contexts:\n\
             - name: double\n  context:\n    cluster: double\n    user: double\n    namespace: default\n\
             current-context: double\n\
             users:\n\
             - name: double\n  user: {{}}\n",
            url = self.url()
        )
    }

    /// Creates or replaces an object (an ADDED or MODIFIED event) and returns it as stored,
    /// with `metadata.resourceVersion`, `uid` and `creationTimestamp` filled in. The kind
    /// comes from `apiVersion` and `kind`; a namespaced object without a namespace goes to
    /// `default`. A `metadata.resourceVersion` in the object is ignored.
    ///
    /// Panics if the object is not one of the double's kinds or has no name: that is a bug in
    /// the test.
    pub fn apply(&self, object: Value) -> Value {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let res = resources::by_type(api_version, kind).unwrap_or_else(|| {
            panic!("the API server double does not serve apiVersion {api_version:?} kind {kind:?}")
        });
        let written = lock(&self.shared.store).write(res, None, None, object, WriteMode::Upsert);
        match written {
            Ok((object, _)) => (*object).clone(),
            Err(e) => panic!("the API server double rejected the object: {}", e.message),
        }
    }

    /// Deletes an object (a DELETED event) and returns it as deleted, or `None` if it did not
    /// exist. `kind` is any name of the kind (`Pod`, `pods`, `po`); `namespace` is ignored for
    /// cluster-scoped kinds (pass "").
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(kind);
        let deleted = lock(&self.shared.store).delete(res, namespace, name, None);
        deleted.ok().map(|object| (*object).clone())
    }

    /// One object as stored, or `None`.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(kind);
        let object = lock(&self.shared.store).get(res, namespace, name);
        object.map(|object| (*object).clone())
    }

    /// Every object of a kind, ordered by namespace and name.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let res = resource(kind);
        let objects = lock(&self.shared.store).objects(res, None);
        objects.iter().map(|object| (**object).clone()).collect()
    }

    /// The last resourceVersion handed out (every change of any kind increments it).
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// Forgets all event history, as an etcd compaction does: the next watch from any
    /// resourceVersion handed out so far (a resumed watch, a bookmark's, a LIST's) gets an
    /// ERROR event with a 410 `Expired` Status, and so do outstanding continue tokens.
    /// Open watches are not cut; pair with [`close_watches`](Self::close_watches) to force
    /// clients to resume now.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// Ends every open watch stream (cleanly, as after `timeoutSeconds` or an API server
    /// restart); clients resume from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared
            .closes
            .send_modify(|generation| *generation += 1);
    }

    /// While set, every request is answered 503 ServiceUnavailable (and still recorded);
    /// setting it also ends the open watches.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.unavailable.store(unavailable, Ordering::SeqCst);
        if unavailable {
            self.close_watches();
        }
    }

    /// Stops listening and cuts every connection: clients see connection refused, like an
    /// API server that is down. The stored objects are kept.
    pub async fn set_down(&self) {
        self.close_watches();
        self.listener.stop().await;
    }

    /// Listens again on the same port after [`set_down`](Self::set_down).
    ///
    /// Panics if another process took the port meanwhile.
    pub async fn set_up(&self) {
        let addr = self.addr();
        self.listener
            .start()
            .await
            .unwrap_or_else(|e| panic!("re-binding the API server double to {addr}: {e}"));
    }

    /// Watch streams of a kind currently open.
    pub fn open_watches(&self, kind: &str) -> usize {
        let res = resource(kind);
        lock(&self.shared.open_watches)
            .get(res.plural)
            .copied()
            .unwrap_or(0)
    }

    /// Answers the next `requests` resource requests (any verb and kind) with 429 Too Many
    /// Requests and `Retry-After: <retry_after in whole seconds>`.
    pub fn throttle(&self, requests: usize, retry_after: Duration) {
        *lock(&self.shared.throttle) = (requests, retry_after);
    }

    /// Bytes of LIST and watch bodies sent for a kind so far (any name of it).
    pub fn bytes_sent(&self, kind: &str) -> u64 {
        let res = resource(kind);
        lock(&self.shared.bytes_sent)
            .get(res.plural)
            .copied()
            .unwrap_or(0)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// The requests whose user agent starts with `prefix` (`""` matches requests without one).
    pub fn requests_from(&self, user_agent_prefix: &str) -> Vec<RequestRecord> {
        let requests = lock(&self.shared.requests);
        requests
            .iter()
            .filter(|r| r.user_agent.starts_with(user_agent_prefix))
            .cloned()
            .collect()
    }

    /// How many requests with this verb were made for a kind (any name of it: `pods`, `Pod`).
    pub fn count(&self, verb: Verb, kind: &str) -> usize {
        self.count_from("", verb, kind)
    }

    /// [`count`](Self::count) restricted to user agents starting with `user_agent_prefix`.
    pub fn count_from(&self, user_agent_prefix: &str, verb: Verb, kind: &str) -> usize {
        let plural = resources::by_name(kind).map_or(kind, |res| res.plural);
        let requests = lock(&self.shared.requests);
        requests
            .iter()
            .filter(|r| {
                r.verb == verb
                    && r.resource == plural
                    && r.user_agent.starts_with(user_agent_prefix)
            })
            .count()
    }

    /// Forgets the recorded requests, to count a later phase of a test on its own.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl fmt::Debug for ApiServerDouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServerDouble")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

/// A kind by any of its names; panics on a kind the double does not serve (a test bug).
fn resource(kind: &str) -> &'static ResourceType {
    resources::by_name(kind)
        .unwrap_or_else(|| panic!("the API server double does not serve kind {kind:?}"))
}
