//! The promshard worker: receives its assignment from the master, scrapes the targets in it and
//! remote-writes the samples. It never talks to the Kubernetes API.
//!
//! `run` takes an already-bound HTTP listener and a shutdown future (tests bind port 0).

pub mod assignment;
pub mod control;
pub mod http;
pub mod http_client;
pub mod metrics;
pub mod remote_write;
pub mod scrape;
pub mod status;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use assignment::{Applied, AssignmentState};

pub struct Options {
    /// The master's gRPC URL, e.g. `http://127.0.0.1:9400`.
    pub master: String,
    pub worker_id: String,
    /// Holds the persisted assignment (and, later, the WAL).
    pub data_dir: PathBuf,
    /// TLS, client certificate and token for the control plane.
    pub security: tls::ClientSecurity,
    /// Size bound of each remote-write endpoint's WAL (`--wal.max-bytes`).
    pub wal_max_bytes: u64,
    /// Series this worker accepts (`--max-series`, 0 = unlimited): the master places no more
    /// on it, spilling over to other workers.
    pub max_series: u64,
    /// On SIGTERM, how long to wait for the master to hand every target off before exiting.
    pub drain_timeout: std::time::Duration,
}

pub async fn run(
    opts: Options,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating data dir {}", opts.data_dir.display()))?;
    let metrics = Arc::new(metrics::Metrics::new());
    let status = Arc::new(status::StatusBoard::default());
    let (mut rw, appender) = remote_write::RemoteWriteManager::new(
        metrics.clone(),
        opts.data_dir.join("wal"),
        opts.wal_max_bytes,
    );
    let mut scrapes = scrape::ScrapeManager::new(appender, status.clone(), metrics.clone());

    // Resume the persisted assignment before the master answers: a restarted worker keeps
    // scraping even while the master is down.
    let persisted = AssignmentState::load(&opts.data_dir);
    let persisted_targets = persisted.targets.len();
    if persisted.generation > 0 {
        tracing::info!(
            generation = persisted.generation,
            targets = persisted.targets.len(),
            "resuming persisted assignment"
        );
        rw.apply(&persisted.config);
        scrapes.sync(
            &persisted,
            &Applied {
                generation: persisted.generation,
                ..Applied::default()
            },
        );
    }

    let (changes_tx, mut changes) = mpsc::unbounded_channel();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let client = control::ControlClientTask {
        master: opts.master.clone(),
        worker_id: opts.worker_id.clone(),
        data_dir: opts.data_dir.clone(),
        security: opts.security.clone(),
        state: AssignmentState::new(persisted),
        status,
        metrics: metrics.clone(),
        changes: changes_tx,
        capacity_series: opts.max_series,
        drain: drain_rx,
    };
    let client = tokio::spawn(client.run());

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut http_stop = stop_rx.clone();
    let server =
        axum::serve(http, http::router(metrics.clone())).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
    let server = tokio::spawn(async move { server.await });

    let mut held = persisted_targets;
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some((a, applied)) = change else { break };
                held = apply_change(&mut rw, &mut scrapes, &a, &applied);
            }
            _ = stop_rx.wait_for(|s| *s) => break,
        }
    }

    // Graceful drain: the master hands every target to another worker (make-before-break),
    // so no slot is missed; we wait until we hold none and the last handoff instant passed.
    if held > 0 && metrics.master_connected.get() == 1 {
        let _ = drain_tx.send(true);
        let deadline = tokio::time::Instant::now() + opts.drain_timeout;
        tracing::info!(targets = held, timeout = ?opts.drain_timeout, "draining");
        loop {
            if held == 0 && scrapes.handoffs_done() {
                tracing::info!("drained: every target handed off");
                break;
            }
            tokio::select! {
                change = changes.recv() => {
                    let Some((a, applied)) = change else { break };
                    held = apply_change(&mut rw, &mut scrapes, &a, &applied);
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(targets = held, "drain timeout: exiting with targets still assigned");
                    break;
                }
            }
        }
    }
    drop(drain_tx);
    client.abort();
    scrapes.shutdown();
    // Send what was scraped before the handoff instants, so the drained worker's last slots
    // arrive now rather than whenever (if ever) it starts again with this data dir.
    if !rw
        .flush(tokio::time::Instant::now() + opts.drain_timeout)
        .await
    {
        tracing::warn!(
            "remote write not flushed within the drain timeout; the rest stays in the WAL"
        );
    }
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(())
}

/// Brings remote write and scraping in line with a newly applied assignment; returns how many
/// targets the worker now holds.
fn apply_change(
    rw: &mut remote_write::RemoteWriteManager,
    scrapes: &mut scrape::ScrapeManager,
    a: &assignment::Assignment,
    applied: &Applied,
) -> usize {
    tracing::info!(
        generation = a.generation,
        targets = a.targets.len(),
        "assignment applied"
    );
    rw.apply(&a.config);
    scrapes.sync(a, applied);
    a.targets.len()
}
