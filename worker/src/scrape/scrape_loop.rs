//! A scrape loop: scrapes one target at its fixed phase, turns the body into samples, writes
//! the report series (`up`, ...) and staleness markers, and reports status to the master.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promshard_model::labels::METRIC_NAME;
use promshard_model::target::scrape_offset_ms;
use promshard_proto::control::TargetLoad;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::append::{SampleProcessor, stale_nan};
use super::buffers;
use super::scraper::Scraper;
use crate::assignment::AssignedTarget;
use crate::metrics::Metrics;
use crate::remote_write::{AppendSample, Appender, Series};
use crate::status::StatusBoard;

/// Why a loop stops; only `Removed` writes end-of-run stale markers, as in Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Discovery dropped the target.
    Removed,
    /// Another worker scrapes it now; it keeps the series alive.
    HandedOff,
    /// Config reload or shutdown: the loop is replaced or the process restarts.
    Replaced,
}

/// What the scrape manager tells a running loop; the latest value wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctl {
    Run,
    /// Make-before-break handoff: scrape the slots strictly before this Unix ms, then stop
    /// without stale markers (the new owner starts at that slot). `Run` cancels it.
    StopAt(i64),
    /// Handed back before the stop instant, to take over again later: skip the slots from the
    /// stop instant up to this one (another worker scrapes them), then carry on.
    ResumeAt(i64),
    Stop(Stop),
}

/// The first scrape slot of a target at or after `at_ms`. Slots are a function of the target's
/// identity and interval only, so every worker computes the same ones: this is what makes a
/// handoff exact (the old owner stops at the slot the new one starts at).
pub(crate) fn first_slot_at_or_after(at_ms: u64, placement_key: u64, interval_ms: u64) -> u64 {
    let offset = scrape_offset_ms(placement_key, interval_ms);
    let mut first = at_ms - at_ms % interval_ms + offset;
    if first < at_ms {
        first += interval_ms;
    }
    first
}

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

pub(crate) struct ScrapeLoop {
    target: Arc<AssignedTarget>,
    scraper: Scraper,
    processor: SampleProcessor,
    appender: Appender,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    interval: Duration,
    /// The target's tag on its WAL records, for the delivery gate (`crate::gate`).
    tag: u64,
    /// `__name__` + target labels for each report series, built once.
    report_series: Vec<Arc<Series>>,
    /// The writer generation the report series were last sent with their labels under.
    report_announced: u64,
    last_scrape_ms: Option<i64>,
    /// Set by the master (`__promshard_forced_error__`, e.g. the job is over its
    /// `target_limit`): every scrape fails with it without asking the target, as Prometheus's
    /// forced scrape error does.
    forced_error: Option<String>,
}

impl ScrapeLoop {
    pub(crate) fn new(
        target: Arc<AssignedTarget>,
        scraper: Scraper,
        processor: SampleProcessor,
        appender: Appender,
        status: Arc<StatusBoard>,
        metrics: Arc<Metrics>,
        interval: Duration,
    ) -> Self {
        let public = target.labels.without_reserved();
        let report_series = REPORT_NAMES
            .iter()
            .map(|n| {
                let mut b = public.builder();
                b.set(METRIC_NAME, *n);
                Series::new(&b.into_labels())
            })
            .collect();
        let forced_error = target
            .labels
            .get(promshard_model::labels::FORCED_ERROR)
            .map(str::to_string);
        ScrapeLoop {
            tag: crate::gate::tag_of(&target.id),
            target,
            scraper,
            processor,
            appender,
            status,
            metrics,
            interval,
            report_series,
            report_announced: 0,
            last_scrape_ms: None,
            forced_error,
        }
    }

    pub(crate) async fn run(mut self, ctl: watch::Receiver<Ctl>) {
        self.run_until_stopped(ctl).await;
        // Every exit: the WALs may let go of this loop's series once their samples are gone.
        let mut ids = self.processor.retire_all();
        ids.extend(self.report_series.iter().map(|s| s.id()));
        self.appender.forget(&ids);
    }

