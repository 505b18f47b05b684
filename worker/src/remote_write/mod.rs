//! Remote write: one [`QueueManager`](queue) per `remote_write` endpoint, each with its own
//! bounded buffer and sender, so a dead endpoint never blocks a healthy one or the scrapers.
//!
//! Scrape loops hand batches to the [`Appender`], which fans them out to every endpoint without
//! waiting: if an endpoint's inbox is full the batch is dropped *for that endpoint* and counted.

mod client;
mod queue;

use std::sync::Arc;

use promshard_model::Labels;
use promshard_model::config::{Config, RemoteWriteConfig};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;

pub use client::{SendError, WriteClient};

/// One sample as it leaves the scrape path.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

pub type Batch = Arc<Vec<Sample>>;

/// Batches in flight from scrapers to one endpoint's queue manager.
const INBOX: usize = 4096;

/// Cheap handle used by scrape loops to hand off samples.
#[derive(Clone)]
pub struct Appender {
    queues: watch::Receiver<Arc<Vec<Endpoint>>>,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct Endpoint {
    name: String,
    url: String,
    tx: mpsc::Sender<Batch>,
}

impl Appender {
    pub fn append(&self, batch: Vec<Sample>) {
        if batch.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        let queues = self.queues.borrow().clone();
        for q in queues.iter() {
            if q.tx.try_send(batch.clone()).is_err() {
                self.metrics
                    .rw_dropped
                    .get_or_create(&vec![
                        ("remote_name".into(), q.name.clone()),
                        ("url".into(), q.url.clone()),
                    ])
                    .inc_by(batch.len() as u64);
            }
        }
    }
}

/// A started endpoint and the settings it was started with.
struct Running {
    cfg: RemoteWriteConfig,
    external: Vec<(String, String)>,
    handle: tokio::task::JoinHandle<()>,
    endpoint: Endpoint,
}

/// Owns the queue managers; rebuilt endpoint by endpoint when the remote-write config changes.
pub struct RemoteWriteManager {
    running: Vec<Running>,
    publish: watch::Sender<Arc<Vec<Endpoint>>>,
    metrics: Arc<Metrics>,
}

impl RemoteWriteManager {
    pub fn new(metrics: Arc<Metrics>) -> (Self, Appender) {
        let (publish, rx) = watch::channel(Arc::new(Vec::new()));
        let appender = Appender {
            queues: rx,
            metrics: metrics.clone(),
        };
        (
            RemoteWriteManager {
                running: Vec::new(),
                publish,
                metrics,
            },
            appender,
        )
    }

    /// Starts, keeps or stops queue managers to match `cfg`. An endpoint whose settings did not
    /// change keeps its queue (and whatever it has buffered).
    pub fn apply(&mut self, cfg: &Config) {
        let external: Vec<(String, String)> = cfg
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut next = Vec::new();
        let mut old = std::mem::take(&mut self.running);
        for rw in &cfg.remote_write {
            if let Some(pos) = old
                .iter()
                .position(|r| r.cfg == *rw && r.external == external)
            {
                next.push(old.swap_remove(pos));
                continue;
            }
            let (tx, rx) = mpsc::channel(INBOX);
            let name = rw.display_name();
            let endpoint = Endpoint {
                name: name.clone(),
                url: rw.url.clone(),
                tx,
            };
            let qm = queue::QueueManager::new(rw.clone(), external.clone(), self.metrics.clone());
            let handle = tokio::spawn(qm.run(rx));
            tracing::info!(remote = %name, url = %rw.url, "remote write endpoint started");
            next.push(Running {
                cfg: rw.clone(),
                external: external.clone(),
                handle,
                endpoint,
            });
        }
        for r in old {
            tracing::info!(url = %r.cfg.url, "remote write endpoint removed");
            r.handle.abort();
        }
        let endpoints = next.iter().map(|r| r.endpoint.clone()).collect();
        self.running = next;
        self.publish.send_replace(Arc::new(endpoints));
    }
}
