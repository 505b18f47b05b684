//! The VictoriaMetrics peers, run from binaries the user built (never built or vendored here):
//! `vmagent` as a collector to compare with, and a single-node `victoria-metrics` as the
//! remote-write receiver every system writes to, counting what lands
//! (`vm_rows_inserted_total{type="promremotewrite"}`).
//!
//! Both listen on a free loopback port picked beforehand (they cannot report the port they
//! bound), keep their data in a temporary directory, log to `$TMPDIR/promshard-bench-NAME-PORT.log`
//! (kept), and are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use promshard_integration_tests::launcher::free_loopback_port;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::sink::SinkCounts;

/// How long a peer may take to answer `/health`.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A running peer process.
pub struct Peer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Peer {
    async fn start(
        bin: &Path,
        name: &str,
        args: impl Fn(&Path, u16) -> Vec<String>,
    ) -> anyhow::Result<Peer> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("promshard-bench-{name}-"))
            .tempdir()?;
        let port = free_loopback_port();
        let log = std::env::temp_dir().join(format!("promshard-bench-{name}-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(args(dir.path(), port))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut peer = Peer {
            child,
            port,
            log,
            _dir: dir,
        };
        peer.wait_ready(name).await?;
        Ok(peer)
    }

    async fn wait_ready(&mut self, name: &str) -> anyhow::Result<()> {
        let url = format!("{}/health", self.url());
        let deadline = tokio::time::Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("{name} exited with {status}; log: {}", self.log.display());
            }
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{name} not ready within {READY_DEADLINE:?}; log: {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

/// A single-node VictoriaMetrics as the remote-write receiver.
pub struct VictoriaMetrics(Peer);

impl VictoriaMetrics {
    pub async fn start(bin: &Path) -> anyhow::Result<VictoriaMetrics> {
        let peer = Peer::start(bin, "victoria-metrics", |dir, port| {
            vec![
                format!("-storageDataPath={}", dir.display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                "-retentionPeriod=1d".to_owned(),
                // Only this run's samples, and no self-scraping that would add rows.
                "-selfScrapeInterval=0".to_owned(),
            ]
        })
        .await?;
        Ok(VictoriaMetrics(peer))
    }

    /// Its remote-write 1.0 endpoint.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.0.url())
    }

    /// Rows inserted through remote write so far, and the write requests.
    pub async fn counts(&self) -> SinkCounts {
        let text = match reqwest::get(format!("{}/metrics", self.0.url())).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        SinkCounts {
            samples: sample_of(&text, "vm_rows_inserted_total{type=\"promremotewrite\"}") as u64,
            requests: sample_of(&text, "vm_http_requests_total{path=\"/api/v1/write\"}") as u64,
            ..SinkCounts::default()
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }
}

/// vmagent scraping `config` (a prometheus.yml without `remote_write`) into `write_url`.
pub async fn start_vmagent(bin: &Path, config: &Path, write_url: &str) -> anyhow::Result<Peer> {
    let (config, write_url) = (config.to_owned(), write_url.to_owned());
    Peer::start(bin, "vmagent", move |dir, port| {
        vec![
            format!("-promscrape.config={}", config.display()),
            format!("-remoteWrite.url={write_url}"),
            format!("-remoteWrite.tmpDataPath={}", dir.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
        ]
    })
    .await
}

/// The value of a series on a `/metrics` page by its exact text; 0 when absent.
fn sample_of(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_victoria_metrics_counters_by_series() {
        let text = "vm_rows_inserted_total{type=\"influx\"} 3\n\
                    vm_rows_inserted_total{type=\"promremotewrite\"} 12345\n\
                    vm_http_requests_total{path=\"/api/v1/write\"} 17\n";
        assert_eq!(
            sample_of(text, "vm_rows_inserted_total{type=\"promremotewrite\"}"),
            12345.0
        );
        assert_eq!(
            sample_of(text, "vm_http_requests_total{path=\"/api/v1/write\"}"),
            17.0
        );
        assert_eq!(sample_of(text, "absent"), 0.0);
    }
}
