//! The real Prometheus, as the reference: a remote-write receiver to check that what promshard
//! sends is accepted and queryable, and an agent to compare promshard's output against.
//!
//! Uses the system binary (Debian's `prometheus` package; `$PROMETHEUS_BIN` overrides) on a free
//! loopback port with its data in a temporary directory. Prometheus cannot report the port it
//! bound, so the port is picked beforehand and a start that lost the port to someone else is
//! retried on another one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::eventually::eventually;
use crate::launcher::{free_loopback_port, log_path, log_tail};
use crate::receiver::Labels;

/// How long Prometheus may take to answer 200 on `/-/ready`.
pub const READY_DEADLINE: Duration = Duration::from_secs(60);

/// How Prometheus runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A normal server with a TSDB and a query API.
    Server,
    /// `--enable-feature=agent`: scrapes and remote-writes, no TSDB, no queries.
    Agent,
}

/// A running Prometheus. Killed when dropped; its data directory is deleted.
pub struct PrometheusServer {
    child: Child,
    port: u16,
    mode: Mode,
    log_path: PathBuf,
    client: reqwest::Client,
    // Last, so the directory goes after the process has been told to die.
    dir: TempDir,
}

impl PrometheusServer {
    /// A server that scrapes nothing and accepts remote write on [`PrometheusServer::remote_write_url`].
    pub async fn start_receiver() -> PrometheusServer {
        PrometheusServer::start_server(
            "scrape_configs: []\n",
            &["--web.enable-remote-write-receiver"],
        )
        .await
    }

    /// A server with this `prometheus.yml` and extra command-line flags.
    pub async fn start_server(config_yaml: &str, extra_args: &[&str]) -> PrometheusServer {
        PrometheusServer::start(Mode::Server, config_yaml, extra_args).await
    }

    /// An agent with this `prometheus.yml` (for parity tests: the same scrape configs as
    /// promshard, `remote_write` to a [`crate::RecordingReceiver`]).
    pub async fn start_agent(config_yaml: &str) -> PrometheusServer {
        PrometheusServer::start(Mode::Agent, config_yaml, &[]).await
    }

