//! Process-level wiring shared by the CLI: logging, binding listeners, signal handling, and the
//! `demo` command.
//!
//! Servers print exactly one line to stdout once their listeners are bound,
//! `listening grpc=ADDR http=ADDR`, so a launcher that passed port 0 learns the real ports
//! without racing; logs go to stderr.

pub mod demo;

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} listener on {addr}"))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn run_master(
    opts: promshard_master::Options,
    grpc: SocketAddr,
    http: SocketAddr,
) -> anyhow::Result<()> {
    // Fail on a bad config before binding anything, with the job and field named.
    promshard_master::load_config(&opts.config_file)?;
    let grpc = bind(grpc, "gRPC").await?;
    let http = bind(http, "HTTP").await?;
    println!(
        "listening grpc={} http={}",
        grpc.local_addr()?,
        http.local_addr()?
    );
    promshard_master::run(opts, grpc, http, shutdown_signal()).await
}

pub async fn run_worker(opts: promshard_worker::Options, http: SocketAddr) -> anyhow::Result<()> {
    let http = bind(http, "HTTP").await?;
    println!("listening http={}", http.local_addr()?);
    tracing::info!(worker_id = %opts.worker_id, master = %opts.master, "starting worker");
    promshard_worker::run(opts, http, shutdown_signal()).await
}

/// The host name, which is stable for a StatefulSet pod.
pub fn default_worker_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("worker-{}", std::process::id()))
}
