//! The delivery gate through the real queue manager, WAL and write client, against an
//! in-process receiver that judges order as a TSDB with an out-of-order window of 0 does
//! (Prometheus's `memSeries.appendable`): a sample older than the newest of its series, or at
//! the same time with another value, fails the whole request with a 400 "out of order sample".
//! The multi-process tests do the same against the real Prometheus 2.42.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promshard_model::Labels;
use promshard_model::config::Config;
use promshard_proto::prometheus::WriteRequest;
use prost::Message;

use super::*;
use crate::gate::{DeliveryGate, tag_of};

/// What the strict receiver stored and refused.
#[derive(Default)]
struct Tsdb {
    /// Series (as `name{labels}` text) → stored samples, in arrival order.
    series: BTreeMap<String, Vec<(i64, f64)>>,
    requests: u64,
    refused: u64,
}

#[derive(Clone, Default)]
struct Strict(Arc<Mutex<Tsdb>>);

impl Strict {
    async fn start(&self) -> String {
        let state = self.clone();
        let app = axum::Router::new().route(
            "/write",
            axum::routing::post(move |body: axum::body::Bytes| {
                let state = state.clone();
                async move { state.write(&body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/write")
    }

    fn write(&self, body: &[u8]) -> (axum::http::StatusCode, &'static str) {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        let req = WriteRequest::decode(raw.as_slice()).unwrap();
        let mut db = self.0.lock().unwrap();
        db.requests += 1;
        let mut staged: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        for ts in &req.timeseries {
            let key: Vec<String> = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            let key = key.join(",");
            let stored = db.series.get(&key).and_then(|s| s.last().copied());
            let last = staged.get(&key).and_then(|s| s.last().copied()).or(stored);
            let mut last = last;
            for s in &ts.samples {
                if let Some((t, v)) = last
                    && (s.timestamp < t || (s.timestamp == t && s.value.to_bits() != v.to_bits()))
                {
                    db.refused += 1;
                    return (axum::http::StatusCode::BAD_REQUEST, "out of order sample\n");
                }
                if last.is_none_or(|(t, _)| s.timestamp > t) {
                    staged
                        .entry(key.clone())
                        .or_default()
                        .push((s.timestamp, s.value));
                }
                last = Some((s.timestamp, s.value));
            }
        }
        for (k, v) in staged {
            db.series.entry(k).or_default().extend(v);
        }
        (axum::http::StatusCode::NO_CONTENT, "")
    }

    fn samples(&self, series: &str) -> Vec<i64> {
        self.0
            .lock()
            .unwrap()
            .series
            .get(series)
            .map(|s| s.iter().map(|(t, _)| *t).collect())
            .unwrap_or_default()
    }

    fn refused(&self) -> u64 {
        self.0.lock().unwrap().refused
    }
}

fn config(url: &str) -> Config {
    Config::parse(&format!(
        "remote_write: [{{url: '{url}', name: rw, queue_config: {{batch_send_deadline: 20ms, min_backoff: 10ms}}}}]"
    ))
    .unwrap()
}

/// One scrape of target `target`: `n` series `m0..` with its label, at `ts`.
fn scrape(appender: &Appender, series: &[Arc<Series>], target: &str, ts: i64) {
    let batch: Vec<AppendSample> = series
        .iter()
        .map(|s| AppendSample::of(s, ts, ts as f64))
        .collect();
    appender.writer().append(&batch, tag_of(target), ts);
}

fn series_of(target: &str, n: usize) -> Vec<Arc<Series>> {
    (0..n)
        .map(|i| {
            Series::new(&Labels::from_pairs([
                ("__name__", format!("m{i}")),
                ("t", target.to_string()),
            ]))
        })
        .collect()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn held(m: &Metrics, url: &str) -> i64 {
    let l = endpoint_labels(&config(url).remote_write[0]);
    m.rw_held.get_or_create(&l).get()
}

/// A remote-write manager on `dir`'s WAL (16 MiB) under `gate`, with no endpoint yet: the same
/// `dir` again is a restart of the worker.
fn manager(
    dir: &tempfile::TempDir,
    metrics: &Arc<Metrics>,
    gate: &Arc<DeliveryGate>,
) -> (RemoteWriteManager, Appender) {
    RemoteWriteManager::new(
        metrics.clone(),
        dir.path().join("wal"),
        1 << 24,
        gate.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_target_waits_without_holding_back_others_and_goes_in_order_when_released() {
    let db = Strict::default();
    let url = db.start().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let gate = Arc::new(DeliveryGate::new(false));
    let (mut rw, appender) = manager(&dir, &metrics, &gate);
    rw.apply(&config(&url));
    let (a, b) = (series_of("a", 3), series_of("b", 3));
    gate.update(|g| g.add_fence(tag_of("a"), 1_000, i64::MAX, []));
    for ts in [1_000, 2_000] {
        scrape(&appender, &a, "a", ts);
        scrape(&appender, &b, "b", ts);
    }
    until("b's samples delivered past a's held ones", || {
        db.samples("__name__=m2,t=b") == [1_000, 2_000]
    })
    .await;
    until("a's samples counted as held", || held(&metrics, &url) == 6).await;
    assert!(db.samples("__name__=m0,t=a").is_empty(), "a is fenced");

    gate.update(|g| g.release(tag_of("a"), 1_000, ["rw".to_string()]));
    scrape(&appender, &a, "a", 3_000);
    until("a's samples, held and new, in order", || {
        (0..3).all(|i| db.samples(&format!("__name__=m{i},t=a")) == [1_000, 2_000, 3_000])
    })
    .await;
    until("nothing held", || held(&metrics, &url) == 0).await;
    assert_eq!(db.refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_samples_survive_a_restart_and_what_was_delivered_is_not_sent_again() {
    let db = Strict::default();
    let url = db.start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (series_of("a", 2), series_of("b", 2));
    {
        let metrics = Arc::new(Metrics::new());
        let gate = Arc::new(DeliveryGate::new(false));
        let (mut rw, appender) = manager(&dir, &metrics, &gate);
        rw.apply(&config(&url));
        gate.update(|g| g.add_fence(tag_of("a"), 1_000, i64::MAX, []));
        scrape(&appender, &a, "a", 1_000);
        scrape(&appender, &b, "b", 1_000);
        scrape(&appender, &b, "b", 2_000);
        until("b delivered, a held", || {
            db.samples("__name__=m1,t=b") == [1_000, 2_000] && held(&metrics, &url) == 2
        })
        .await;
        // Every record is committed (b's delivered, a's held): the progress file says the whole
        // segment, with a's record as a hole.
        until(
            "progress recorded to the end, the held record listed",
            || {
                let seg = std::fs::metadata(dir.path().join("wal/rw/00000000000000000001.seg"))
                    .map_or(0, |m| m.len());
                std::fs::read_to_string(dir.path().join("wal/rw/progress")).is_ok_and(|p| {
                    p.lines().next() == Some(format!("1 {seg}").as_str()) && p.lines().count() == 2
                })
            },
        )
        .await;
    }
    // A new process on the same WAL, whose master says the fence is released.
    let metrics = Arc::new(Metrics::new());
    let gate = Arc::new(DeliveryGate::new(false));
    gate.update(|g| {
        g.add_fence(tag_of("a"), 1_000, i64::MAX, ["rw".to_string()]);
    });
    let (mut rw, _appender) = manager(&dir, &metrics, &gate);
    rw.apply(&config(&url));
    until("a's held samples delivered after the restart", || {
        db.samples("__name__=m0,t=a") == [1_000] && db.samples("__name__=m1,t=a") == [1_000]
    })
    .await;
    // b was committed before the restart: not sent again (a strict receiver would refuse
    // its older samples).
    assert_eq!(db.refused(), 0);
    assert_eq!(db.samples("__name__=m0,t=b"), [1_000, 2_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_for_one_old_sample_is_split_and_only_that_sample_is_lost() {
    let db = Strict::default();
    let url = db.start().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let gate = Arc::new(DeliveryGate::new(false));
    let (mut rw, appender) = manager(&dir, &metrics, &gate);
    // The receiver already has a newer sample of m7 (another worker's, say).
    db.0.lock()
        .unwrap()
        .series
        .insert("__name__=m7,t=a".into(), vec![(5_000, 1.0)]);
    rw.apply(&config(&url));
    let a = series_of("a", 50);
    scrape(&appender, &a, "a", 4_000);
    until("49 series delivered", || {
        (0..50)
            .filter(|i| *i != 7)
            .all(|i| db.samples(&format!("__name__=m{i},t=a")) == [4_000])
    })
    .await;
    let l = endpoint_labels(&config(&url).remote_write[0]);
    until("the refused sample counted", || {
        metrics.rw_out_of_order.get_or_create(&l).get() == 1
    })
    .await;
    // The receiver stores a part before it answers, so the sender counts that part as sent a
    // moment after the receiver holds it: wait for the count, then check it is exact.
    until("49 samples counted as sent", || {
        metrics.rw_samples.get_or_create(&l).get() >= 49
    })
    .await;
    assert_eq!(db.samples("__name__=m7,t=a"), [5_000]);
    assert_eq!(metrics.rw_failed.get_or_create(&l).get(), 1);
    assert_eq!(metrics.rw_split_requests.get_or_create(&l).get(), 1);
    assert_eq!(metrics.rw_samples.get_or_create(&l).get(), 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lapsed_lease_a_cut_drops_the_new_owners_slots_and_sends_the_rest() {
    let db = Strict::default();
    let url = db.start().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let gate = Arc::new(DeliveryGate::new(true));
    let (mut rw, appender) = manager(&dir, &metrics, &gate);
    rw.apply(&config(&url));
    let (a, b) = (series_of("a", 2), series_of("b", 2));
    gate.update(|g| g.set_lease(1_500));
    for ts in [1_000, 1_800, 2_500] {
        scrape(&appender, &a, "a", ts);
        scrape(&appender, &b, "b", ts);
    }
    until("what the lease covers is delivered", || {
        db.samples("__name__=m0,t=a") == [1_000] && db.samples("__name__=m0,t=b") == [1_000]
    })
    .await;
    until("the rest is held", || held(&metrics, &url) == 8).await;
    // Back with a master: a moved at 2 000 to a worker that still waits for us; b is ours.
    gate.update(|g| {
        g.add_cut(tag_of("a"), 2_000, true);
        g.set_lease(10_000);
    });
    until("a before the cut and all of b delivered", || {
        db.samples("__name__=m1,t=a") == [1_000, 1_800]
            && db.samples("__name__=m1,t=b") == [1_000, 1_800, 2_500]
    })
    .await;
    let l = endpoint_labels(&config(&url).remote_write[0]);
    until("a's slots from the cut on dropped and counted", || {
        metrics.handoff_dropped.get_or_create(&l).get() == 2
    })
    .await;
    assert_eq!(held(&metrics, &url), 0);
    assert_eq!(db.refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_target_is_reported_delivered_only_once_its_samples_are() {
    let db = Strict::default();
    let url = db.start().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let gate = Arc::new(DeliveryGate::new(false));
    let (mut rw, appender) = manager(&dir, &metrics, &gate);
    rw.apply(&config(&url));
    let a = series_of("a", 2);
    // a is itself fenced here (it came from elsewhere) and leaves again at 3 000: its report
    // must wait for its held samples, not only for the log to be committed.
    gate.update(|g| g.add_fence(tag_of("a"), 1_000, i64::MAX, []));
    scrape(&appender, &a, "a", 1_000);
    scrape(&appender, &a, "a", 2_000);
    appender.watch_delivery("a", tag_of("a"), 3_000);
    until("a held", || held(&metrics, &url) == 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gate.take_reports().is_empty(),
        "reported while its samples were held"
    );
    gate.update(|g| g.release(tag_of("a"), 1_000, ["rw".to_string()]));
    until("reported delivered", || gate.pending_reports() == 1).await;
    let r = gate.take_reports();
    assert_eq!(
        (r[0].target_id.as_str(), r[0].at_ms, r[0].endpoints.clone()),
        ("a", 3_000, vec!["rw".to_string()])
    );
    assert_eq!(db.samples("__name__=m0,t=a"), [1_000, 2_000]);
    assert!(
        rw.flush(tokio::time::Instant::now() + Duration::from_secs(5))
            .await
    );
}
