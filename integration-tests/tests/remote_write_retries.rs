//! The remote-write retry rules, checked on the wire with real processes: a 400 is dropped
//! (counted, its body logged as sent) and never re-sent; 5xx, 429 and network errors are
//! retried with exponentially growing delays and a `Retry-Attempt` header; `Retry-After` is
//! honoured; with `retry_on_http_429: false` a 429 is dropped like a 400; an answer slower than
//! `remote_timeout` is retried.
//!
//! One shard (`max_shards: 1`), so requests are strictly sequential and the receiver's arrival
//! log is the sender's retry schedule.

mod remote_write_common;

use std::time::{Duration, SystemTime};

use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::receiver::{ReceiverResponse, RequestRecord};
use remote_write_common::{Cluster, match_scrapes, now_ms};

const QUEUE: &str =
    "batch_send_deadline: 100ms, min_backoff: 200ms, max_backoff: 5s, min_shards: 1, max_shards: 1";

fn ms_between(a: SystemTime, b: SystemTime) -> i64 {
    b.duration_since(a).map_or(0, |d| d.as_millis() as i64)
}

/// Waits until the log holds, from request number `first` on, a request answered
/// `statuses[0]` followed by `statuses.len()` more, and returns those. (A request may slip in
/// between reading `first` and queueing the responses; it is skipped.)
async fn run_of(c: &Cluster, first: u64, statuses: &[u16]) -> Vec<RequestRecord> {
    eventually(
        Duration::from_secs(30),
        &format!("{statuses:?} then a success from request #{first}"),
        || async {
            let mut log: Vec<RequestRecord> = c
                .receiver
                .request_log()
                .into_iter()
                .filter(|r| r.number >= first)
                .collect();
            log.sort_by_key(|r| r.number);
            let Some(start) = log.iter().position(|r| r.status == statuses[0]) else {
                return Err(format!("no {} yet in {} requests", statuses[0], log.len()));
            };
            let log = &log[start..];
            if log.len() <= statuses.len() {
                return Err(format!("{} requests so far", log.len()));
            }
            Ok(log[..=statuses.len()].to_vec())
        },
    )
    .await
}

fn attempts(run: &[RequestRecord]) -> Vec<Option<String>> {
    run.iter()
        .map(|r| r.header("retry-attempt").map(str::to_owned))
        .collect()
}

/// Delays between consecutive arrivals, ms.
fn gaps(run: &[RequestRecord]) -> Vec<i64> {
    run.windows(2)
        .map(|w| ms_between(w[0].at, w[1].at))
        .collect()
}

