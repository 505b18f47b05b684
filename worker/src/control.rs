//! The control-plane client: dials the master, says hello, applies snapshots and deltas, acks
//! them, and sends load reports. Reconnects forever with capped, jittered exponential backoff;
//! while the master is away the worker keeps scraping its last assignment.
//!
//! Ack after apply: a change is acknowledged only once the worker's main loop has applied it
//! (scrape loops started or told to stop, fences set), over a bounded channel, so the master's
//! "the new owner is ready" is true when it hands a target over.
//!
//! It also carries the delivery gate's traffic (`crate::gate`): leases (taken only after this
//! stream's snapshot is applied, so a worker back from a partition learns what moved before it
//! sends anything held), releases for fenced targets, and this worker's Delivered reports (kept
//! and re-sent on the next stream when this one breaks).
//!
//! With several master URLs (masters with leader election outside Kubernetes, where no Service
//! points at the leader only), a failed connect or a standby's `UNAVAILABLE` moves on to the
//! next URL at once; the backoff applies between full rounds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use promshard_proto::control::control_client::ControlClient;
use promshard_proto::control::master_message::Msg as MasterMsg;
use promshard_proto::control::{Ack, Drain, Hello, LoadReport, WorkerMessage, worker_message::Msg};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::assignment::{Applied, Assignment, AssignmentState};
use crate::gate::{DeliveryGate, tag_of};
use crate::metrics::Metrics;
use crate::status::StatusBoard;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// An applied assignment for the worker's main loop; `done` is answered once it is in force.
pub struct Change {
    pub assignment: Arc<Assignment>,
    pub applied: Applied,
    pub done: oneshot::Sender<()>,
}

pub struct ControlClientTask {
    /// One master URL, or several, comma-separated.
    pub master: String,
    pub worker_id: String,
    pub data_dir: PathBuf,
    /// TLS and token for the stream (`crate::tls`), re-read on every connect.
    pub security: crate::tls::ClientSecurity,
    pub state: AssignmentState,
    pub status: Arc<StatusBoard>,
    pub metrics: Arc<Metrics>,
    /// Every applied change goes to the worker's main loop, in order (bounded: a slow main
    /// loop slows the stream, it does not pile up assignments).
    pub changes: mpsc::Sender<Change>,
    /// Leases, releases and Delivered reports.
    pub gate: Arc<DeliveryGate>,
    /// Series this worker accepts (`--max-series`, 0 = unlimited), sent in the hello.
    pub capacity_series: u64,
    /// Becomes true on SIGTERM: the worker asks the master to hand its targets off.
    pub drain: tokio::sync::watch::Receiver<bool>,
}

