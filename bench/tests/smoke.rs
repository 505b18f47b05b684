//! The whole benchmark in miniature (2 small targets, 1 s interval, a 2 s window), so the harness
//! cannot rot between the long runs: both systems start, scrape the farm and deliver to the sink,
//! and every figure the table prints is computed from real readings. No timing is asserted.

use std::time::Duration;

use promshard_bench::fixture::FixtureKind;
use promshard_bench::report;
use promshard_bench::run::{self, Options, REPORT_SERIES, System};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_systems_deliver_to_the_sink_and_are_measured() {
    let opts = Options {
        targets: 2,
        interval: Duration::from_secs(1),
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
        fixture: FixtureKind::Node,
        systems: vec![System::Promshard, System::Prometheus],
        promshard_bin: promshard_integration_tests::promshard_bin(),
        max_samples_per_send: None,
        // The VictoriaMetrics peers are opt-in binaries (docs/BENCHMARKS.md); the smoke test
        // runs without them.
        vmagent_bin: None,
        victoria_metrics_bin: None,
    };
    let results = run::run(&opts).await.unwrap();
    assert_eq!(
        results.iter().map(|m| m.system).collect::<Vec<_>>(),
        [System::Promshard, System::Prometheus]
    );
    for m in &results {
        assert_eq!(m.active_series, 2 * (507 + REPORT_SERIES), "{m:?}");
        assert!(m.sink.samples > 0, "nothing delivered: {m:?}");
        assert_eq!(m.sink.rejected, 0, "{m:?}");
        assert!(m.scrapes > 0, "{m:?}");
        // VmHWM is at least every VmRSS reading, so at least their mean.
        assert!(
            m.total.steady_rss > 0 && m.total.peak_rss >= m.total.steady_rss,
            "{m:?}"
        );
    }
    let promshard = &results[0];
    assert_eq!(promshard.pids.len(), 2, "master and worker");
    let worker = promshard.worker.expect("the worker is measured alone");
    assert!(worker.steady_rss > 0 && worker.steady_rss < promshard.total.steady_rss);
    let table = report::table(&results);
    assert!(
        table.contains("| CPU-seconds per million samples |"),
        "{table}"
    );
    assert!(!table.contains("n/a"), "{table}");
}
