//! Master high availability: leader election among master replicas on a
//! `coordination.k8s.io/v1` Lease (`--leader-election`), and what a standby does meanwhile.
//!
//! A standby runs no discovery and no placement. It serves `/-/healthy` (200), `/-/ready` (503,
//! so a Kubernetes Service routes workers only to the leader), `/metrics`
//! (`promshard_master_leader 0`), and answers every control session with gRPC `UNAVAILABLE`
//! "not the leader", so a worker given several master URLs moves on to the next one.
//!
//! When it wins the lease it starts exactly like a fresh master (`crate::lead`): the settle
//! window and the workers' hellos rebuild placement without moving targets.
//!
//! When the leader loses the lease (another replica took it, or it could not renew it before
//! it expired) the process exits with an error. Stepping down in-process would have to prove
//! that every discovery watch, the coordinator and every worker session were torn down before
//! another replica leads; exiting proves it, and Kubernetes restarts the container, which then
//! comes back as a standby. A leader that loses its lease repeatedly ends up in
//! CrashLoopBackOff, which is the visible signal that the election itself is unhealthy.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::Stream;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use promshard_proto::control::control_server::{Control, ControlServer};
use promshard_proto::control::{MasterMessage, WorkerMessage};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::Metrics;

/// The Lease name without `--leader-election-lease-name` (the chart always passes one).
pub const DEFAULT_LEASE_NAME: &str = "promshard-master";

/// What `--leader-election*` configures.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the Lease; default `POD_NAMESPACE`, then the kubeconfig's namespace.
    pub namespace: Option<String>,
    pub lease_name: String,
    /// This replica's identity in the Lease's `holderIdentity`; unique per replica.
    pub identity: String,
    /// How long a lease is valid after its last renewal: how long the standby waits after
    /// the leader died before taking over.
    pub lease_duration: Duration,
    /// The leader renews this long before the lease expires, and steps down if that renewal
    /// fails (each Lease call times out after half of it); also the clock skew between
    /// replicas that is tolerated.
    pub renew_grace: Duration,
    /// A standby's wait between failed API calls.
    pub retry_period: Duration,
}

impl Settings {
    /// The Lease API counts whole seconds; the leader must renew before expiry.
    pub fn validate(&self) -> anyhow::Result<()> {
        let whole = |d: Duration| d.subsec_nanos() == 0 && d.as_secs() > 0;
        anyhow::ensure!(
            whole(self.lease_duration) && whole(self.renew_grace),
            "--leader-election-lease-duration and --leader-election-renew-grace must be whole \
             seconds of at least 1s (the Lease API counts seconds)"
        );
        anyhow::ensure!(
            self.renew_grace < self.lease_duration,
            "--leader-election-renew-grace ({:?}) must be shorter than \
             --leader-election-lease-duration ({:?})",
            self.renew_grace,
            self.lease_duration
        );
        anyhow::ensure!(
            !self.identity.is_empty() && !self.lease_name.is_empty(),
            "--leader-election-id and --leader-election-lease-name must not be empty"
        );
        anyhow::ensure!(
            !self.retry_period.is_zero(),
            "--leader-election-retry-period must be positive"
        );
        Ok(())
    }
}

