//! The one `promshard` binary: `master`, `worker`, `demo`, `check config`. It only wires;
//! behaviour lives in the crates and in `lib.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "promshard",
    version,
    about = "A two-tier, Prometheus-compatible metrics collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Discover, relabel and place targets; push assignments to workers.
    Master {
        /// A prometheus.yml-format configuration file.
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9400")]
        listen_grpc: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:9401")]
        listen_http: SocketAddr,
        /// How long a disconnected worker keeps its targets before they are reassigned.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        worker_grace_period: Duration,
        /// Kubeconfig for kubernetes_sd_configs (default: in-cluster, then KUBECONFIG).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Placement strategy: bounded-rendezvous (load-aware) or consistent-hash (baseline).
        #[arg(long = "placement.strategy", default_value = "bounded-rendezvous")]
        placement_strategy: String,
        /// No worker holds more than (1 + epsilon) × the mean series load.
        #[arg(long = "placement.epsilon", default_value_t = 0.1)]
        placement_epsilon: f64,
        /// After start, wait this long for workers to reconnect before placing targets
        /// (default: the worker grace period).
        #[arg(long = "placement.settle", value_parser = parse_duration)]
        placement_settle: Option<Duration>,
    },
    /// Scrape the targets the master assigns and remote-write the samples.
    Worker {
        /// The master's gRPC URL.
        #[arg(long, default_value = "http://127.0.0.1:9400")]
        master: String,
        /// Worker identity (default: the host name, which is stable for a StatefulSet pod).
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "127.0.0.1:9402")]
        listen_http: SocketAddr,
        /// Where the worker keeps its assignment (and its WAL).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Size bound of each remote_write endpoint's WAL (e.g. 512MiB); past it the oldest
        /// unsent data is dropped and counted.
        #[arg(long = "wal.max-bytes", default_value = "1GiB", value_parser = parse_bytes)]
        wal_max_bytes: u64,
    },
    /// Run a master, two workers and simulated targets locally, and show what flows.
    Demo {
        /// Remote-write URL of a real receiver (e.g. Prometheus with
        /// --web.enable-remote-write-receiver); default: an embedded recording receiver.
        #[arg(long)]
        remote_write: Option<String>,
        /// Number of simulated targets.
        #[arg(long, default_value_t = 6)]
        targets: usize,
        /// Stop after this long (default: run until Ctrl-C).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Validate things.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Validate a prometheus.yml-format configuration file.
    Config { file: PathBuf },
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    promshard_model::config::ByteSize::parse(s).map(|b| b.0)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    promshard_model::PromDuration::parse(s).map(Into::into)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Check {
        what: CheckCommand::Config { file },
    } = &cli.command
    {
        return match promshard_master::load_config(file) {
            Ok(cfg) => {
                println!(
                    "SUCCESS: {} is valid prometheus config file syntax ({} scrape configs, {} remote write)",
                    file.display(),
                    cfg.scrape_configs.len(),
                    cfg.remote_write.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("FAILED: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    promshard::init_logging();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Master {
                config,
                listen_grpc,
                listen_http,
                worker_grace_period,
                kubeconfig,
                placement_strategy,
                placement_epsilon,
                placement_settle,
            } => {
                let opts = promshard_master::Options {
                    config_file: config,
                    worker_grace: worker_grace_period,
                    kubeconfig,
                    placement_strategy,
                    placement_epsilon,
                    settle: placement_settle,
                };
                promshard::run_master(opts, listen_grpc, listen_http).await
            }
            Command::Worker {
                master,
                id,
                listen_http,
                data_dir,
                wal_max_bytes,
            } => promshard::run_worker(master, id, listen_http, data_dir, wal_max_bytes).await,
            Command::Demo {
                remote_write,
                targets,
                duration,
            } => promshard::demo::run(remote_write, targets, duration).await,
            Command::Check { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
