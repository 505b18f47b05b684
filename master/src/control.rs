//! The control-plane gRPC server: one bidirectional stream per worker.
//!
//! The stream's lifetime *is* the worker's liveness: when it ends (process killed, connection
//! reset, HTTP/2 keepalive timeout) the coordinator starts the worker's grace period.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use promshard_proto::control::control_server::Control;
use promshard_proto::control::{MasterMessage, TargetLoad, WorkerMessage, worker_message::Msg};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::coordinator::Event;

/// Outgoing queue per worker: a snapshot of 100k targets is 20 chunks, so this is ample; a
/// worker that lets it fill up is dropped and resynchronised.
const OUTBOX: usize = 256;

/// Latest per-target load reports from workers, keyed by target id. Written by stream tasks,
/// read by HTTP handlers; the lock is never held across an await.
pub type Loads = Arc<Mutex<HashMap<String, TargetLoad>>>;

pub struct ControlService {
    events: mpsc::Sender<Event>,
    loads: Loads,
    next_conn: AtomicU64,
}

impl ControlService {
    pub fn new(events: mpsc::Sender<Event>, loads: Loads) -> Self {
        ControlService {
            events,
            loads,
            next_conn: AtomicU64::new(1),
        }
    }
}

type MasterStream = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    type SessionStream = MasterStream;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        // Set by `tls::ControlAuth` when the worker presented a client certificate (mTLS).
        let identity = request
            .extensions()
            .get::<crate::tls::PeerIdentity>()
            .cloned();
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(WorkerMessage {
                msg: Some(Msg::Hello(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a Hello",
                ));
            }
        };
        if hello.worker_id.is_empty() {
            return Err(Status::invalid_argument("Hello.worker_id is empty"));
        }
        if let Some(id) = identity.filter(|id| !id.allows(&hello.worker_id)) {
            return Err(Status::permission_denied(format!(
                "the client certificate names {:?}, not worker {:?}",
                id.0, hello.worker_id
            )));
        }
        let worker = hello.worker_id.clone();
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(OUTBOX);
        self.events
            .send(Event::Connected {
                worker: worker.clone(),
                conn,
                tx,
                scraping: hello.scraping,
                capacity_series: hello.capacity_series,
            })
            .await
            .map_err(|_| Status::unavailable("master is shutting down"))?;

        let (events, loads) = (self.events.clone(), self.loads.clone());
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(WorkerMessage {
                        msg: Some(Msg::Ack(a)),
                    })) => {
                        let ev = Event::Ack {
                            worker: worker.clone(),
                            conn,
                            generation: a.generation,
                        };
                        if events.send(ev).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(WorkerMessage {
                        msg: Some(Msg::Load(report)),
                    })) => {
                        let mut l = loads.lock().unwrap_or_else(|e| e.into_inner());
                        for t in report.targets {
                            l.insert(t.target_id.clone(), t);
                        }
                    }
                    Ok(Some(WorkerMessage {
                        msg: Some(Msg::Delivered(d)),
                    })) => {
                        let ev = Event::Delivered {
                            worker: worker.clone(),
                            conn,
                            target_id: d.target_id,
                            at_ms: d.at_ms,
                            endpoints: d.endpoints,
                        };
                        if events.send(ev).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(WorkerMessage {
                        msg: Some(Msg::Drain(_)),
                    })) => {
                        let ev = Event::Draining {
                            worker: worker.clone(),
                            conn,
                        };
                        if events.send(ev).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(%worker, error = %e, "worker stream error");
                        break;
                    }
                }
            }
            let _ = events.send(Event::Disconnected { worker, conn }).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
