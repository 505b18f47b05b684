//! One benchmark invocation: the target farm and the sink start once, then promshard (master +
//! one worker, real child processes), vmagent (when `--vmagent-bin` is given) and Prometheus in
//! agent mode run one after the other against them with the same scrape configuration, and each
//! is measured over the same window after the same warm-up. The sink is a single-node
//! VictoriaMetrics (`--victoria-metrics-bin`; samples delivered = its
//! `vm_rows_inserted_total{type="promremotewrite"}`), or the in-process null sink without one.
//!
//! The farm is the harness's [`TargetSimulator`]: one listener per target on `127.0.0.1`, each on
//! its own ephemeral port. Distinct ports give distinct `instance` labels (N real targets to both
//! scrapers, N keep-alive connections, N scrape loops), and need no extra loopback aliases or
//! privileges; all targets share one copy of the fixture bytes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::prometheus::PrometheusServer;
use promshard_integration_tests::simulator::TargetSimulator;

use crate::fixture::{Fixture, FixtureKind};
use crate::peers::{self, VictoriaMetrics};
use crate::procstat::{self, ProcSample};
use crate::sink::{NullSink, SinkCounts};

/// Series every scrape adds per target besides the body: `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
pub const REPORT_SERIES: usize = 5;

/// How long a system may take from start to the first sample at the sink.
const FIRST_SAMPLE_DEADLINE: Duration = Duration::from_secs(120);
/// Delivery is steady once a window of this length delivers 95–105 % of the expected rate...
const STEADY_WINDOW: Duration = Duration::from_secs(10);
/// ...or after this long in any case.
const STEADY_DEADLINE: Duration = Duration::from_secs(300);

/// What runs, and for how long.
#[derive(Clone, Debug)]
pub struct Options {
    pub targets: usize,
    pub interval: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub fixture: FixtureKind,
    pub systems: Vec<System>,
    pub promshard_bin: PathBuf,
    /// `queue_config.max_samples_per_send` for both; `None`: each system's own default
    /// (promshard 2,000 as Prometheus 3; Prometheus 2.42 500).
    pub max_samples_per_send: Option<u32>,
    /// vmagent, built from the VictoriaMetrics repository (never built here).
    pub vmagent_bin: Option<PathBuf>,
    /// A single-node victoria-metrics as the receiver (else the null sink).
    pub victoria_metrics_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    Promshard,
    Vmagent,
    Prometheus,
}

/// Where every system writes, counted where the data lands.
pub enum Sink {
    Null(NullSink),
    VictoriaMetrics(VictoriaMetrics),
}

impl Sink {
    pub fn url(&self) -> String {
        match self {
            Sink::Null(s) => s.url(),
            Sink::VictoriaMetrics(v) => v.write_url(),
        }
    }

    pub async fn counts(&self) -> SinkCounts {
        match self {
            Sink::Null(s) => s.counts(),
            Sink::VictoriaMetrics(v) => v.counts().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Sink::Null(_) => "the null sink".to_owned(),
            Sink::VictoriaMetrics(v) => format!("victoria-metrics (pid {:?})", v.pid()),
        }
    }
}

/// Figures of one system over the measurement window.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub system: System,
    pub window: Duration,
    pub active_series: usize,
    pub expected_samples_per_second: f64,
    pub sink: SinkCounts,
    pub scrapes: u64,
    /// Every process of the system (promshard: master + worker).
    pub total: Usage,
    /// The worker alone (promshard only).
    pub worker: Option<Usage>,
    pub pids: Vec<u32>,
    /// The system's own `prometheus_remote_storage_samples*` counters over the window (both
    /// expose Prometheus's names): what it says it sent, dropped, failed, retried.
    pub remote_storage: Vec<(String, f64)>,
}