/// Runs a master under leader election: standby until it holds the lease, then `crate::lead`
/// until shutdown (releasing the lease, so a standby takes over at once) or until the lease
/// is lost (an error: the process exits, see the module docs).
pub(crate) async fn run(
    settings: Settings,
    opts: crate::Options,
    metrics: Arc<Metrics>,
    grpc: TcpListener,
    http: TcpListener,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    settings.validate()?;
    // kube retries a 503 up to 15 times with backoff, and waits up to 295s for an answer: a
    // leader stuck in such a renewal would keep leading after its lease expired. Every Lease
    // call must fail within half the grace period instead, so the leader can step down in time.
    let call_timeout = settings.renew_grace / 2;
    let client = crate::discovery::kubernetes::client::build_client_with(
        &crate::discovery::kubernetes::client::ClusterKey::Default,
        opts.kubeconfig.as_deref(),
        metrics.clone(),
        |config| {
            config.default_retry = false;
            config.connect_timeout = Some(call_timeout);
            config.read_timeout = Some(call_timeout);
            config.write_timeout = Some(call_timeout);
            config.reset_reader_on_write = true;
        },
    )
    .await
    .context("leader election: Kubernetes client")?;
    let namespace = settings
        .namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| client.default_namespace().to_string());
    tracing::info!(
        identity = %settings.identity,
        lease = %format!("{namespace}/{}", settings.lease_name),
        "leader election: standing by until this master holds the lease"
    );
    metrics.leader.set(0);
    let (leading_tx, mut leading) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let elector = tokio::spawn(elect(
        settings.clone(),
        client,
        namespace,
        leading_tx,
        release_rx,
    ));

    let (grpc, standby_grpc) = dup(grpc).context("gRPC listener")?;
    let (http, standby_http) = dup(http).context("HTTP listener")?;
    let standby = Standby::serve(&opts, metrics.clone(), standby_grpc, standby_http)?;
    let mut stop_wait = stop.clone();
    tokio::select! {
        () = until(&mut stop_wait, true) => {
            standby.stop().await;
            release(release_tx, elector).await;
            return Ok(());
        }
        r = leading.wait_for(|l| *l) => {
            r.context("leader election task ended")?;
        }
    }
    standby.stop().await;
    tracing::info!(identity = %settings.identity, "leader election: this master is now the leader");
    metrics.leader.set(1);

    let lost = until(&mut leading, false);
    let lead_stop = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    tokio::select! {
        r = crate::lead(opts, metrics.clone(), grpc, http, lead_stop) => {
            release(release_tx, elector).await;
            r
        }
        () = lost => {
            metrics.leader.set(0);
            tracing::error!(
                identity = %settings.identity,
                "leader election: lost the leader lease; exiting so that a restart comes back \
                 as a standby"
            );
            anyhow::bail!("lost the leader lease")
        }
    }
}

/// Resolves when the flag has the value (or its sender is gone). The guard `wait_for` returns
/// is not `Send`, so it must not live across a `select!`.
async fn until(rx: &mut watch::Receiver<bool>, value: bool) {
    let _ = rx.wait_for(|v| *v == value).await;
}

/// Ends the election task, which releases the lease if held: a standby takes over now rather
/// than after the lease expires.
async fn release(release_tx: watch::Sender<bool>, elector: tokio::task::JoinHandle<()>) {
    let _ = release_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(5), elector)
        .await
        .is_err()
    {
        tracing::warn!("leader election: the lease was not released in time");
    }
}

/// Keeps trying to hold the lease and publishes whether this replica leads. Ends (releasing
/// the lease if held) when `release` becomes true.
async fn elect(
    settings: Settings,
    client: kube::Client,
    namespace: String,
    leading: watch::Sender<bool>,
    mut release: watch::Receiver<bool>,
) {
    let build = || {
        LeaseManagerBuilder::new(client.clone(), &settings.lease_name)
            .with_namespace(&namespace)
            .with_identity(&settings.identity)
            // The builder keeps a random field manager otherwise; this one names the replica in
            // the Lease's managedFields.
            .with_field_manager(format!("promshard-master-{}", settings.identity))
            .with_duration(settings.lease_duration.as_secs())
            .with_grace(settings.renew_grace.as_secs())
            .build()
    };
    // The API server may be unreachable when the master starts: keep standing by.
    let manager: LeaseManager = loop {
        tokio::select! {
            () = until(&mut release, true) => return,
            built = build() => match built {
                Ok(m) => break m,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: cannot read or create the lease");
                    tokio::time::sleep(settings.retry_period).await;
                }
            }
        }
    };
    // `LeaseManager::watch` keeps reporting "leader" while renewals fail (it only logs and
    // backs off), so the renewal loop is driven here. A leader renews `renew_grace` before
    // expiry and each call fails within half of that, so stepping down on the first failed
    // renewal happens before the lease can expire and a standby take over.
    loop {
        let is_leader = *leading.borrow();
        tokio::select! {
            biased;
            () = until(&mut release, true) => {
                if is_leader && let Err(e) = manager.release().await {
                    tracing::warn!(error = %e, "leader election: releasing the lease failed");
                }
                return;
            }
            changed = manager.changed() => match changed {
                Ok(now) => {
                    leading.send_replace(now);
                }
                Err(e) if is_leader => {
                    tracing::error!(error = %e, "leader election: could not renew the lease");
                    leading.send_replace(false);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: lease API call failed");
                    tokio::time::sleep(settings.retry_period).await;
                }
            }
        }
    }
}

