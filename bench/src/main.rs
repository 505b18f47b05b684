//! `promshard-bench`: wires the command line to [`promshard_bench::run`] and prints the table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use promshard_bench::fixture::FixtureKind;
use promshard_bench::run::{Options, System};
use promshard_bench::{report, run};

/// promshard vs vmagent and Prometheus agent: CPU per sample, RSS per series, samples delivered.
#[derive(Parser)]
#[command(name = "promshard-bench")]
struct Cli {
    /// Number of simulated targets (one listener each on 127.0.0.1).
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// Scrape interval (and timeout) for both systems.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// Time after the first delivered sample that is not measured.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    warmup: Duration,
    /// Measurement window per system.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    duration: Duration,
    /// What each target serves.
    #[arg(long, value_enum, default_value_t = FixtureKind::Cadvisor)]
    fixture: FixtureKind,
    /// Run only these systems (default: promshard, vmagent when --vmagent-bin is given, then
    /// prometheus).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<System>,
    /// vmagent, built from the VictoriaMetrics repository (see docs/BENCHMARKS.md).
    #[arg(long, env = "VMAGENT_BIN")]
    vmagent_bin: Option<PathBuf>,
    /// A single-node victoria-metrics binary: every system remote-writes into it and samples
    /// delivered are its `vm_rows_inserted_total{type="promremotewrite"}` (default: an
    /// in-process null sink).
    #[arg(long, env = "VICTORIA_METRICS_BIN")]
    victoria_metrics_bin: Option<PathBuf>,
    /// The promshard binary (default: `promshard` next to this executable, i.e.
    /// target/release/promshard; build it first with `cargo build --release --bin promshard`).
    #[arg(long, env = "PROMSHARD_BIN")]
    promshard_bin: Option<PathBuf>,
    /// `queue_config.max_samples_per_send` for both systems (default: each one's own,
    /// promshard 2,000 as Prometheus 3, Prometheus 2.42 500).
    #[arg(long)]
    max_samples_per_send: Option<u32>,
    /// Run the whole comparison this many times and end with the median of each figure and
    /// ratio (a shared machine's noise moves single runs by 10–20 %).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    promshard_model::PromDuration::parse(s).map(Into::into)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let promshard_bin = cli.promshard_bin.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("promshard")))
            .unwrap_or_else(|| PathBuf::from("promshard"))
    });
    let systems = if cli.only.is_empty() {
        let mut all = vec![System::Promshard];
        if cli.vmagent_bin.is_some() {
            all.push(System::Vmagent);
        }
        all.push(System::Prometheus);
        all
    } else {
        cli.only
    };
    if systems.contains(&System::Promshard) && !promshard_bin.is_file() {
        eprintln!(
            "error: no promshard binary at {}: run `cargo build --release --bin promshard` first \
             (or pass --promshard-bin)",
            promshard_bin.display()
        );
        return ExitCode::FAILURE;
    }
    let opts = Options {
        targets: cli.targets,
        interval: cli.interval,
        warmup: cli.warmup,
        duration: cli.duration,
        fixture: cli.fixture,
        systems,
        promshard_bin,
        max_samples_per_send: cli.max_samples_per_send,
        vmagent_bin: cli.vmagent_bin,
        victoria_metrics_bin: cli.victoria_metrics_bin,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut all = Vec::new();
    for round in 1..=cli.rounds {
        let results = match runtime.block_on(run::run(&opts)) {
            Ok(results) => results,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let of = if cli.rounds > 1 {
            format!("round {round} of {}: ", cli.rounds)
        } else {
            String::new()
        };
        println!(
            "{of}{} targets × {:?} fixture, interval {:?}, warm-up {:?}, window {:?}\n",
            opts.targets, opts.fixture, opts.interval, opts.warmup, opts.duration
        );
        println!("{}", report::table(&results));
        println!("{}", report::conditions(&results));
        all.push(results);
    }
    if cli.rounds > 1 {
        println!("all rounds (system totals; promshard = master + worker)\n");
        print!("{}", report::rounds(&all));
    }
    ExitCode::SUCCESS
}
