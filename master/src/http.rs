//! The master's HTTP API, in Prometheus's conventions: JSON envelopes
//! `{"status":"success","data":...}` / `{"status":"error","errorType":...,"error":...}` on every
//! endpoint, including unknown paths, wrong methods and bad query strings.
//!
//! Read endpoints and mutating endpoints sit behind different bearer-token checks
//! ([`auth`]); the UI ([`crate::ui`]) is static and calls the same endpoints.

pub mod auth;
pub mod config;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use promshard_model::Labels;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config_store::ConfigStore;
use crate::control::Loads;
use crate::coordinator::View;
use crate::explain::{ExplainQuery, PlacementInfo};
use crate::metrics::Metrics;

/// Largest config a `PUT` takes (axum's default of 2 MiB is too small for generated configs).
const MAX_CONFIG_BYTES: usize = 16 << 20;

#[derive(Clone)]
pub struct AppState {
    pub view: watch::Receiver<Arc<View>>,
    pub loads: Loads,
    pub metrics: Arc<Metrics>,
    pub store: Arc<ConfigStore>,
    /// What `prometheus_cr` made of each selected resource.
    pub cr_status: watch::Receiver<Arc<crate::discovery::prometheus_cr::CrStatus>>,
    pub auth: Arc<auth::WebAuth>,
    pub placement: PlacementInfo,
}

pub fn router(state: AppState) -> Router {
    let read = Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/explain", get(explain))
        .route("/api/v1/workers", get(workers))
        .route("/api/v1/status/config", get(config::status_config))
        .route("/api/v1/config/history", get(config::history))
        .route("/api/v1/cr/status", get(cr_status))
        .route_layer(from_fn_with_state(state.auth.clone(), auth::require_read));
    let admin = Router::new()
        .route("/api/v1/config", put(config::put_config))
        .route("/-/reload", post(config::reload).put(config::reload))
        .route_layer(from_fn_with_state(state.auth.clone(), auth::require_admin))
        .layer(DefaultBodyLimit::max(MAX_CONFIG_BYTES));
    Router::new()
        .merge(read)
        .merge(admin)
        .merge(crate::ui::router())
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "bad_data",
                "method not allowed on this endpoint",
            )
        })
        .with_state(state)
}

/// Each prometheus-operator resource `prometheus_cr` selected: the jobs it became, or why it
/// was skipped.
async fn cr_status(State(s): State<AppState>) -> Response {
    let status = s.cr_status.borrow().clone();
    success(serde_json::to_value(&*status).unwrap_or(Value::Null))
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

pub fn error(status: StatusCode, error_type: &str, msg: impl ToString) -> Response {
    let body = json!({"status": "error", "errorType": error_type, "error": msg.to_string()});
    (status, axum::Json(body)).into_response()
}

fn bad_query(e: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_data", e.body_text())
}

fn label_map(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

#[derive(Deserialize)]
struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

async fn targets(
    State(s): State<AppState>,
    q: Result<Query<TargetsQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e),
    };
    let state = q.state.as_deref().unwrap_or("any");
    if !matches!(state, "any" | "active" | "dropped") {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!("invalid state {state:?}"),
        );
    }
    let view = s.view.borrow().clone();
    let loads = s.loads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = BTreeMap::new();
    for (job, jt) in &view.jobs {
        if q.scrape_pool.as_ref().is_some_and(|p| p != job) {
            continue;
        }
        dropped_counts.insert(job.as_str(), jt.dropped_count);
        if state != "dropped" {
            for t in &jt.active {
                let load = loads.get(&t.id);
                let health = load.map_or("unknown", |l| l.health.as_str());
                let last_ms = load.map_or(0, |l| l.last_scrape_ms);
                active.push(json!({
                    "discoveredLabels": label_map(&t.discovered),
                    "labels": label_map(&t.labels.without_reserved()),
                    "scrapePool": job,
                    "scrapeUrl": t.scrape_url,
                    "globalUrl": t.scrape_url,
                    "lastError": load.map_or("", |l| l.last_error.as_str()),
                    "lastScrape": rfc3339_ms(last_ms),
                    "lastScrapeDuration": load.map_or(0.0, |l| l.scrape_duration_seconds),
                    "health": if health.is_empty() { "unknown" } else { health },
                    "scrapeInterval": t.labels.get("__scrape_interval__").unwrap_or(""),
                    "scrapeTimeout": t.labels.get("__scrape_timeout__").unwrap_or(""),
                    "worker": view.owners.get(&t.id),
                    "series": load.map_or(0, |l| l.series),
                    "id": t.id,
                }));
            }
        }
        if state != "active" {
            for d in &jt.dropped {
                dropped.push(json!({
                    "discoveredLabels": label_map(&d.discovered),
                    "scrapePool": job,
                    "reason": d.reason,
                }));
            }
        }
    }
    // droppedTargetCounts: every dropped target, also those keep_dropped_targets leaves out.
    success(json!({
        "activeTargets": active,
        "droppedTargets": dropped,
        "droppedTargetCounts": dropped_counts,
    }))
}

async fn explain(
    State(s): State<AppState>,
    q: Result<Query<ExplainQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e),
    };
    let view = s.view.borrow().clone();
    let loads = s.loads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match crate::explain::explain(&view, &loads, &s.placement, &q) {
        Ok(out) => success(json!(out)),
        Err(msg) => error(StatusCode::NOT_FOUND, "not_found", msg),
    }
}

/// Workers with their load: series and targets by health from the load reports of the targets
/// they own, their share of the mean, the acked generation and how long they have been
/// connected. `capacitySeries` is what the worker accepts (`--max-series`; null: unlimited).
async fn workers(State(s): State<AppState>) -> Response {
    let view = s.view.borrow().clone();
    let loads = s.loads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut per: BTreeMap<&str, (u64, usize, usize)> = BTreeMap::new();
    for (id, w) in &view.owners {
        let e = per.entry(w.as_str()).or_default();
        if let Some(l) = loads.get(id) {
            e.0 += l.series;
            match l.health.as_str() {
                "up" => e.1 += 1,
                "down" => e.2 += 1,
                _ => {}
            }
        }
    }
    let total: u64 = per.values().map(|p| p.0).sum();
    let n = view.workers.iter().filter(|w| w.connected).count().max(1);
    let mean = total as f64 / n as f64;
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let out: Vec<Value> = view
        .workers
        .iter()
        .map(|w| {
            let (series, up, down) = per.get(w.id.as_str()).copied().unwrap_or_default();
            let mut v = serde_json::to_value(w).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("series".into(), json!(series));
                o.insert("targetsUp".into(), json!(up));
                o.insert("targetsDown".into(), json!(down));
                o.insert(
                    "loadRatio".into(),
                    json!(if mean > 0.0 {
                        series as f64 / mean
                    } else {
                        0.0
                    }),
                );
                if w.capacity_series == 0 {
                    o.insert("capacitySeries".into(), Value::Null);
                }
                o.insert(
                    "connectionAgeSeconds".into(),
                    json!(if w.connected {
                        now_ms.saturating_sub(w.connected_since_ms) / 1000
                    } else {
                        0
                    }),
                );
            }
            v
        })
        .collect();
    success(json!(out))
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// Formats Unix milliseconds as RFC 3339 in UTC, as Go's `time.Time` marshals in the targets
/// API; 0 is Go's zero time, which Prometheus shows for never-scraped targets.
pub fn rfc3339_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339_ms(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            super::rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
