//! A minimal HTTP/1.1 server that can be switched off and on again on the same port.
//!
//! The simulator and the receiver both need to look like a peer that died: new connections
//! refused *and* open keep-alive connections cut, so the client sees a network error rather than
//! a polite response. Frameworks shut down gracefully (they finish in-flight requests and keep
//! the listener until connections drain), so this owns the accept loop and every connection task.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a request becomes. `peer` is the client's address.
pub(crate) type Handler =
    Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<Response<Full<Bytes>>> + Send + Sync>;

/// A listener on a fixed address that can be stopped and restarted.
pub(crate) struct Server {
    addr: SocketAddr,
    handler: Handler,
    running: Mutex<Option<Running>>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free one; the chosen port is kept for restarts) and serves.
    pub(crate) async fn bind(addr: SocketAddr, handler: Handler) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = Server {
            addr,
            handler,
            running: Mutex::new(None),
        };
        server.run(listener);
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn is_running(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Stops listening and cuts every open connection. When this returns, connecting to the
    /// address is refused and no request is being served.
    pub(crate) async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(mut running) = running {
            let (stop, _) = oneshot::channel();
            let _ = std::mem::replace(&mut running.stop, stop).send(());
            // The accept loop drops the listener and aborts and awaits its connections before
            // finishing, so once it has finished nothing of this server is left.
            let _ = (&mut running.task).await;
        }
    }

    /// Listens again on the same address. Fails if something else took the port meanwhile.
    pub(crate) async fn start(&self) -> io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.run(listener);
        Ok(())
    }

    fn run(&self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, self.handler.clone(), stopped));
        *lock(&self.running) = Some(Running { stop, task });
    }
}

async fn accept_loop(listener: TcpListener, handler: Handler, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send or a dropped sender both mean stop.
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, handler.clone()));
                }
                // Usually EMFILE under a large simulation; retrying at once would spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, handler: Handler) {
    let service = service_fn(move |request| {
        let response = handler(request, peer);
        async move { Ok::<_, Infallible>(response.await) }
    });
    // Errors here are the client going away mid-request; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide the state from the
/// diagnostics that run while it unwinds.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A response with a body and a content type.
pub(crate) fn response(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