/// CPU and memory of one process or a sum of processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPU time spent in the window.
    pub cpu: Duration,
    /// Mean `VmRSS` over the window, bytes.
    pub steady_rss: u64,
    /// `VmHWM` at the end (peak since start, warm-up included), bytes.
    pub peak_rss: u64,
}

impl Measurement {
    pub fn samples_per_second(&self) -> f64 {
        self.sink.samples as f64 / self.window.as_secs_f64()
    }

    /// CPU-seconds per million delivered samples.
    pub fn cpu_per_million(&self, usage: &Usage) -> f64 {
        if self.sink.samples == 0 {
            return f64::NAN;
        }
        usage.cpu.as_secs_f64() / (self.sink.samples as f64 / 1e6)
    }

    pub fn cores(&self, usage: &Usage) -> f64 {
        usage.cpu.as_secs_f64() / self.window.as_secs_f64()
    }

    pub fn steady_bytes_per_series(&self, usage: &Usage) -> f64 {
        usage.steady_rss as f64 / self.active_series as f64
    }

    pub fn peak_bytes_per_series(&self, usage: &Usage) -> f64 {
        usage.peak_rss as f64 / self.active_series as f64
    }
}

/// The scrape configuration both systems run: one static job listing every farm target.
pub fn prometheus_yml(
    targets: &[String],
    interval: Duration,
    sink_url: &str,
    max_samples_per_send: Option<u32>,
) -> String {
    let secs = prom_duration(interval);
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let queue = max_samples_per_send
        .map(|n| format!("    queue_config: {{max_samples_per_send: {n}}}\n"))
        .unwrap_or_default();
    format!(
        "global:\n  scrape_interval: {secs}\n  scrape_timeout: {secs}\n\
         scrape_configs:\n  - job_name: farm\n    static_configs:\n      - targets: [{list}]\n\
         remote_write:\n  - url: {sink_url}\n{queue}"
    )
}

/// `5s`, or `500ms` where whole seconds do not fit (Prometheus rejects `0.5s`).
fn prom_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Runs the whole benchmark; progress goes to stderr.
pub async fn run(opts: &Options) -> anyhow::Result<Vec<Measurement>> {
    let fixture = Fixture::load(opts.fixture)?;
    let sim = TargetSimulator::start(opts.targets).await;
    for target in sim.targets() {
        target.set_body_bytes(fixture.body.clone());
    }
    let active_series = opts.targets * (fixture.series + REPORT_SERIES);
    eprintln!(
        "farm: {} targets × {} series ({:?}, {} KiB per scrape) = {active_series} active series, \
         every {:?}",
        opts.targets,
        fixture.series,
        fixture.kind,
        fixture.body.len() / 1024,
        opts.interval,
    );
    let mut results = Vec::new();
    for &system in &opts.systems {
        // A fresh receiver per system: a VictoriaMetrics that already indexed the farm's
        // series would ingest the second system's samples far more cheaply than the first's.
        let sink = match &opts.victoria_metrics_bin {
            Some(bin) => Sink::VictoriaMetrics(VictoriaMetrics::start(bin).await?),
            None => Sink::Null(NullSink::start().await.context("starting the null sink")?),
        };
        eprintln!("{system:?}: sink: {} at {}", sink.describe(), sink.url());
        let config = prometheus_yml(
            &sim.addresses(),
            opts.interval,
            &sink.url(),
            opts.max_samples_per_send,
        );
        let sink = &sink;
        let measured = match system {
            System::Promshard => run_promshard(opts, &config, &sim, sink, active_series).await?,
            System::Vmagent => run_vmagent(opts, &sim, sink, active_series).await?,
            System::Prometheus => run_prometheus(opts, &config, &sim, sink, active_series).await?,
        };
        results.push(measured);
    }
    Ok(results)
}

