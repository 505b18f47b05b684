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
    let client = control::ControlClientTask {
        master: opts.master.clone(),
        worker_id: opts.worker_id.clone(),
        data_dir: opts.data_dir.clone(),
        security: opts.security.clone(),
        state: AssignmentState::new(persisted),
        status,
        metrics: metrics.clone(),
        changes: changes_tx,
    };
    let client = tokio::spawn(client.run());

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut http_stop = stop_rx.clone();
    let server = axum::serve(http, http::router(metrics)).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });

    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some((a, applied)) = change else { break };
                tracing::info!(generation = a.generation, targets = a.targets.len(), "assignment applied");
                rw.apply(&a.config);
                scrapes.sync(&a, &applied);
            }
            _ = stop_rx.wait_for(|s| *s) => break,
        }
    }
    client.abort();
    scrapes.shutdown();
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(())
}