/// Two handles on one listening socket: the standby serves on one and drops it when this
/// replica starts leading; the leader then serves on the other. Connections queued meanwhile
/// stay in the shared backlog, so the port never closes.
fn dup(listener: TcpListener) -> std::io::Result<(TcpListener, TcpListener)> {
    let std = listener.into_std()?;
    let copy = std.try_clone()?;
    Ok((TcpListener::from_std(std)?, TcpListener::from_std(copy)?))
}

/// The standby's HTTP and gRPC servers.
struct Standby {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Standby {
    fn serve(
        opts: &crate::Options,
        metrics: Arc<Metrics>,
        grpc: TcpListener,
        http: TcpListener,
    ) -> anyhow::Result<Standby> {
        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut builder = tonic::transport::Server::builder();
        // Same TLS as the leader, so workers get a gRPC status rather than a handshake error.
        if let Some(tls) = opts.grpc_security.server_tls()? {
            builder = builder.tls_config(tls).context("gRPC TLS configuration")?;
        }
        let grpc_server = builder
            .add_service(ControlServer::new(StandbyControl))
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), stopped(stop_rx.clone()));
        let app = router(metrics);
        let http_server = axum::serve(http, app).with_graceful_shutdown(stopped(stop_rx));
        let tasks = vec![
            tokio::spawn(async move {
                if let Err(e) = grpc_server.await {
                    tracing::error!(error = %e, "standby gRPC server");
                }
            }),
            tokio::spawn(async move {
                if let Err(e) = http_server.await {
                    tracing::error!(error = %e, "standby HTTP server");
                }
            }),
        ];
        Ok(Standby { stop, tasks })
    }

    /// Stops accepting on the standby's listener handles; open keep-alive connections get a
    /// moment to close, then are cut so that clients reconnect to the leader.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route(
            "/-/ready",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not ready: standby master, not the leader.\n",
                )
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }),
        )
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "error",
                    "errorType": "unavailable",
                    "error": "standby master: not the leader",
                })),
            )
                .into_response()
        })
}

/// Rejects every control session: workers try the next master URL (or, behind a Service,
/// never get here because a standby is not ready).
struct StandbyControl;

type NoStream = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Control for StandbyControl {
    type SessionStream = NoStream;

    async fn session(
        &self,
        _request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(Status::unavailable("not the leader"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(duration: u64, grace: u64) -> Settings {
        Settings {
            namespace: None,
            lease_name: DEFAULT_LEASE_NAME.into(),
            identity: "master-0".into(),
            lease_duration: Duration::from_secs(duration),
            renew_grace: Duration::from_secs(grace),
            retry_period: Duration::from_secs(1),
        }
    }

    #[test]
    fn validate_needs_whole_seconds_and_grace_below_duration() {
        assert!(settings(15, 5).validate().is_ok());
        let err = settings(5, 5).validate().unwrap_err().to_string();
        assert!(err.contains("must be shorter"), "{err}");
        let mut s = settings(15, 5);
        s.lease_duration = Duration::from_millis(1500);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("whole"), "{err}");
    }

    #[tokio::test]
    async fn standby_is_healthy_not_ready_and_reports_not_leader() {
        let metrics = Arc::new(Metrics::new());
        metrics.leader.set(0);
        let app = router(metrics);
        let call = |path: &'static str| {
            let app = app.clone();
            async move {
                use tower::ServiceExt as _;
                let req = axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap();
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        assert_eq!(call("/-/healthy").await.0, StatusCode::OK);
        assert_eq!(call("/-/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
        let (status, body) = call("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.lines().any(|l| l == "promshard_master_leader 0"),
            "{body}"
        );
        let (status, body) = call("/api/v1/targets").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("not the leader"), "{body}");
    }
}