async fn run_promshard(
    opts: &Options,
    config: &str,
    sim: &TargetSimulator,
    sink: &Sink,
    active_series: usize,
) -> anyhow::Result<Measurement> {
    let dir = tempfile::Builder::new()
        .prefix("promshard-bench-")
        .tempdir()?;
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config)?;
    let config_arg = config_path.display().to_string();
    let data_dir = dir.path().join("worker").display().to_string();
    let bin = &opts.promshard_bin;
    let mut master = Process::spawn_program(
        bin,
        "bench-master",
        &[
            "master",
            "--config",
            &config_arg,
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
            // One worker, known to be coming: place as soon as it connects.
            "--placement.settle",
            "1s",
        ],
        &[],
    )
    .await;
    let grpc = master.url("grpc");
    let mut worker = Process::spawn_program(
        bin,
        "bench-worker",
        &[
            "worker",
            "--master",
            &grpc,
            "--id",
            "bench-worker",
            "--listen-http",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
        ],
        &[],
    )
    .await;
    eprintln!(
        "promshard: master pid {} (log {}), worker pid {} (log {})",
        master.pid(),
        master.log_path().display(),
        worker.pid(),
        worker.log_path().display()
    );
    let pids = vec![master.pid(), worker.pid()];
    let metrics_url = format!("{}/metrics", worker.url("http"));
    let subject = Subject {
        system: System::Promshard,
        pids: &pids,
        worker_index: Some(1),
        metrics_url: &metrics_url,
    };
    let measured = measure(subject, opts, sim, sink, active_series).await;
    // SIGKILL: a lone worker on SIGTERM waits out its drain timeout for a hand-off that cannot
    // happen, and nothing after the window is measured.
    worker.kill().await;
    master.kill().await;
    measured
}

async fn run_prometheus(
    opts: &Options,
    config: &str,
    sim: &TargetSimulator,
    sink: &Sink,
    active_series: usize,
) -> anyhow::Result<Measurement> {
    let prometheus = PrometheusServer::start_agent(config).await;
    let Some(pid) = prometheus.pid() else {
        bail!(
            "prometheus exited at start; log: {}",
            prometheus.log_path().display()
        );
    };
    eprintln!(
        "prometheus agent: pid {pid} (log {}, {})",
        prometheus.log_path().display(),
        version_of_prometheus().await
    );
    let metrics_url = format!("{}/metrics", prometheus.url());
    let subject = Subject {
        system: System::Prometheus,
        pids: &[pid],
        worker_index: None,
        metrics_url: &metrics_url,
    };
    measure(subject, opts, sim, sink, active_series).await
}

async fn run_vmagent(
    opts: &Options,
    sim: &TargetSimulator,
    sink: &Sink,
    active_series: usize,
) -> anyhow::Result<Measurement> {
    let Some(bin) = &opts.vmagent_bin else {
        bail!("vmagent needs --vmagent-bin");
    };
    let dir = tempfile::Builder::new()
        .prefix("promshard-bench-vmagent-")
        .tempdir()?;
    // vmagent takes its remote write from flags; its scrape config is the same without it.
    let config = prometheus_yml(&sim.addresses(), opts.interval, "", None);
    let scrape_only = config
        .split("remote_write:")
        .next()
        .unwrap_or(&config)
        .to_owned();
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, scrape_only)?;
    let vmagent = peers::start_vmagent(bin, &path, &sink.url()).await?;
    let Some(pid) = vmagent.pid() else {
        bail!(
            "vmagent exited at start; log: {}",
            vmagent.log_path().display()
        );
    };
    eprintln!("vmagent: pid {pid} (log {})", vmagent.log_path().display());
    let metrics_url = format!("{}/metrics", vmagent.url());
    let subject = Subject {
        system: System::Vmagent,
        pids: &[pid],
        worker_index: None,
        metrics_url: &metrics_url,
    };
    measure(subject, opts, sim, sink, active_series).await
}

async fn version_of_prometheus() -> String {
    let bin = std::env::var_os("PROMETHEUS_BIN").unwrap_or_else(|| "prometheus".into());
    tokio::process::Command::new(bin)
        .arg("--version")
        .output()
        .await
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "version unknown".to_owned())
}

