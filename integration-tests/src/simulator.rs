//! Simulated scrape targets: many `/metrics` endpoints whose answers tests control.
//!
//! Each target has its own listener on `127.0.0.1:<port>`, so each is a distinct `instance` the
//! way separate pods are. A test can change what a target answers (body, status, content type,
//! delay), take it down (connection refused, open connections cut) and bring it back on the same
//! port, and read back every scrape request it received (time, path, query, headers) to check
//! what the scraper sent and how often. One accept task per target keeps thousands cheap.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::HeaderMap;

use crate::server::{Handler, Server, lock, response};

/// Content type of the Prometheus text format 0.0.4, what the default body is.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Requests kept per target; older ones are forgotten (but still counted), so a long demo with
/// thousands of targets does not grow without bound.
pub const MAX_RECORDED_SCRAPES: usize = 1000;

/// The default body of target `index`: deterministic values derived from the index, so tests
/// can assert exact samples.
///
/// ```text
/// sim_requests_total{path="/a"} 100*(index+1)
/// sim_requests_total{path="/b"} index
/// sim_temperature_celsius{sensor="s1"} 20 + index/2
/// sim_target_info{index="<index>"} 1
/// ```
pub fn default_body(index: usize) -> String {
    format!(
        "# HELP sim_requests_total Requests handled by the simulated target.\n\
         # TYPE sim_requests_total counter\n\
         sim_requests_total{{path=\"/a\"}} {a}\n\
         sim_requests_total{{path=\"/b\"}} {index}\n\
         # HELP sim_temperature_celsius Temperature reported by the simulated sensor.\n\
         # TYPE sim_temperature_celsius gauge\n\
         sim_temperature_celsius{{sensor=\"s1\"}} {t}\n\
         # HELP sim_target_info Which simulated target this is.\n\
         # TYPE sim_target_info gauge\n\
         sim_target_info{{index=\"{index}\"}} 1\n",
        a = 100 * (index + 1),
        t = 20.0 + index as f64 / 2.0,
    )
}

/// A set of simulated targets.
pub struct TargetSimulator {
    targets: Vec<SimTarget>,
}

impl TargetSimulator {
    /// Starts `n` targets with [`default_body`]; target `i` serves `default_body(i)`.
    pub async fn start(n: usize) -> TargetSimulator {
        let mut simulator = TargetSimulator {
            targets: Vec::with_capacity(n),
        };
        for _ in 0..n {
            simulator.add_target().await;
        }
        simulator
    }