fn next_request(c: &Cluster) -> u64 {
    c.receiver.requests() + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_dropped_while_5xx_429_and_network_errors_are_retried_with_growing_delays() {
    let c = Cluster::start(1, QUEUE, "", &[]).await;
    c.wait_for_first_samples().await;

    // 400: dropped at once, counted, the body logged as the receiver sent it, never re-sent.
    // (A 400 that names an out-of-order sample is re-sent in parts instead: handoff_order.rs
    // and the worker's gate_tests.rs.)
    let first = next_request(&c);
    c.receiver.push_response(
        ReceiverResponse::status(400).with_body("invalid label name \"0x\" {job=\"sim\"}"),
    );
    let run = run_of(&c, first, &[400]).await;
    assert_eq!(run[0].status, 400);
    assert_eq!(
        attempts(&run),
        [None, None],
        "the request after a 400 is a new batch, not a retry"
    );
    let rejected = run[0].samples as f64;
    assert!(rejected > 0.0);
    eventually(
        Duration::from_secs(10),
        "the 400's samples counted as failed",
        || async {
            let failed = c
                .metric("prometheus_remote_storage_samples_failed_total")
                .await;
            if failed == rejected {
                Ok(())
            } else {
                Err(format!("failed_total {failed}, want {rejected}"))
            }
        },
    )
    .await;
    assert!(
        c.worker
            .log_contents()
            .contains("invalid label name \"0x\" {job=\"sim\"}"),
        "the 400's body is not in the worker log as sent"
    );

    // 5xx: retried, the delay doubling from min_backoff, Retry-Attempt counting up.
    let first = next_request(&c);
    for _ in 0..4 {
        c.receiver.push_response(ReceiverResponse::status(503));
    }
    let run = run_of(&c, first, &[503, 503, 503, 503]).await;
    let statuses: Vec<u16> = run.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 503, 503, 204]);
    assert_eq!(
        attempts(&run),
        [
            None,
            Some("1".into()),
            Some("2".into()),
            Some("3".into()),
            Some("4".into())
        ]
    );
    let g = gaps(&run);
    eprintln!("retry delays after {}: {g:?} ms", run[0].status);
    assert!(
        g.windows(2).all(|w| w[0] < w[1]),
        "delays do not grow: {g:?} ms"
    );
    // The retried request is the same batch: same size.
    assert!(run.iter().all(|r| r.samples == run[0].samples));

    // 429 (retry_on_http_429 defaults to true here): the same schedule.
    let first = next_request(&c);
    for _ in 0..3 {
        c.receiver.push_response(ReceiverResponse::status(429));
    }
    let run = run_of(&c, first, &[429, 429, 429]).await;
    let statuses: Vec<u16> = run.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 429, 204]);
    let g = gaps(&run);
    eprintln!("retry delays after {}: {g:?} ms", run[0].status);
    assert!(
        g.windows(2).all(|w| w[0] < w[1]),
        "delays do not grow: {g:?} ms"
    );
    assert_eq!(run[3].header("retry-attempt"), Some("3"));

    // Retry-After overrides the backoff: the sender waits at least that long.
    let first = next_request(&c);
    c.receiver
        .push_response(ReceiverResponse::status(503).with_header("Retry-After", "2"));
    let run = run_of(&c, first, &[503]).await;
    let waited = gaps(&run)[0];
    assert!(waited >= 2000, "retried {waited} ms after Retry-After: 2");
    assert_eq!(run[1].header("retry-attempt"), Some("1"));

    // Network errors (the receiver gone): retried until it is back, nothing lost.
    let retried = c
        .metric("prometheus_remote_storage_samples_retried_total")
        .await;
    c.receiver.set_down().await;
    let down_from = now_ms();
    eventually(
        Duration::from_secs(30),
        "retries against the closed port",
        || async {
            let now = c
                .metric("prometheus_remote_storage_samples_retried_total")
                .await;
            if now > retried {
                Ok(())
            } else {
                Err(format!("retried_total still {now}"))
            }
        },
    )
    .await;
    c.receiver.set_up().await;
    let up_at = now_ms();
    c.wait_until_delivered_past(up_at, Duration::from_secs(30))
        .await;
    let t = &c.sim.targets()[0];
    let served: Vec<i64> = t
        .scrapes()
        .iter()
        .map(|s| s.at_millis())
        .filter(|at| (down_from..=up_at).contains(at))
        .collect();
    let matched = match_scrapes(&served, &c.up_of(&t.address()));
    assert!(
        matched.iter().all(Option::is_some),
        "scrapes lost to the network errors: {served:?} vs {matched:?}"
    );
    c.receiver.assert_no_violations();
    assert_eq!(c.receiver.duplicates(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retry_on_http_429_false_a_429_is_dropped() {
    let queue = format!("{QUEUE}, retry_on_http_429: false");
    let c = Cluster::start(1, &queue, "", &[]).await;
    c.wait_for_first_samples().await;
    let first = next_request(&c);
    c.receiver.push_response(ReceiverResponse::status(429));
    let run = run_of(&c, first, &[429]).await;
    assert_eq!(attempts(&run), [None, None]);
    let rejected = run[0].samples as f64;
    eventually(
        Duration::from_secs(10),
        "the 429's samples counted as failed",
        || async {
            let failed = c
                .metric("prometheus_remote_storage_samples_failed_total")
                .await;
            if failed == rejected {
                Ok(())
            } else {
                Err(format!("failed_total {failed}, want {rejected}"))
            }
        },
    )
    .await;
}

/// `remote_timeout` bounds each attempt: an answer slower than it counts as a network error and
/// the batch is retried. The slow receiver had stored the first copy, so the retry arrives as
/// duplicates with identical values: remote write is at-least-once, as in Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_remote_timeout_is_retried() {
    let c = Cluster::start(1, QUEUE, "    remote_timeout: 1s\n", &[]).await;
    c.wait_for_first_samples().await;
    let first = next_request(&c);
    c.receiver
        .push_response(ReceiverResponse::status(204).with_delay(Duration::from_secs(3)));
    // The sender hangs up on the slow request, so the receiver never finishes (or logs) it;
    // its retry is the first request with a Retry-Attempt header.
    let retry = eventually(Duration::from_secs(30), "the retry", || async {
        c.receiver
            .request_log()
            .into_iter()
            .find(|r| r.number > first && r.header("retry-attempt").is_some())
            .ok_or_else(|| format!("{} requests", c.receiver.requests()))
    })
    .await;
    assert_eq!(retry.header("retry-attempt"), Some("1"));
    assert_eq!(retry.status, 204);
    let duplicates = c.receiver.duplicates();
    assert_eq!(duplicates.len(), retry.samples, "{duplicates:?}");
    assert!(
        duplicates
            .iter()
            .all(|d| d.first.to_bits() == d.again.to_bits())
    );
    c.receiver.assert_no_violations();
}
