//! The promshard worker: receives its assignment from the master, scrapes the targets in it and
//! remote-writes the samples. It never talks to the Kubernetes API.
//!
//! `run` takes an already-bound HTTP listener and a shutdown future (tests bind port 0).

pub mod assignment;
pub mod control;
pub mod gate;
pub mod http;
pub mod http_client;
pub mod metrics;
pub mod remote_write;
pub mod scrape;
pub mod status;
#[cfg(test)]
mod testdata;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use assignment::{Applied, Assignment, AssignmentState};
use gate::{DeliveryGate, tag_of};

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
    // Nothing is sent before a master grants a lease: this worker may be back from a
    // partition during which its targets moved.
    let gate = Arc::new(DeliveryGate::new(true));
    let (mut rw, appender) = remote_write::RemoteWriteManager::new(
        metrics.clone(),
        opts.data_dir.join("wal"),
        opts.wal_max_bytes,
        gate.clone(),
    );
    rw.set_user_agent(remote_write::user_agent(&opts.worker_id));
    let mut scrapes = scrape::ScrapeManager::new(appender.clone(), status.clone(), metrics.clone());

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
        let applied = Applied {
            generation: persisted.generation,
            cuts: persisted.cuts.clone(),
            ..Applied::default()
        };
        rw.apply(&persisted.config);
        sync_gate(&gate, &appender, &persisted, &applied);
        scrapes.sync(&persisted, &applied);
    }

    let (changes_tx, mut changes) = mpsc::channel::<control::Change>(1);
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
        gate: gate.clone(),
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
                let Some(c) = change else { break };
                held = apply_change(&gate, &appender, &mut rw, &mut scrapes, c);
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
                    let Some(c) = change else { break };
                    held = apply_change(&gate, &appender, &mut rw, &mut scrapes, c);
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(targets = held, "drain timeout: exiting with targets still assigned");
                    break;
                }
            }
        }
    }
    scrapes.shutdown();
    // Send what was scraped before the handoff instants, so the drained worker's last slots
    // arrive now rather than whenever (if ever) it starts again with this data dir, and tell
    // the new owners (through the master) that they may send theirs: their fences wait for it.
    let deadline = tokio::time::Instant::now() + opts.drain_timeout;
    if !rw.flush(deadline).await {
        tracing::warn!(
            "remote write not flushed within the drain timeout; the rest stays in the WAL"
        );
    }
    while gate.pending_reports() > 0
        && metrics.master_connected.get() == 1
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(drain_tx);
    client.abort();
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(())
}

/// Brings the gate, remote write and scraping in line with a newly applied assignment, then
/// lets the control client ack it; returns how many targets the worker now holds.
fn apply_change(
    gate: &DeliveryGate,
    appender: &remote_write::Appender,
    rw: &mut remote_write::RemoteWriteManager,
    scrapes: &mut scrape::ScrapeManager,
    c: control::Change,
) -> usize {
    let (a, applied) = (&c.assignment, &c.applied);
    tracing::info!(
        generation = a.generation,
        targets = a.targets.len(),
        "assignment applied"
    );
    rw.apply(&a.config);
    // Before the loops: a new target's first record must find its fence in place.
    sync_gate(gate, appender, a, applied);
    scrapes.sync(a, applied);
    let _ = c.done.send(());
    a.targets.len()
}

/// Fences of targets handed to this worker, cuts of targets taken from it while it was away
/// (and their delivery watches), and targets that came back after a cut.
fn sync_gate(
    gate: &DeliveryGate,
    appender: &remote_write::Appender,
    a: &Assignment,
    applied: &Applied,
) {
    let now = gate::now_ms();
    gate.update(|g| {
        for c in &applied.cuts {
            g.add_cut(tag_of(&c.target_id), c.at_ms, c.send_before);
        }
        for t in a.targets.values() {
            let tag = tag_of(&t.id);
            if t.fence_until_ms != 0 {
                g.add_fence(
                    tag,
                    t.start_at_ms,
                    t.fence_until_ms,
                    t.released.iter().cloned(),
                );
            }
            g.reacquired(
                tag,
                if t.start_at_ms > 0 {
                    t.start_at_ms
                } else {
                    now
                },
            );
        }
        g.expire(now);
    });
    for c in &applied.cuts {
        tracing::info!(target = %c.target_id, at = c.at_ms, send_before = c.send_before, "a target moved while this worker was away from the master");
        appender.watch_delivery(&c.target_id, tag_of(&c.target_id), c.at_ms);
    }
}