    /// Starts one more target (index `len()` before the call) and returns it.
    pub async fn add_target(&mut self) -> &SimTarget {
        let index = self.targets.len();
        self.targets.push(SimTarget::start(index).await);
        &self.targets[index]
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Target `index`; panics if there is none.
    pub fn target(&self, index: usize) -> &SimTarget {
        &self.targets[index]
    }

    pub fn targets(&self) -> &[SimTarget] {
        &self.targets
    }

    /// `127.0.0.1:PORT` of every target, in index order: what goes into `static_configs`.
    pub fn addresses(&self) -> Vec<String> {
        self.targets.iter().map(SimTarget::address).collect()
    }

    /// Scrapes received by all targets together.
    pub fn total_scrapes(&self) -> u64 {
        self.targets.iter().map(SimTarget::scrape_count).sum()
    }
}

/// One scrape request as the target saw it.
#[derive(Clone, Debug)]
pub struct ScrapeRequest {
    /// When the request arrived (wall clock, comparable with sample timestamps).
    pub at: SystemTime,
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    /// The status the target answered with (404 for a path other than the metrics path).
    pub status: u16,
}

impl ScrapeRequest {
    /// A header's value, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// [`ScrapeRequest::at`] in milliseconds since the Unix epoch, like sample timestamps.
    pub fn at_millis(&self) -> i64 {
        self.at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// What produces a target's body.
#[derive(Clone)]
enum Body {
    Fixed(Bytes),
    /// Called with the 1-based number of the scrape, for values that change over time.
    Generated(Arc<dyn Fn(u64) -> String + Send + Sync>),
}

#[derive(Clone)]
struct Behaviour {
    body: Body,
    status: u16,
    content_type: String,
    delay: Duration,
    metrics_path: String,
}

struct TargetState {
    index: usize,
    behaviour: Mutex<Behaviour>,
    scrapes: Mutex<VecDeque<ScrapeRequest>>,
    scrape_count: AtomicU64,
}

/// One simulated target. Cheap to clone; clones control the same target.
#[derive(Clone)]
pub struct SimTarget {
    state: Arc<TargetState>,
    server: Arc<Server>,
}

impl SimTarget {
    async fn start(index: usize) -> SimTarget {
        let state = Arc::new(TargetState {
            index,
            behaviour: Mutex::new(Behaviour {
                body: Body::Fixed(default_body(index).into()),
                status: 200,
                content_type: TEXT_CONTENT_TYPE.to_owned(),
                delay: Duration::ZERO,
                metrics_path: "/metrics".to_owned(),
            }),
            scrapes: Mutex::new(VecDeque::new()),
            scrape_count: AtomicU64::new(0),
        });
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |request, peer| {
            let state = handler_state.clone();
            Box::pin(async move { state.answer(request, peer).await })
        });
        let server = Server::bind(([127, 0, 0, 1], 0).into(), handler)
            .await
            .expect("binding a simulated target on 127.0.0.1:0");
        SimTarget {
            state,
            server: Arc::new(server),
        }
    }

    pub fn index(&self) -> usize {
        self.state.index
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `127.0.0.1:PORT`, the target's `__address__`.
    pub fn address(&self) -> String {
        self.addr().to_string()
    }

    /// `http://127.0.0.1:PORT/metrics` (or the path set with [`SimTarget::set_metrics_path`]).
    pub fn url(&self) -> String {
        format!(
            "http://{}{}",
            self.addr(),
            lock(&self.state.behaviour).metrics_path
        )
    }

    /// Serves this body from now on.
    pub fn set_body(&self, body: impl Into<String>) {
        lock(&self.state.behaviour).body = Body::Fixed(body.into().into());
    }

    /// Serves these bytes from now on; clones share them, so a farm of targets serving one
    /// multi-megabyte fixture holds it once (the benchmark's farm).
    pub fn set_body_bytes(&self, body: Bytes) {
        lock(&self.state.behaviour).body = Body::Fixed(body);
    }

    /// Serves `f(n)` for the n-th scrape (1-based), e.g. a counter that grows per scrape.
    pub fn set_body_fn(&self, f: impl Fn(u64) -> String + Send + Sync + 'static) {
        lock(&self.state.behaviour).body = Body::Generated(Arc::new(f));
    }

    /// Answers with this status (the body is still sent).
    pub fn set_status(&self, status: u16) {
        lock(&self.state.behaviour).status = status;
    }

    pub fn set_content_type(&self, content_type: &str) {
        lock(&self.state.behaviour).content_type = content_type.to_owned();
    }

    /// Waits this long before answering each scrape (scrape timeout tests).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state.behaviour).delay = delay;
    }

    /// Serves the body on this path only (default `/metrics`); other paths get 404.
    pub fn set_metrics_path(&self, path: &str) {
        lock(&self.state.behaviour).metrics_path = path.to_owned();
    }

    /// Stops listening and cuts open connections: from the return on, scrapes fail with
    /// "connection refused", as for a crashed process.
    pub async fn set_down(&self) {
        self.server.stop().await;
    }

    /// Listens again on the same port. Panics if another process took the port meanwhile.
    pub async fn set_up(&self) {
        if let Err(e) = self.server.start().await {
            panic!(
                "simulated target {} cannot listen on {} again: {e}",
                self.index(),
                self.addr()
            );
        }
    }

    pub fn is_down(&self) -> bool {
        !self.server.is_running()
    }

    /// Scrape requests received, oldest first (at most [`MAX_RECORDED_SCRAPES`], the newest).
    pub fn scrapes(&self) -> Vec<ScrapeRequest> {
        lock(&self.state.scrapes).iter().cloned().collect()
    }

    pub fn last_scrape(&self) -> Option<ScrapeRequest> {
        lock(&self.state.scrapes).back().cloned()
    }

    /// Requests received since start, including forgotten ones and ones for other paths.
    pub fn scrape_count(&self) -> u64 {
        self.state.scrape_count.load(Ordering::SeqCst)
    }

    /// Forgets recorded requests (the count stays).
    pub fn clear_scrapes(&self) {
        lock(&self.state.scrapes).clear();
    }
}

impl TargetState {
    async fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<http_body_util::Full<Bytes>> {
        let n = self.scrape_count.fetch_add(1, Ordering::SeqCst) + 1;
        let behaviour = lock(&self.behaviour).clone();
        let on_path = request.uri().path() == behaviour.metrics_path;
        let status = if on_path { behaviour.status } else { 404 };
        let record = ScrapeRequest {
            at: SystemTime::now(),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            headers: request.headers().clone(),
            peer,
            status,
        };
        {
            let mut scrapes = lock(&self.scrapes);
            if scrapes.len() == MAX_RECORDED_SCRAPES {
                scrapes.pop_front();
            }
            scrapes.push_back(record);
        }
        if !behaviour.delay.is_zero() {
            tokio::time::sleep(behaviour.delay).await;
        }
        if !on_path {
            return response(404, "text/plain", "not the metrics path\n");
        }
        let body = match behaviour.body {
            Body::Fixed(bytes) => bytes,
            Body::Generated(f) => f(n).into(),
        };
        response(status, &behaviour.content_type, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn serves_default_bodies_on_distinct_addresses() {
        let sim = TargetSimulator::start(3).await;
        let addresses = sim.addresses();
        assert_eq!(addresses.len(), 3);
        assert_eq!(
            addresses
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3
        );
        for (i, address) in addresses.iter().enumerate() {
            assert!(address.starts_with("127.0.0.1:"), "{address}");
            let response = client()
                .get(format!("http://{address}/metrics"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], TEXT_CONTENT_TYPE);
            assert_eq!(response.text().await.unwrap(), default_body(i));
        }
        assert!(default_body(2).contains("sim_requests_total{path=\"/a\"} 300\n"));
        assert!(default_body(3).contains("sim_temperature_celsius{sensor=\"s1\"} 21.5\n"));
        assert_eq!(sim.total_scrapes(), 3);
    }

    #[tokio::test]
    async fn serves_what_is_set_and_records_requests() {
        let sim = TargetSimulator::start(1).await;
        let target = sim.target(0);
        target.set_body("up_metric 1\n");
        target.set_status(503);
        target.set_content_type("application/openmetrics-text; version=1.0.0");
        let accept =
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4";
        let response = client()
            .get(format!("{}?module=a&x=1", target.url()))
            .header("accept", accept)
            .header("x-prometheus-scrape-timeout-seconds", "10")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0"
        );
        assert_eq!(response.text().await.unwrap(), "up_metric 1\n");

        let scrape = target.last_scrape().unwrap();
        assert_eq!(scrape.method, "GET");
        assert_eq!(scrape.path, "/metrics");
        assert_eq!(scrape.query.as_deref(), Some("module=a&x=1"));
        assert_eq!(scrape.header("Accept"), Some(accept));
        assert_eq!(
            scrape.header("X-Prometheus-Scrape-Timeout-Seconds"),
            Some("10")
        );
        assert_eq!(scrape.status, 503);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now - scrape.at_millis()).abs() < 10_000);

