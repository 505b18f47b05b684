//! Prometheus's `discovery/refresh`: a provider that asks its source every `refresh_interval`
//! and sends the groups when they changed. A failed refresh is logged and counted and keeps the
//! previous groups, so a flaky endpoint never makes targets vanish.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{TargetGroup, Update};
use crate::metrics::Metrics;

/// One source of target groups, asked again and again.
pub(super) trait Refresh: Send + 'static {
    type Error: Display + Send;
    /// `http`, `dns`: the `mechanism` label of the refresh metric.
    const MECHANISM: &'static str;
    /// Every group of the source, as of now.
    fn refresh(&mut self) -> impl Future<Output = Result<Vec<TargetGroup>, Self::Error>> + Send;
}

/// Runs `source` for a job's provider slot until the task is aborted.
pub(super) async fn run<R: Refresh>(
    mut source: R,
    interval: Duration,
    job: String,
    provider: String,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Update>,
) {
    let mut last: Option<Vec<TargetGroup>> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match source.refresh().await {
            Ok(groups) => {
                metrics.sd_refresh(R::MECHANISM, true);
                if last.as_ref() == Some(&groups) {
                    continue;
                }
                last = Some(groups.clone());
                let update = Update {
                    job: job.clone(),
                    provider: provider.clone(),
                    groups,
                };
                if tx.send(update).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics.sd_refresh(R::MECHANISM, false);
                tracing::warn!(%job, %provider, error = %e, "discovery refresh failed; keeping the previous targets");
            }
        }
    }
}