    /// Starts Prometheus and waits until `/-/ready` answers 200 (at most [`READY_DEADLINE`]).
    pub async fn start(mode: Mode, config_yaml: &str, extra_args: &[&str]) -> PrometheusServer {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut server = PrometheusServer::spawn(mode, config_yaml, extra_args);
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(log) if attempt < ATTEMPTS && log.contains("address already in use") => {
                    // Someone took the port between picking and binding it; pick another.
                    continue;
                }
                Err(_) => panic!(
                    "prometheus exited before it was ready\n{}",
                    log_tail("prometheus", &server.log_path)
                ),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(mode: Mode, config_yaml: &str, extra_args: &[&str]) -> PrometheusServer {
        let bin = prometheus_bin();
        let dir = tempfile::Builder::new()
            .prefix("promshard-prometheus-")
            .tempdir()
            .expect("creating a temporary directory for prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml).expect("writing prometheus.yml");
        let data = dir.path().join("data");
        let port = free_loopback_port();
        let log_path = log_path("prometheus");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_owned(),
        ];
        match mode {
            Mode::Server => args.push(format!("--storage.tsdb.path={}", data.display())),
            Mode::Agent => {
                args.push("--enable-feature=agent".to_owned());
                args.push(format!("--storage.agent.path={}", data.display()));
            }
        }
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        PrometheusServer {
            child,
            port,
            mode,
            log_path,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("building an HTTP client"),
            dir,
        }
    }

    /// `Ok` once ready; `Err(log)` if the process exited first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let url = format!("{}/-/ready", self.url());
        let client = self.client.clone();
        let child = &mut self.child;
        let exited = eventually(
            READY_DEADLINE,
            "prometheus to answer 200 on /-/ready",
            || {
                let exited = child.try_wait().ok().flatten();
                let (client, url) = (client.clone(), url.clone());
                async move {
                    if let Some(status) = exited {
                        return Ok(Some(status));
                    }
                    let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                    match response.status().as_u16() {
                        200 => Ok(None),
                        status => Err(format!("{url} answered {status}")),
                    }
                }
            },
        )
        .await;
        match exited {
            None => Ok(()),
            Some(_) => Err(std::fs::read_to_string(&self.log_path).unwrap_or_default()),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/api/v1/write` (needs [`PrometheusServer::start_receiver`]).
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, for reading its CPU time and memory from `/proc` (the benchmark).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What Prometheus logged so far.
    pub fn log_contents(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// An instant query now; panics on any error. A scalar result comes back as one entry
    /// with no labels.
    pub async fn query(&self, promql: &str) -> Vec<(Labels, f64)> {
        self.try_query(promql)
            .await
            .unwrap_or_else(|e| panic!("query {promql:?}: {e}"))
    }

    /// [`PrometheusServer::query`] for use inside [`crate::eventually`].
    pub async fn try_query(&self, promql: &str) -> Result<Vec<(Labels, f64)>, String> {
        self.require_server("query")?;
        let data: QueryData = self.get("/api/v1/query", &[("query", promql)]).await?;
        match data {
            QueryData::Vector(samples) => samples
                .into_iter()
                .map(|s| Ok((s.metric, parse_value(&s.value.1)?)))
                .collect(),
            QueryData::Scalar((_, value)) => Ok(vec![(Labels::new(), parse_value(&value)?)]),
            QueryData::Matrix(result) | QueryData::String(result) => Err(format!(
                "the result is not an instant vector or a scalar: {result}"
            )),
        }
    }

    /// The raw samples of every series matching `selector` over the last `range` (a range
    /// vector selector in an instant query): (labels, [(ms, value)]) in timestamp order.
    pub async fn raw_samples(
        &self,
        selector: &str,
        range: Duration,
    ) -> Result<Vec<(Labels, Vec<(i64, f64)>)>, String> {
        self.require_server("query")?;
        let promql = format!("{selector}[{}s]", range.as_secs().max(1));
        let data: QueryData = self.get("/api/v1/query", &[("query", &promql)]).await?;
        let QueryData::Matrix(result) = data else {
            return Err(format!("{promql:?} did not return a range vector"));
        };
        #[derive(Deserialize)]
        struct Series {
            metric: Labels,
            values: Vec<(f64, String)>,
        }
        let series: Vec<Series> = serde_json::from_value(result).map_err(|e| e.to_string())?;
        series
            .into_iter()
            .map(|s| {
                let values = s
                    .values
                    .into_iter()
                    .map(|(t, v)| Ok(((t * 1000.0).round() as i64, parse_value(&v)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok((s.metric, values))
            })
            .collect()
    }

    /// The value of one series on this server's own `/metrics` page, by its exact text as
    /// exposed (e.g. `prometheus_http_requests_total{code="400",handler="/api/v1/write"}`); 0
    /// when absent.
    pub async fn self_metric(&self, series: &str) -> Result<f64, String> {
        crate::cluster::metric(&self.url(), series).await
    }

    /// Label sets of the series matching a selector (e.g. `{job="a"}`), over all time; panics
    /// on any error.
    pub async fn series(&self, matcher: &str) -> Vec<Labels> {
        self.try_series(matcher)
            .await
            .unwrap_or_else(|e| panic!("series {matcher:?}: {e}"))
    }

    pub async fn try_series(&self, matcher: &str) -> Result<Vec<Labels>, String> {
        self.require_server("series")?;
        self.get("/api/v1/series", &[("match[]", matcher)]).await
    }

    fn require_server(&self, what: &str) -> Result<(), String> {
        match self.mode {
            Mode::Server => Ok(()),
            Mode::Agent => Err(format!("prometheus in agent mode has no {what} API")),
        }
    }

    /// GETs a Prometheus API path and unwraps the `{"status":"success","data":...}` envelope.
    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<T, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url()), params)
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let envelope: Envelope<T> = serde_json::from_str(&text)
            .map_err(|e| format!("{path} answered {status} with {text:?}: {e}"))?;
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(format!(
                "{path} answered {status}: {}: {}",
                envelope.error_type.unwrap_or_default(),
                envelope.error.unwrap_or_default()
            )),
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", log_tail("prometheus", &self.log_path));
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(serde_json::Value),
    String(serde_json::Value),
}

#[derive(Deserialize)]
struct VectorSample {
    metric: Labels,
    value: (f64, String),
}

/// Prometheus renders values as Go floats: `1`, `1e+06`, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|e| format!("value {text:?} is not a float: {e}"))
}

/// `$PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn prometheus_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    });
    match on_path {
        Some(path) => path,
        None => panic!(
            "the prometheus binary is not on PATH: install the Debian package prometheus \
             (the test script does this)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::labels;
    use promshard_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;

    #[test]
    fn parses_go_floats() {
        assert_eq!(parse_value("1e+06"), Ok(1e6));
        assert_eq!(parse_value("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_value("NaN").unwrap().is_nan());
    }

    /// Exercises the real prometheus binary: what we remote-write comes back from a query.
    #[tokio::test]
    async fn receiver_accepts_remote_write_and_answers_queries() {
        let prometheus = PrometheusServer::start_receiver().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let label = |name: &str, value: &str| Label {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    label("__name__", "harness_test_value"),
                    label("instance", "a:1"),
                    label("job", "harness"),
                ],
                samples: vec![Sample {
                    value: 42.5,
                    timestamp: now,
                }],
                exemplars: Vec::new(),
                histograms: Vec::new(),
            }],
            metadata: Vec::new(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let response = reqwest::Client::new()
            .post(prometheus.remote_write_url())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", "promshard-test/0")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());

        let expected = labels(&[
            ("__name__", "harness_test_value"),
            ("instance", "a:1"),
            ("job", "harness"),
        ]);
        assert_eq!(
            prometheus.query("harness_test_value").await,
            vec![(expected.clone(), 42.5)]
        );
        assert_eq!(
            prometheus.query("sum(harness_test_value) * 2").await,
            vec![(Labels::new(), 85.0)]
        );
        assert_eq!(
            prometheus.query("scalar(vector(3))").await,
            vec![(Labels::new(), 3.0)]
        );
        assert_eq!(prometheus.series("{job=\"harness\"}").await, vec![expected]);
        assert!(
            prometheus
                .try_query("sum(")
                .await
                .unwrap_err()
                .contains("bad_data"),
        );
    }

    /// The agent scrapes a simulated target and remote-writes to the recording receiver.
    #[tokio::test]
    async fn agent_scrapes_and_remote_writes() {
        let simulator = crate::TargetSimulator::start(1).await;
        let receiver = crate::RecordingReceiver::start().await;
        let config = format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: sim\n    static_configs:\n      - targets: ['{}']\n\
             remote_write:\n  - url: {}\n    queue_config:\n      batch_send_deadline: 1s\n",
            simulator.addresses()[0],
            receiver.url()
        );
        let agent = PrometheusServer::start_agent(&config).await;
        assert!(
            agent
                .try_query("up")
                .await
                .unwrap_err()
                .contains("agent mode")
        );
        let instance = simulator.addresses()[0].clone();
        let found = eventually(
            Duration::from_secs(30),
            "the agent's samples to arrive",
            || {
                let found = receiver.find(
                    "sim_requests_total",
                    &[
                        ("path", "/a"),
                        ("job", "sim"),
                        ("instance", instance.as_str()),
                    ],
                );
                async move {
                    if found.is_empty() {
                        Err("no sim_requests_total{path=\"/a\"} yet".into())
                    } else {
                        Ok(found)
                    }
                }
            },
        )
        .await;
        assert_eq!(found.len(), 1);
        assert!(
            found[0].1.iter().all(|&(_, value)| value == 100.0),
            "{found:?}"
        );
        // Prometheus itself is a conforming sender.
        receiver.assert_no_violations();
        let scrape = simulator.target(0).last_scrape().unwrap();
        assert!(
            scrape
                .header("accept")
                .unwrap()
                .contains("text/plain;version=0.0.4")
        );
        assert!(
            scrape
                .header("user-agent")
                .unwrap()
                .starts_with("Prometheus/")
        );
        assert!(
            scrape
                .header("x-prometheus-scrape-timeout-seconds")
                .is_some()
        );
        drop(agent);
    }
}
