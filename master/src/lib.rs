//! The promshard master: loads `prometheus.yml`, discovers targets, relabels them, places them
//! on workers and pushes each worker its assignment over the control-plane stream.
//!
//! `run` takes already-bound listeners and a shutdown future, so tests and the `demo` command
//! can bind `127.0.0.1:0` and learn the real ports before anything starts.

pub mod apply;
pub mod config_store;
pub mod control;
pub mod coordinator;
pub mod discovery;
pub mod explain;
pub mod fences;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod targets;
pub mod tls;
pub mod ui;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use promshard_model::config::Config;
use promshard_proto::control::control_server::ControlServer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

pub struct Options {
    pub config_file: PathBuf,
    /// How long a disconnected worker keeps its targets before they are reassigned.
    pub worker_grace: Duration,
    /// Placement strategy name (see `placement::STRATEGIES`) and its load bound ε.
    pub placement_strategy: String,
    pub placement_epsilon: f64,
    /// How long a starting master waits for workers before placing (default: the grace period).
    pub settle: Option<Duration>,
    /// Kubeconfig for `kubernetes_sd_configs` without `api_server`/`kubeconfig_file`
    /// (default: in-cluster config, then `KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// DNS servers for `dns_sd_configs` (default: the system's `/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Whether the Kubernetes watches ask for protobuf and try streaming lists (both by
    /// default; an operator turns one off for an API server or proxy that mishandles it).
    pub kube_requests: discovery::kubernetes::reflector::Options,
    /// Where API config changes go when the config file is read-only (see `config_store`).
    pub config_state_dir: Option<PathBuf>,
    /// Bearer tokens for the HTTP API (see `http::auth`).
    pub web_auth: http::auth::WebAuthFiles,
    /// TLS, mTLS and token on the control plane (see `tls`).
    pub grpc_security: tls::GrpcSecurity,
    /// Several replicas with one leader (`--leader-election`); `None`: this master leads.
    pub leader_election: Option<leader::Settings>,
    /// `--handoff.fence-timeout`: how long a moved target's new owner holds its samples for
    /// the old owner's delivery report (`None`: three scrape intervals plus ten seconds).
    pub fence_timeout: Option<Duration>,
    /// `--placement.rebalance-interval`: how often placement is recomputed from load reports
    /// alone (default 30 s).
    pub rebalance_interval: Option<Duration>,
}

/// Reads and validates a config file; the error names the file, the job and the field.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    config_store::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
}

pub async fn run(
    opts: Options,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(metrics::Metrics::new());
    let Some(election) = opts.leader_election.clone() else {
        metrics.leader.set(1);
        return lead(opts, metrics, grpc, http, shutdown).await;
    };
    // Both phases (standby, then leader) end on the one shutdown signal.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    leader::run(election, opts, metrics, grpc, http, stop_rx).await
}

/// A leading master: discovery, placement, the control plane and the full HTTP API.
async fn lead(
    opts: Options,
    metrics: Arc<metrics::Metrics>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let boot = config_store::Boot::load(&opts.config_file, opts.config_state_dir.as_deref())?;
    let config = boot.current.config.clone();
    let web_auth = Arc::new(http::auth::WebAuth::load(&opts.web_auth)?);
    let grpc_tls = opts.grpc_security.server_tls()?;
    let grpc_auth = opts.grpc_security.auth()?;
    let (events_tx, events_rx) = mpsc::channel(4096);
    let strategy = placement::by_name(&opts.placement_strategy, opts.placement_epsilon)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown placement strategy {:?} (one of {:?})",
                opts.placement_strategy,
                placement::STRATEGIES
            )
        })?;
    let settings = coordinator::Settings {
        grace: opts.worker_grace,
        strategy,
        // At least a worker's longest reconnect backoff (5 s, jittered) plus a margin, or a
        // restarted master would place before every worker is back and move targets.
        settle: opts
            .settle
            .unwrap_or(opts.worker_grace.max(Duration::from_secs(7))),
        fence_timeout: opts
            .fence_timeout
            .map_or(fences::FenceTimeout::Auto, fences::FenceTimeout::Fixed),
        rebalance_every: opts
            .rebalance_interval
            .unwrap_or(coordinator::REBALANCE_EVERY),
    };
    let loads = control::Loads::default();
    let (coordinator, view) =
        coordinator::Coordinator::new(config.clone(), settings, metrics.clone(), loads.clone());
    let coordinator = tokio::spawn(coordinator.run(events_rx));

    // Discovery runs inside the applier, which restarts it for every new config.
    let (cr_status_tx, cr_status) = tokio::sync::watch::channel(Default::default());
    let applier = apply::MasterApplier::start(
        config.clone(),
        discovery::DiscoverySettings {
            kubeconfig: opts.kubeconfig.clone(),
            dns_servers: opts.dns_servers.clone(),
            kube_requests: opts.kube_requests,
        },
        metrics.clone(),
        events_tx.clone(),
        view.clone(),
        cr_status_tx,
    )
    .await?;
    let store = Arc::new(config_store::ConfigStore::new(boot, Box::new(applier)));
    metrics.config_changed(true, store.current().info.version);
    let sighup = tokio::spawn(http::config::reload_on_sighup(
        store.clone(),
        metrics.clone(),
    ));

    let svc = ControlServer::new(control::ControlService::new(events_tx, loads.clone()))
        .max_decoding_message_size(promshard_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(promshard_proto::MAX_MESSAGE_BYTES);
    let svc = tonic::service::interceptor::InterceptedService::new(svc, grpc_auth);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // A graceful gRPC shutdown waits for every open stream, and worker sessions last until the
    // coordinator drops their outboxes: stop it first, or a master with workers never exits.
    tokio::spawn({
        let coordinator = coordinator.abort_handle();
        let stop = stopped(stop_rx.clone());
        async move {
            stop.await;
            coordinator.abort();
        }
    });

    let mut grpc_builder = tonic::transport::Server::builder();
    if let Some(tls) = grpc_tls {
        grpc_builder = grpc_builder
            .tls_config(tls)
            .context("gRPC TLS configuration")?;
    }
    let grpc_server = grpc_builder
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .tcp_nodelay(true)
        .add_service(svc)
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), stopped(stop_rx.clone()));
    let app = http::router(http::AppState {
        view,
        loads,
        metrics,
        store: store.clone(),
        cr_status,
        auth: web_auth,
        placement: explain::PlacementInfo {
            strategy: opts.placement_strategy.clone(),
            epsilon: opts.placement_epsilon,
        },
    });
    let http_server = axum::serve(http, app).with_graceful_shutdown(stopped(stop_rx));

    let (g, h) = tokio::join!(grpc_server, http_server);
    store.stop().await;
    sighup.abort();
    coordinator.abort();
    g.context("gRPC server")?;
    h.context("HTTP server")?;
    Ok(())
}