    async fn run_until_stopped(&mut self, mut ctl: watch::Receiver<Ctl>) {
        let interval_ms = self.interval.as_millis().max(1) as u64;
        let now = unix_ms(SystemTime::now()) as u64;
        let not_before = now.max(self.target.start_at_ms.max(0) as u64);
        let first = first_slot_at_or_after(not_before, self.target.placement_key, interval_ms);
        let start = Instant::now() + Duration::from_millis(first - now);
        let mut ticker = tokio::time::interval_at(start, self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut stop_at: Option<i64> = None;
        let mut resume_at: Option<i64> = None;
        loop {
            tokio::select! {
                changed = ctl.changed() => {
                    let cmd = if changed.is_ok() { *ctl.borrow_and_update() } else {
                        // The manager is gone (shutdown): stop like a replaced loop.
                        Ctl::Stop(Stop::Replaced)
                    };
                    match cmd {
                        Ctl::Run => (stop_at, resume_at) = (None, None),
                        Ctl::StopAt(at) => (stop_at, resume_at) = (Some(at), None),
                        Ctl::ResumeAt(at) => resume_at = Some(at),
                        Ctl::Stop(why) => {
                            if why == Stop::Removed {
                                self.end_of_run_staleness(ticker).await;
                            }
                            self.status.remove(&self.target.id);
                            return;
                        }
                    }
                    continue;
                }
                _ = ticker.tick() => {}
            }
            if let Some(at) = stop_at {
                // The slot this tick stands for: ticks fire at slot times, late by scheduling
                // delay only, so the nearest slot is the one this tick is for.
                let now = unix_ms(SystemTime::now()) as u64;
                let slot = first_slot_at_or_after(
                    now.saturating_sub(interval_ms / 2),
                    self.target.placement_key,
                    interval_ms,
                );
                if slot as i64 >= at {
                    match resume_at {
                        Some(r) if (slot as i64) < r => continue,
                        Some(_) => (stop_at, resume_at) = (None, None),
                        None => {
                            // The new owner holds its samples until ours before `at` are
                            // delivered. Registered while `ctl` is open: the manager takes a
                            // closed one as "this loop is done".
                            self.appender.watch_delivery(&self.target.id, self.tag, at);
                            self.status.remove(&self.target.id);
                            return;
                        }
                    }
                }
            }
            self.scrape_once().await;
        }
    }

    async fn scrape_once(&mut self) {
        let started = SystemTime::now();
        let ts = unix_ms(started);
        // A pooled buffer, only while scraping: a target's body (2.6 MiB for cAdvisor) is not
        // kept between scrapes.
        let mut buf = buffers::take();
        let fetched = match &self.forced_error {
            Some(e) => Err(e.clone()),
            None => self.scraper.scrape(&mut buf).await,
        };
        // The endpoints as they are now, after the network wait.
        let writer = self.appender.writer();
        let generation = writer.generation();
        let result = match fetched {
            Ok(format) => self.processor.process(&buf, format, ts, generation),
            Err(e) => Err(e.into()),
        };
        buffers::give_back(buf);
        let duration = started.elapsed().unwrap_or_default().as_secs_f64();
        let mut out;
        let mut retired = Vec::new();
        let (up, scraped, post, added, err) = match result {
            Ok(p) => {
                writer.append_metadata(&p.metadata);
                self.metrics
                    .scrape_out_of_order
                    .inc_by(p.out_of_order as u64);
                out = p.samples;
                out.extend(p.stale);
                retired = p.retired;
                (
                    1.0,
                    p.scraped,
                    p.post_relabel,
                    p.series_added,
                    String::new(),
                )
            }
            Err(f) => {
                // A failed scrape counts as empty: every previous series goes stale.
                out = self.processor.fail(ts, generation);
                (0.0, f.scraped, f.post_relabel, f.series_added, f.error)
            }
        };
        let values = [up, duration, scraped as f64, post as f64, added as f64];
        let announce = self.report_announced != generation;
        self.report_announced = generation;
        for (series, value) in self.report_series.iter().zip(values) {
            out.push(AppendSample {
                id: series.id(),
                timestamp_ms: ts,
                value,
                series: announce.then(|| series.clone()),
                histogram: None,
            });
        }
        writer.append(&out, self.tag, ts);
        self.appender.forget(&retired);
        self.last_scrape_ms = Some(ts);
        let result = if err.is_empty() { "success" } else { "failure" };
        self.metrics
            .scrapes
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
        if !err.is_empty() {
            tracing::debug!(url = %self.scraper.url(), error = %err, "scrape failed");
        }
        self.status.update(TargetLoad {
            target_id: self.target.id.clone(),
            series: post as u64,
            scrape_duration_seconds: duration,
            health: if err.is_empty() { "up" } else { "down" }.into(),
            last_error: err,
            last_scrape_ms: ts,
        });
    }

    /// Prometheus's `endOfRunStaleness`: wait for the next slot (its time is the markers'
    /// timestamp), one more slot and 10 % of the interval, in case the target comes back; then
    /// mark every series and the report series stale.
    async fn end_of_run_staleness(&mut self, mut ticker: tokio::time::Interval) {
        if self.last_scrape_ms.is_none() {
            return;
        }
        ticker.tick().await;
        let stale_ts = unix_ms(SystemTime::now());
        ticker.tick().await;
        tokio::time::sleep(self.interval / 10).await;
        let writer = self.appender.writer();
        let mut out = self.processor.end_of_run(stale_ts, writer.generation());
        for series in &self.report_series {
            // With its labels: cheap, once, and right even if the endpoints changed.
            out.push(AppendSample::of(series, stale_ts, stale_nan()));
        }
        writer.append(&out, self.tag, stale_ts);
    }
}
