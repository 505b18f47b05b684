//! The queue manager of one endpoint: buffers samples in memory (bounded), cuts batches of
//! `max_samples_per_send` or at `batch_send_deadline`, and feeds a sender that retries as the
//! spec says. One sender per endpoint keeps every series' samples in order across requests
//! (a series is never in two in-flight requests).
//!
//! The buffer never blocks scrapers: past its bound the oldest samples are dropped and counted
//! in `prometheus_remote_storage_samples_dropped_total`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use promshard_model::config::RemoteWriteConfig;
use promshard_model::relabel;
use promshard_proto::prometheus::{
    Label as WireLabel, Sample as WireSample, TimeSeries, WriteRequest,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{SendError, WriteClient};
use super::{Batch, Sample};
use crate::metrics::{LabelSet, Metrics};

/// Floor of the in-memory bound, whatever `capacity` says: a few scrapes of a big target.
const MIN_BOUND: usize = 100_000;

pub(super) struct QueueManager {
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    metrics: Arc<Metrics>,
    labels: LabelSet,
}

impl QueueManager {
    pub(super) fn new(
        cfg: RemoteWriteConfig,
        external: Vec<(String, String)>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let labels = vec![
            ("remote_name".into(), cfg.display_name()),
            ("url".into(), cfg.url.clone()),
        ];
        QueueManager {
            cfg,
            external,
            metrics,
            labels,
        }
    }

    pub(super) async fn run(self, mut inbox: mpsc::Receiver<Batch>) {
        let q = &self.cfg.queue_config;
        let client = match WriteClient::new(
            &self.cfg.url,
            self.cfg.remote_timeout.0,
            &self.cfg.headers,
            q.retry_on_http_429,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(url = %self.cfg.url, error = %e, "cannot build remote write client");
                return;
            }
        };
        let max = q.max_samples_per_send as usize;
        let bound = ((q.capacity * q.max_shards) as usize).max(MIN_BOUND);
        let deadline_every = q.batch_send_deadline.0;
        let (shard_tx, shard_rx) = mpsc::channel::<Vec<Sample>>(1);
        let sender = tokio::spawn(Shard::new(&self, client).run(shard_rx));

        let pending_gauge = self.metrics.rw_pending.get_or_create(&self.labels).clone();
        let dropped = self.metrics.rw_dropped.get_or_create(&self.labels).clone();
        let mut pending: VecDeque<Sample> = VecDeque::new();
        let mut deadline = Instant::now() + deadline_every;
        loop {
            let ready = pending.len() >= max || (!pending.is_empty() && Instant::now() >= deadline);
            tokio::select! {
                batch = inbox.recv() => match batch {
                    Some(b) => {
                        if pending.is_empty() {
                            deadline = Instant::now() + deadline_every;
                        }
                        pending.extend(b.iter().cloned());
                        if pending.len() > bound {
                            let n = pending.len() - bound;
                            pending.drain(..n);
                            dropped.inc_by(n as u64);
                        }
                    }
                    None => break,
                },
                permit = shard_tx.reserve(), if ready => match permit {
                    Ok(permit) => {
                        let n = pending.len().min(max);
                        permit.send(pending.drain(..n).collect());
                        deadline = Instant::now() + deadline_every;
                    }
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline), if !pending.is_empty() && !ready => {}
            }
            pending_gauge.set(pending.len() as i64);
        }
        // Inbox closed (endpoint removed or shutdown): hand over what is left, then let the
        // sender finish.
        while !pending.is_empty() {
            let n = pending.len().min(max);
            if shard_tx.send(pending.drain(..n).collect()).await.is_err() {
                break;
            }
        }
        drop(shard_tx);
        let _ = sender.await;
    }
}

struct Shard {
    client: WriteClient,
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    metrics: Arc<Metrics>,
    labels: LabelSet,
}

impl Shard {
    fn new(qm: &QueueManager, client: WriteClient) -> Self {
        Shard {
            client,
            cfg: qm.cfg.clone(),
            external: qm.external.clone(),
            metrics: qm.metrics.clone(),
            labels: qm.labels.clone(),
        }
    }

    async fn run(self, mut rx: mpsc::Receiver<Vec<Sample>>) {
        let mut proto_buf = Vec::new();
        let q = &self.cfg.queue_config;
        while let Some(batch) = rx.recv().await {
            let (req, newest) = self.build_request(&batch);
            let n = req.timeseries.len() as u64;
            if n == 0 {
                continue;
            }
            let body = Bytes::from(WriteClient::encode(&req, &mut proto_buf));
            let mut backoff = q.min_backoff.0;
            let mut attempt = 0;
            loop {
                match self.client.send(body.to_vec(), attempt).await {
                    Ok(()) => {
                        self.metrics
                            .rw_samples
                            .get_or_create(&self.labels)
                            .inc_by(n);
                        let g = self.metrics.rw_highest_sent.get_or_create(&self.labels);
                        g.set(g.get().max(newest / 1000));
                        break;
                    }
                    Err(SendError::Recoverable {
                        message,
                        retry_after,
                    }) => {
                        self.metrics
                            .rw_retried
                            .get_or_create(&self.labels)
                            .inc_by(n);
                        let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(300));
                        tracing::warn!(url = %self.cfg.url, %message, ?wait, "remote write failed; retrying");
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(q.max_backoff.0);
                        attempt += 1;
                    }
                    Err(SendError::Fatal(message)) => {
                        self.metrics.rw_failed.get_or_create(&self.labels).inc_by(n);
                        tracing::error!(url = %self.cfg.url, %message, samples = n, "remote write rejected; dropping batch");
                        break;
                    }
                }
            }
        }
    }

    /// External labels first (only where the series lacks them), then `write_relabel_configs`,
    /// as Prometheus's queue manager does.
    fn build_request(&self, batch: &[Sample]) -> (WriteRequest, i64) {
        let mut timeseries = Vec::with_capacity(batch.len());
        let mut newest = 0;
        for s in batch {
            let labels = if self.external.is_empty() && self.cfg.write_relabel_configs.is_empty() {
                s.labels.clone()
            } else {
                let mut lb = s.labels.builder();
                for (k, v) in &self.external {
                    if lb.get(k).is_none() {
                        lb.set(k.clone(), v.clone());
                    }
                }
                if !relabel::process(&self.cfg.write_relabel_configs, &mut lb) {
                    continue;
                }
                lb.into_labels()
            };
            newest = newest.max(s.timestamp_ms);
            timeseries.push(TimeSeries {
                labels: labels
                    .iter()
                    .map(|l| WireLabel {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: vec![WireSample {
                    value: s.value,
                    timestamp: s.timestamp_ms,
                }],
                exemplars: Vec::new(),
            });
        }
        (
            WriteRequest {
                timeseries,
                metadata: Vec::new(),
            },
            newest,
        )
    }
}