        // Another path is recorded but not served.
        let response = client()
            .get(format!("http://{}/other", target.address()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(target.scrape_count(), 2);
        let paths: Vec<_> = target.scrapes().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["/metrics", "/other"]);
        target.clear_scrapes();
        assert!(target.scrapes().is_empty());
        assert_eq!(target.scrape_count(), 2);
    }

    #[tokio::test]
    async fn generated_bodies_see_the_scrape_number() {
        let sim = TargetSimulator::start(1).await;
        let target = sim.target(0);
        target.set_body_fn(|n| format!("c_total {}\n", n * 10));
        for expected in ["c_total 10\n", "c_total 20\n"] {
            let body = client()
                .get(target.url())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, expected);
        }
    }

    #[tokio::test]
    async fn down_refuses_connections_and_up_restores_the_same_port() {
        let sim = TargetSimulator::start(1).await;
        let target = sim.target(0);
        // A keep-alive client, so "down" must also cut the open connection.
        let client = client();
        assert_eq!(client.get(target.url()).send().await.unwrap().status(), 200);

        target.set_down().await;
        assert!(target.is_down());
        let error = client.get(target.url()).send().await.unwrap_err();
        assert!(error.is_connect() || error.is_request(), "{error:?}");
        let refused = tokio::net::TcpStream::connect(target.addr())
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        target.set_up().await;
        assert!(!target.is_down());
        let body = client
            .get(target.url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, default_body(0));
    }

    /// Many targets are cheap: each is one listener and one task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_targets_each_serve_their_own_body() {
        let started = std::time::Instant::now();
        let sim = TargetSimulator::start(1000).await;
        let start_time = started.elapsed();
        let client = client();
        let mut bodies = Vec::new();
        for target in sim.targets() {
            bodies.push(
                client
                    .get(target.url())
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        let expected: Vec<String> = (0..1000).map(default_body).collect();
        assert!(bodies == expected);
        assert_eq!(sim.total_scrapes(), 1000);
        eprintln!(
            "started 1000 targets in {start_time:?}, scraped them in {:?}",
            started.elapsed() - start_time
        );
    }

    #[tokio::test]
    async fn delay_holds_the_answer() {
        let sim = TargetSimulator::start(1).await;
        let target = sim.target(0);
        target.set_delay(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let response = client().get(target.url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
