//! Remote write through upstream outages, with real processes: the receiver answers 503 for a
//! minute while the worker scrapes; the worker is killed (SIGKILL) mid-outage and restarted on
//! the same data dir; a small WAL bound meets a long outage. The recording receiver counts
//! every sample per series, and the simulated targets log every scrape they served, so
//! "nothing lost" and "dropped == missing" are checked against what was really scraped.

mod remote_write_common;

use std::time::Duration;

use promshard_integration_tests::eventually::eventually;
use remote_write_common::{Cluster, SAMPLES_PER_SCRAPE, dir_bytes, match_scrapes, now_ms};

/// Fast batching and short backoff, so a healed receiver is noticed within a second.
const QUEUE: &str = "batch_send_deadline: 200ms, min_backoff: 100ms, max_backoff: 1s";

/// Every scrape a target served in `[from, to]` (ms) must have all its series at the receiver,
/// once each. Returns how many scrapes were checked.
fn assert_every_scrape_present_once(c: &Cluster, from: i64, to: i64) -> usize {
    let mut checked = 0;
    for t in c.sim.targets() {
        let addr = t.address();
        let served: Vec<i64> = t
            .scrapes()
            .iter()
            .map(|s| s.at_millis())
            .filter(|at| (from..=to).contains(at))
            .collect();
        let up = c.up_of(&addr);
        let matched = match_scrapes(&served, &up);
        let lost: Vec<i64> = served
            .iter()
            .zip(&matched)
            .filter(|(_, m)| m.is_none())
            .map(|(at, _)| *at)
            .collect();
        assert!(
            lost.is_empty(),
            "{addr}: scrapes served at {lost:?} never arrived"
        );
        let series: Vec<_> = c
            .receiver
            .series()
            .into_iter()
            .filter(|l| l.get("instance") == Some(&addr))
            .collect();
        assert_eq!(series.len(), SAMPLES_PER_SCRAPE, "{addr}: {series:?}");
        for l in &series {
            let samples = c.receiver.samples(l);
            for ts in matched.iter().flatten() {
                let n = samples.iter().filter(|(t, _)| t == ts).count();
                assert_eq!(n, 1, "{l:?}: {n} samples at {ts}");
            }
            // Stored samples are strictly increasing by construction; a sample that came
            // out of order would be a violation, checked below.
            assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
        }
        checked += served.len();
    }
    c.receiver.assert_no_violations();
    assert_eq!(c.receiver.duplicates(), [], "samples delivered twice");
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_503_outage_loses_nothing_and_keeps_order() {
    let c = Cluster::start(3, QUEUE, "", &[]).await;
    c.wait_for_first_samples().await;
    c.receiver.set_response(503);
    let from = now_ms();
    let requests_before = c.receiver.requests();
    // The outage itself: its length is the scenario, not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let refused = c.receiver.requests() - requests_before;
    c.receiver.set_response(204);
    let to = now_ms();
    assert!(
        refused >= 5,
        "only {refused} requests during the outage: not retrying?"
    );
    c.wait_until_delivered_past(to, Duration::from_secs(60))
        .await;

    let checked = assert_every_scrape_present_once(&c, from, to);
    eprintln!(
        "outage: {checked} scrapes ({} samples) served during 60 s of 503, {refused} requests refused; all delivered once, in order",
        checked * SAMPLES_PER_SCRAPE
    );
    // One scrape per second per target; a loaded machine may skip a few ticks.
    assert!(
        checked >= 3 * 30,
        "only {checked} scrapes during the outage"
    );
    assert!(
        c.metric("prometheus_remote_storage_samples_retried_total")
            .await
            > 0.0
    );
    assert_eq!(
        c.metric("promshard_remote_write_wal_dropped_samples_total")
            .await,
        0.0
    );
    assert_eq!(
        c.metric("prometheus_remote_storage_samples_failed_total")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_outage_and_restart_on_the_same_wal_loses_nothing() {
    let mut c = Cluster::start(3, QUEUE, "", &[]).await;
    c.wait_for_first_samples().await;
    c.receiver.set_response(503);
    let from = now_ms();
    let base = c.sim.total_scrapes();
    eventually(
        Duration::from_secs(30),
        "five scrapes per target into the outage",
        || async {
            let n = c.sim.total_scrapes() - base;
            if n >= 15 {
                Ok(())
            } else {
                Err(format!("{n} scrapes"))
            }
        },
    )
    .await;
    let killed_at = now_ms();
    c.crash_and_restart_worker().await;
    let restarted_at = now_ms();
    let base = c.sim.total_scrapes();
    eventually(
        Duration::from_secs(30),
        "the restarted worker to scrape through the outage",
        || async {
            let n = c.sim.total_scrapes() - base;
            if n >= 9 {
                Ok(())
            } else {
                Err(format!("{n} scrapes"))
            }
        },
    )
    .await;
    c.receiver.set_response(204);
    let to = now_ms();
    c.wait_until_delivered_past(to, Duration::from_secs(60))
        .await;

    // A scrape the killed process was answering in its last instant never became samples
    // (the WAL append follows the response by microseconds); everything before is on disk.
    let before = assert_every_scrape_present_once(&c, from, killed_at - 250);
    let after = assert_every_scrape_present_once(&c, restarted_at, to);
    assert!(
        before >= 9 && after >= 9,
        "{before} scrapes before the kill, {after} after"
    );
    assert_eq!(
        c.metric("promshard_remote_write_wal_dropped_samples_total")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_wal_bound_drops_the_oldest_and_counts_exactly_what_is_missing() {
    const BOUND: u64 = 16 * 1024;
    // A small in-memory queue (capacity, batch size), so the backlog is on disk where the
    // bound applies rather than in the shards' buffers.
    let queue = format!("{QUEUE}, capacity: 20, max_samples_per_send: 20");
    let c = Cluster::start(3, &queue, "", &["--wal.max-bytes", "16KiB"]).await;
    c.wait_for_first_samples().await;
    c.receiver.set_response(503);
    let started = std::time::Instant::now();
    let wal = c.wal_dir();
    // Keep the outage going until the bound has dropped thirty scrapes' worth, watching the
    // disk all along.
    let mut max_disk = 0;
    let mut dropped;
    loop {
        max_disk = max_disk.max(dir_bytes(&wal));
        dropped = c
            .metric("promshard_remote_write_wal_dropped_samples_total")
            .await;
        if dropped >= (30 * SAMPLES_PER_SCRAPE) as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "after 120 s of outage only {dropped} samples dropped"
        );
        tokio::time::sleep(Duration::from_millis(75)).await;
    }
    c.receiver.set_response(204);
    let healed = now_ms();
    c.wait_until_delivered_past(healed, Duration::from_secs(60))
        .await;
    let dropped_final = c
        .metric("promshard_remote_write_wal_dropped_samples_total")
        .await;
    // The bound may still drop a scrape or two between the heal and the shard's next retry
    // (up to max_backoff later): the WAL is full until then.
    assert!(dropped_final >= dropped);
    assert!(
        max_disk > 0 && max_disk <= BOUND,
        "WAL used {max_disk} bytes, bound {BOUND}"
    );

    // What is missing, judged from the scrapes the targets served.
    let mut missing_scrapes = 0;
    for t in c.sim.targets() {
        let served: Vec<i64> = t
            .scrapes()
            .iter()
            .map(|s| s.at_millis())
            .filter(|at| *at <= healed)
            .collect();
        let matched = match_scrapes(&served, &c.up_of(&t.address()));
        let missing: Vec<usize> = matched
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_none())
            .map(|(i, _)| i)
            .collect();
        // The oldest unsent data goes, the newest stays: what was delivered before the outage
        // is there, and so are the last scrapes before the heal (the bound keeps about six per
        // target). Missing scrapes are one run, or two when the bound also cut into the
        // segment the reader was draining right after the heal (it keeps deleting the oldest
        // unread data until the backlog is gone).
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            let runs = 1 + missing.windows(2).filter(|w| w[1] != w[0] + 1).count();
            assert!(
                runs <= 2,
                "{}: missing scrapes in {runs} runs: {missing:?}",
                t.address()
            );
            assert!(
                *first > 0,
                "{}: pre-outage scrapes missing: {missing:?}",
                t.address()
            );
            assert!(
                *last + 3 < served.len(),
                "{}: the newest scrapes before the heal are missing: {missing:?} of {}",
                t.address(),
                served.len()
            );
        }
        missing_scrapes += missing.len();
    }
    eprintln!(
        "bound: WAL peaked at {max_disk} of {BOUND} bytes; {missing_scrapes} scrapes missing, \
         {dropped_final} samples counted dropped"
    );
    assert_eq!(
        (missing_scrapes * SAMPLES_PER_SCRAPE) as f64,
        dropped_final,
        "dropped counter vs samples missing at the receiver"
    );
    c.receiver.assert_no_violations();
    assert_eq!(c.receiver.duplicates(), []);
}