/// What is measured: a system's processes and its self-metrics page.
struct Subject<'a> {
    system: System,
    pids: &'a [u32],
    /// Which of `pids` is the worker, reported alone too.
    worker_index: Option<usize>,
    metrics_url: &'a str,
}

/// Waits for the system's first sample at the sink, lets it warm up, then measures over the
/// window, reading every process once a second.
async fn measure(
    subject: Subject<'_>,
    opts: &Options,
    sim: &TargetSimulator,
    sink: &Sink,
    active_series: usize,
) -> anyhow::Result<Measurement> {
    let Subject {
        system,
        pids,
        worker_index,
        metrics_url,
    } = subject;
    let ticks = procstat::ticks_per_second();
    let before_start = sink.counts().await;
    eventually(
        FIRST_SAMPLE_DEADLINE,
        "the first sample at the sink",
        || async {
            let now = sink.counts().await;
            if now.samples > before_start.samples {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    // The receiver indexes every new series once (VictoriaMetrics: tens of thousands a second
    // here): wait until the system delivers at the expected rate before the warm-up starts,
    // so no system is measured while the receiver is still learning the farm's series.
    let expected = active_series as f64 / opts.interval.as_secs_f64();
    let catching_up = Instant::now();
    if matches!(sink, Sink::VictoriaMetrics(_)) {
        wait_for_steady_delivery(system, sink, expected, catching_up).await;
    }
    eprintln!(
        "{system:?}: delivering at the expected rate after {:.0?}; warming up for {:?}",
        catching_up.elapsed(),
        opts.warmup
    );
    tokio::time::sleep(opts.warmup).await;

    let read_all = || -> anyhow::Result<Vec<ProcSample>> {
        pids.iter().map(|&pid| procstat::read(pid, ticks)).collect()
    };
    let first = read_all()?;
    let counters_first = remote_storage_counters(metrics_url).await;
    let sink_first = sink.counts().await;
    let scrapes_first = sim.total_scrapes();
    let started = Instant::now();
    let mut rss_sums = vec![0u128; pids.len()];
    let mut readings = 0u128;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    eprintln!("{system:?}: measuring for {:?}", opts.duration);
    let last = loop {
        tick.tick().await;
        let last = read_all()?;
        for (sum, s) in rss_sums.iter_mut().zip(&last) {
            *sum += u128::from(s.rss);
        }
        readings += 1;
        if started.elapsed() >= opts.duration {
            break last;
        }
    };
    let window = started.elapsed();
    let sink_delta = sink.counts().await - sink_first;
    let remote_storage = remote_storage_counters(metrics_url)
        .await
        .into_iter()
        .map(|(name, last)| {
            let first = counters_first
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0.0, |(_, v)| *v);
            (name, last - first)
        })
        .collect();
    let scrapes = sim.total_scrapes() - scrapes_first;
    let usage = |i: usize| Usage {
        cpu: last[i].cpu.saturating_sub(first[i].cpu),
        steady_rss: (rss_sums[i] / readings.max(1)) as u64,
        peak_rss: last[i].hwm,
    };
    let mut total = Usage::default();
    for i in 0..pids.len() {
        let u = usage(i);
        total.cpu += u.cpu;
        total.steady_rss += u.steady_rss;
        total.peak_rss += u.peak_rss;
    }
    Ok(Measurement {
        system,
        window,
        active_series,
        expected_samples_per_second: active_series as f64 / opts.interval.as_secs_f64(),
        sink: sink_delta,
        scrapes,
        total,
        worker: worker_index.map(usage),
        pids: pids.to_vec(),
        remote_storage,
    })
}

/// Waits until a window delivers 95-105 % of the expected rate (not above either: a backlog
/// from the receiver's indexing still draining is not steady), or [`STEADY_DEADLINE`].
async fn wait_for_steady_delivery(system: System, sink: &Sink, expected: f64, since: Instant) {
    loop {
        let a = sink.counts().await;
        tokio::time::sleep(STEADY_WINDOW).await;
        let rate = (sink.counts().await.samples - a.samples) as f64 / STEADY_WINDOW.as_secs_f64();
        if (0.95 * expected..=1.05 * expected).contains(&rate) {
            return;
        }
        if since.elapsed() >= STEADY_DEADLINE {
            eprintln!(
                "{system:?}: still delivering {rate:.0} samples/s of {expected:.0} after {STEADY_DEADLINE:?}; measuring anyway"
            );
            return;
        }
    }
}

/// Sums of the `prometheus_remote_storage_samples*` counters on a `/metrics` page, by name
/// (`_total` dropped); empty if the page cannot be read.
async fn remote_storage_counters(metrics_url: &str) -> Vec<(String, f64)> {
    let Ok(response) = reqwest::get(metrics_url).await else {
        return Vec::new();
    };
    let Ok(text) = response.text().await else {
        return Vec::new();
    };
    parse_counters(&text, "prometheus_remote_storage_samples")
}

/// Sums every `PREFIX..._total` sample of an exposition by metric name (without `_total`).
pub fn parse_counters(text: &str, prefix: &str) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(prefix)) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let Some(name) = line[..name_end].strip_suffix("_total") else {
            continue;
        };
        let Some(value) = line
            .rsplit_once('}')
            .map_or(line[name_end..].trim(), |(_, v)| v.trim())
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        match sums.iter_mut().find(|(n, _)| n == name) {
            Some((_, sum)) => *sum += value,
            None => sums.push((name.to_owned(), value)),
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_target_with_the_interval_and_the_sink() {
        let yml = prometheus_yml(
            &["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            Duration::from_secs(5),
            "http://127.0.0.1:3/api/v1/write",
            None,
        );
        assert_eq!(
            yml,
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n\
             scrape_configs:\n  - job_name: farm\n    static_configs:\n      \
             - targets: ['127.0.0.1:1', '127.0.0.1:2']\n\
             remote_write:\n  - url: http://127.0.0.1:3/api/v1/write\n"
        );
        let yml = prometheus_yml(&[], Duration::from_secs(5), "http://s", Some(500));
        assert!(
            yml.ends_with("  - url: http://s\n    queue_config: {max_samples_per_send: 500}\n"),
            "{yml}"
        );
    }

    #[test]
    fn sums_remote_storage_counters_by_name() {
        let text = "# TYPE prometheus_remote_storage_samples counter\n\
                    prometheus_remote_storage_samples_total{remote_name=\"a\",url=\"u\"} 10\n\
                    prometheus_remote_storage_samples_total{remote_name=\"b\",url=\"v\"} 5\n\
                    prometheus_remote_storage_samples_dropped_total 2\n\
                    prometheus_remote_storage_samples_pending{remote_name=\"a\"} 7\n\
                    prometheus_remote_storage_samples_created 1.7e9\n";
        assert_eq!(
            parse_counters(text, "prometheus_remote_storage_samples"),
            [
                ("prometheus_remote_storage_samples".to_owned(), 15.0),
                ("prometheus_remote_storage_samples_dropped".to_owned(), 2.0),
            ]
        );
    }

    #[tokio::test]
    async fn farm_serves_the_fixture_without_timestamps_on_distinct_targets() {
        let fixture = Fixture::load(FixtureKind::Node).unwrap();
        let sim = TargetSimulator::start(3).await;
        for target in sim.targets() {
            target.set_body_bytes(fixture.body.clone());
        }
        let mut seen = std::collections::HashSet::new();
        for address in sim.addresses() {
            assert!(seen.insert(address.clone()), "{address} twice");
            let body = reqwest::get(format!("http://{address}/metrics"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(body, fixture.body);
        }
        assert_eq!(sim.total_scrapes(), 3);
    }
}