impl ControlClientTask {
    pub async fn run(mut self) {
        let masters = master_urls(&self.master);
        let mut next = 0;
        // Consecutive URLs that failed without an assignment; a full round backs off.
        let mut failed_in_round = 0;
        let mut backoff = MIN_BACKOFF;
        loop {
            let master = masters[next].clone();
            let got_snapshot = match self.session(&master).await {
                Ok(got) => {
                    tracing::warn!(%master, "master closed the stream");
                    got
                }
                Err((got, e)) => {
                    tracing::warn!(%master, error = %e, "control stream failed");
                    got
                }
            };
            self.metrics.master_connected.set(0);
            self.state.reset_pending();
            if got_snapshot {
                backoff = MIN_BACKOFF;
                failed_in_round = 0;
            } else {
                next = (next + 1) % masters.len();
                failed_in_round += 1;
                if failed_in_round < masters.len() {
                    continue;
                }
                failed_in_round = 0;
            }
            // Jitter spreads thousands of workers' reconnects after a master restart.
            let ms = backoff.as_millis() as u64;
            let wait = Duration::from_millis(ms / 2 + rand::random::<u64>() % (ms / 2 + 1));
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One stream's life. Returns whether an assignment was applied on it (to reset backoff).
    async fn session(&mut self, master: &str) -> Result<bool, (bool, String)> {
        let mut endpoint = Endpoint::from_shared(master.to_string())
            .map_err(|e| (false, format!("invalid master URL {master:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let tls = (self.security.tls_config(master))
            .map_err(|e| (false, format!("control-plane TLS: {e:#}")))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| (false, format!("control-plane TLS: {e}")))?;
        }
        let token =
            (self.security.token()).map_err(|e| (false, format!("control-plane token: {e:#}")))?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| (false, format!("connect: {e:#}")))?;
        let mut client = ControlClient::with_interceptor(channel, token)
            .max_decoding_message_size(promshard_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(promshard_proto::MAX_MESSAGE_BYTES);

        let (out_tx, out_rx) = mpsc::channel::<WorkerMessage>(64);
        let hello = Hello {
            worker_id: self.worker_id.clone(),
            last_generation: self.state.current.generation,
            capacity_series: self.capacity_series,
            scraping: self.state.current.targets.keys().cloned().collect(),
        };
        let _ = out_tx
            .send(WorkerMessage {
                msg: Some(Msg::Hello(hello)),
            })
            .await;
        let mut inbound = client
            .session(ReceiverStream::new(out_rx))
            .await
            .map_err(|e| (false, format!("session: {e}")))?
            .into_inner();
        self.metrics.master_connected.set(1);
        tracing::info!(%master, "connected to master");
        // Reports sent on a stream that broke may never have reached the master: again.
        self.gate.resend_recent_reports();

        self.status.mark_all_dirty();
        let reporter = {
            let (status, tx) = (self.status.clone(), out_tx.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REPORT_EVERY);
                loop {
                    tick.tick().await;
                    let targets = status.take_dirty();
                    if targets.is_empty() {
                        continue;
                    }
                    let msg = WorkerMessage {
                        msg: Some(Msg::Load(LoadReport { targets })),
                    };
                    if tx.send(msg).await.is_err() {
                        break;
                    }
                }
            })
        };
        let _guard = AbortOnDrop(reporter);

        let mut applied_any = false;
        // Leases count only once this stream's snapshot is applied (see the module comment).
        let mut snapshot_applied = false;
        let mut drain = self.drain.clone();
        let mut drain_sent = false;
        loop {
            self.send_reports(&out_tx)
                .await
                .map_err(|e| (applied_any, e))?;
            if !drain_sent && *drain.borrow_and_update() {
                drain_sent = true;
                tracing::info!("draining: asking the master to hand every target off");
                let msg = WorkerMessage {
                    msg: Some(Msg::Drain(Drain {})),
                };
                if out_tx.send(msg).await.is_err() {
                    return Err((applied_any, "outbound stream closed".into()));
                }
            }
            let next = tokio::select! {
                m = inbound.message() => m,
                Ok(()) = drain.changed(), if !drain_sent => continue,
                () = self.gate.reported.notified() => continue,
            };
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(applied_any),
                Err(e) => return Err((applied_any, format!("stream: {e}"))),
            };
            match &msg.msg {
                Some(MasterMsg::Lease(lease)) => {
                    if snapshot_applied {
                        let until = crate::gate::now_ms() + lease.duration_ms;
                        self.gate.update(|g| g.set_lease(until));
                        self.metrics.lease_until.set(until as f64 / 1000.0);
                    }
                    continue;
                }
                Some(MasterMsg::Release(r)) => {
                    tracing::debug!(target = %r.target_id, at = r.at_ms, endpoints = ?r.endpoints, "fence released");
                    let tag = tag_of(&r.target_id);
                    self.gate
                        .update(|g| g.release(tag, r.at_ms, r.endpoints.iter().cloned()));
                    continue;
                }
                _ => {}
            }
            let is_snapshot = matches!(msg.msg, Some(MasterMsg::Snapshot(_)));
            let applied = match self.state.apply(msg) {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                // Out of step with the master: reconnecting yields a fresh snapshot.
                Err(e) => return Err((applied_any, format!("protocol: {e}"))),
            };
            applied_any = true;
            let generation = applied.generation;
            if let Err(e) = self.state.save(&self.data_dir) {
                tracing::error!(error = %e, dir = %self.data_dir.display(), "cannot persist assignment");
            }
            self.metrics.assignment_generation.set(generation as i64);
            let (done, applied_rx) = oneshot::channel();
            let change = Change {
                assignment: Arc::new(self.state.current.clone()),
                applied,
                done,
            };
            if self.changes.send(change).await.is_err() || applied_rx.await.is_err() {
                return Err((applied_any, "the worker is shutting down".into()));
            }
            snapshot_applied |= is_snapshot;
            let ack = WorkerMessage {
                msg: Some(Msg::Ack(Ack { generation })),
            };
            if out_tx.send(ack).await.is_err() {
                return Err((applied_any, "outbound stream closed".into()));
            }
        }
    }
}

impl ControlClientTask {
    /// Sends the gate's Delivered reports; on a broken stream they wait for the next one.
    async fn send_reports(&self, out: &mpsc::Sender<WorkerMessage>) -> Result<(), String> {
        let reports = self.gate.take_reports();
        for (i, d) in reports.iter().enumerate() {
            let msg = WorkerMessage {
                msg: Some(Msg::Delivered(d.clone())),
            };
            if out.send(msg).await.is_err() {
                self.gate.requeue_reports(reports[i..].to_vec());
                return Err("outbound stream closed".into());
            }
        }
        Ok(())
    }
}

/// The URLs in a `--master` value (comma-separated, blanks ignored); never empty, so a bad
/// value fails on connect with the URL named.
fn master_urls(value: &str) -> Vec<String> {
    let urls: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if urls.is_empty() {
        vec![value.to_string()]
    } else {
        urls
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::master_urls;

    #[test]
    fn master_urls_split_on_commas() {
        assert_eq!(master_urls("http://a:1"), ["http://a:1"]);
        assert_eq!(
            master_urls("http://a:1, http://b:2,"),
            ["http://a:1", "http://b:2"]
        );
        assert_eq!(master_urls(""), [""]);
    }
}
