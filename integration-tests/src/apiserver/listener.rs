//! The double's accept loop: like `crate::server`, it can stop listening and cut every open
//! connection (an API server that went away), but its responses may be streams (watches),
//! which the shared server's `Full`-body handler type cannot carry.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::Shared;
use super::http::handle;
use crate::server::lock;

pub(super) struct Listener {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

impl Listener {
    /// Serves on an already-bound listener (binding port 0 and binding again the port it got
    /// lost the port to other processes now and then).
    pub(super) fn serve(listener: TcpListener, shared: Arc<Shared>) -> io::Result<Listener> {
        let listener_addr = listener.local_addr()?;
        let this = Listener {
            addr: listener_addr,
            shared,
            running: Mutex::new(None),
        };
        this.run(listener);
        Ok(this)
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and cuts every open connection, watches included.
    pub(super) async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(mut running) = running {
            if let Some(stop) = running.stop.take() {
                let _ = stop.send(());
            }
            let _ = (&mut running.task).await;
        }
    }

    /// Listens again on the same address.
    pub(super) async fn start(&self) -> io::Result<()> {
        if lock(&self.running).is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.run(listener);
        Ok(())
    }

    fn run(&self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, self.shared.clone(), stopped));
        *lock(&self.running) = Some(Running {
            stop: Some(stop),
            task,
        });
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                // Usually EMFILE on a loaded machine; retrying at once would spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, request).await) }
    });
    // Errors here are the client going away mid-request; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
