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
        /// DNS server (IP:port) for dns_sd_configs; several comma-separated (default: the
        /// system's /etc/resolv.conf).
        #[arg(long = "discovery.dns-server", value_delimiter = ',')]
        dns_servers: Vec<SocketAddr>,
        /// Ask the Kubernetes API for protobuf (built-in kinds; JSON is still accepted).
        /// `--kubernetes.protobuf=false` asks for JSON only.
        #[arg(long = "kubernetes.protobuf", default_value_t = true, action = clap::ArgAction::Set)]
        kubernetes_protobuf: bool,
        /// Sync each kind with a streaming list (sendInitialEvents) where the API server has
        /// them, else LIST. `--kubernetes.streaming-lists=false` always LISTs.
        #[arg(long = "kubernetes.streaming-lists", default_value_t = true, action = clap::ArgAction::Set)]
        kubernetes_streaming_lists: bool,
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
        /// How long a moved target's new owner holds its samples until the old owner reports
        /// it delivered everything before the handoff (default: 3 scrape intervals + 10s).
        #[arg(long = "handoff.fence-timeout", value_parser = parse_duration)]
        handoff_fence_timeout: Option<Duration>,
        /// How often placement is recomputed from the workers' load reports alone
        /// (default 30s).
        #[arg(long = "placement.rebalance-interval", value_parser = parse_duration)]
        placement_rebalance_interval: Option<Duration>,
        #[command(flatten)]
        operator: MasterSecurityArgs,
        #[command(flatten)]
        election: Box<LeaderElectionArgs>,
    },
    /// Scrape the targets the master assigns and remote-write the samples.
    Worker {
        /// The master's gRPC URL; several, comma-separated, for masters with leader election
        /// outside Kubernetes (the worker tries each until one accepts it as leader).
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
        /// Series this worker accepts; the master places no more on it and spills over to
        /// other workers (0 = unlimited).
        #[arg(long = "max-series", default_value_t = 0)]
        max_series: u64,
        /// On SIGTERM, how long to wait for the master to hand every target to another worker
        /// (make-before-break) before exiting anyway.
        #[arg(long = "drain-timeout", default_value = "30s", value_parser = parse_duration)]
        drain_timeout: Duration,
        #[command(flatten)]
        security: WorkerSecurityArgs,
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

/// Config changes over the API, HTTP tokens and control-plane TLS (see the README's security
/// section).
#[derive(clap::Args)]
struct MasterSecurityArgs {
    /// Writable directory for config changes made through the API when the config file is
    /// read-only (a Kubernetes ConfigMap mount).
    #[arg(long = "config.state-dir")]
    config_state_dir: Option<PathBuf>,
    /// File with the bearer token for PUT /api/v1/config and POST /-/reload (without it,
    /// those are disabled).
    #[arg(long = "web.admin-token-file")]
    web_admin_token_file: Option<PathBuf>,
    /// File with the bearer token for the read API (/api/v1/*); without it, reads are open.
    #[arg(long = "web.read-token-file")]
    web_read_token_file: Option<PathBuf>,
    /// PEM certificate of the gRPC listener (TLS on when set, with --grpc.tls-key-file).
    #[arg(long = "grpc.tls-cert-file")]
    grpc_tls_cert_file: Option<PathBuf>,
    #[arg(long = "grpc.tls-key-file")]
    grpc_tls_key_file: Option<PathBuf>,
    /// PEM CA: workers must present a client certificate it signed, naming their --id (mTLS).
    #[arg(long = "grpc.client-ca-file")]
    grpc_client_ca_file: Option<PathBuf>,
    /// File with a shared token workers must send on the control stream.
    #[arg(long = "grpc.token-file")]
    grpc_token_file: Option<PathBuf>,
}

/// Several master replicas, one leading (see the README's high-availability section).
#[derive(clap::Args)]
struct LeaderElectionArgs {
    /// Elect one leader among master replicas on a coordination.k8s.io/v1 Lease; the others
    /// stand by (not ready, no discovery) until the leader's lease expires.
    #[arg(long = "leader-election")]
    leader_election: bool,
    /// Namespace of the Lease (default: POD_NAMESPACE, then the kubeconfig's namespace).
    #[arg(long = "leader-election-namespace")]
    namespace: Option<String>,
    #[arg(long = "leader-election-lease-name", default_value = promshard_master::leader::DEFAULT_LEASE_NAME)]
    lease_name: String,
    /// This replica's identity in the Lease (default: POD_NAME, then the host name).
    #[arg(long = "leader-election-id")]
    id: Option<String>,
    /// How long the lease holds without renewal: the failover time after a leader dies.
    #[arg(long = "leader-election-lease-duration", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// The leader renews this long before its lease expires (every duration − grace), and
    /// steps down if it cannot renew by then.
    #[arg(long = "leader-election-renew-grace", default_value = "5s", value_parser = parse_duration)]
    renew_grace: Duration,
    /// Wait between failed Lease API calls.
    #[arg(long = "leader-election-retry-period", default_value = "1s", value_parser = parse_duration)]
    retry_period: Duration,
}

impl LeaderElectionArgs {
    fn settings(self) -> Option<promshard_master::leader::Settings> {
        self.leader_election
            .then(|| promshard_master::leader::Settings {
                namespace: self.namespace,
                lease_name: self.lease_name,
                identity: self.id.unwrap_or_else(|| {
                    std::env::var("POD_NAME")
                        .ok()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(promshard::default_worker_id)
                }),
                lease_duration: self.lease_duration,
                renew_grace: self.renew_grace,
                retry_period: self.retry_period,
            })
    }
}

/// How a worker authenticates to the master.
#[derive(clap::Args)]
struct WorkerSecurityArgs {
    /// PEM CA that signed the master's certificate (TLS; use an https:// --master URL).
    #[arg(long = "master.ca-file")]
    master_ca_file: Option<PathBuf>,
    /// Client certificate and key for mTLS.
    #[arg(long = "master.cert-file")]
    master_cert_file: Option<PathBuf>,
    #[arg(long = "master.key-file")]
    master_key_file: Option<PathBuf>,
    /// Name to verify the master's certificate against (default: the --master host).
    #[arg(long = "master.server-name")]
    master_server_name: Option<String>,
    /// File with the shared control-plane token.
    #[arg(long = "master.token-file")]
    master_token_file: Option<PathBuf>,
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
                if let Some(list) = promshard_master::config_store::ignored_summary(&cfg) {
                    eprintln!("WARNING: ignored (server-only settings): {list}");
                }
                for w in cfg.warnings() {
                    eprintln!("WARNING: {w}");
                }
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
                dns_servers,
                kubernetes_protobuf,
                kubernetes_streaming_lists,
                placement_strategy,
                placement_epsilon,
                placement_settle,
                handoff_fence_timeout,
                placement_rebalance_interval,
                operator,
                election,
            } => {
                let opts = promshard_master::Options {
                    config_file: config,
                    worker_grace: worker_grace_period,
                    kubeconfig,
                    dns_servers,
                    kube_requests: promshard_master::discovery::kubernetes::reflector::Options {
                        protobuf: kubernetes_protobuf,
                        streaming_lists: kubernetes_streaming_lists,
                    },
                    placement_strategy,
                    placement_epsilon,
                    settle: placement_settle,
                    config_state_dir: operator.config_state_dir,
                    web_auth: promshard_master::http::auth::WebAuthFiles {
                        admin_token_file: operator.web_admin_token_file,
                        read_token_file: operator.web_read_token_file,
                    },
                    grpc_security: promshard_master::tls::GrpcSecurity {
                        cert_file: operator.grpc_tls_cert_file,
                        key_file: operator.grpc_tls_key_file,
                        client_ca_file: operator.grpc_client_ca_file,
                        token_file: operator.grpc_token_file,
                    },
                    leader_election: election.settings(),
                    fence_timeout: handoff_fence_timeout,
                    rebalance_interval: placement_rebalance_interval,
                };
                promshard::run_master(opts, listen_grpc, listen_http).await
            }
            Command::Worker {
                master,
                id,
                listen_http,
                data_dir,
                wal_max_bytes,
                max_series,
                drain_timeout,
                security,
            } => {
                let security = promshard_worker::tls::ClientSecurity {
                    ca_file: security.master_ca_file,
                    cert_file: security.master_cert_file,
                    key_file: security.master_key_file,
                    server_name: security.master_server_name,
                    token_file: security.master_token_file,
                };
                let opts = promshard_worker::Options {
                    master,
                    worker_id: id.unwrap_or_else(promshard::default_worker_id),
                    data_dir,
                    security,
                    wal_max_bytes,
                    max_series,
                    drain_timeout,
                };
                promshard::run_worker(opts, listen_http).await
            }
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
