//! The configuration endpoints: `GET /api/v1/status/config`, `PUT /api/v1/config`,
//! `GET /api/v1/config/history`, `POST /-/reload`, and SIGHUP, all through the one
//! [`ConfigStore`](crate::config_store::ConfigStore), so every change is validated, version
//! checked, persisted and applied the same way whatever its source.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, error, success};
use crate::config_store::{ChangeError, Changed, ConfigStore, etag, masked_yaml};
use crate::metrics::Metrics;

fn with_etag(mut resp: Response, version: u64) -> Response {
    if let Ok(v) = header::HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// Prometheus's shape (`{"yaml": ...}`), secrets shown as `<secret>`, plus the version; the
/// `ETag` is what a following `PUT` sends as `If-Match`.
pub(super) async fn status_config(State(s): State<AppState>) -> Response {
    let current = s.store.current();
    let body = json!({
        "yaml": masked_yaml(&current.config),
        "version": current.info.version,
        "source": current.info.source,
        "time": super::rfc3339_ms(current.info.time_ms as i64),
        "digest": current.info.digest,
        // Server-only settings of the running config, which promshard ignores.
        "ignored": current.config.ignored.iter().map(|i| &i.path).collect::<Vec<_>>(),
    });
    with_etag(success(body), current.info.version)
}

pub(super) async fn history(State(s): State<AppState>) -> Response {
    let current = s.store.current().info.version;
    let versions: Vec<_> = s
        .store
        .history()
        .await
        .into_iter()
        .map(|v| {
            json!({
                "version": v.version,
                "time": super::rfc3339_ms(v.time_ms as i64),
                "source": v.source,
                "digest": v.digest,
                "persistedTo": v.persisted_to,
                "current": v.version == current,
            })
        })
        .collect();
    with_etag(success(json!(versions)), current)
}

pub(super) async fn put_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        // Too large (over 16 MiB) or a broken upload: still Prometheus's envelope.
        Err(e) => return error(e.status(), "bad_data", e.body_text()),
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            "the body must be the configuration as UTF-8 YAML",
        );
    };
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let result = s.store.put(text, if_match.as_deref()).await;
    respond(&s.metrics, result)
}

pub(super) async fn reload(State(s): State<AppState>) -> Response {
    let result = s.store.reload().await;
    respond(&s.metrics, result)
}

fn respond(metrics: &Metrics, result: Result<Changed, ChangeError>) -> Response {
    record(metrics, &result);
    match result {
        Ok(changed) => {
            let version = changed.info.version;
            let body = json!({
                "version": version,
                "time": super::rfc3339_ms(changed.info.time_ms as i64),
                "source": changed.info.source,
                "digest": changed.info.digest,
                "persistedTo": changed.info.persisted_to,
                "unchanged": changed.unchanged,
            });
            with_etag(success(body), version)
        }
        Err(e) => {
            let (status, kind) = match &e {
                ChangeError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_data"),
                ChangeError::VersionMismatch { .. } => {
                    (StatusCode::PRECONDITION_FAILED, "precondition_failed")
                }
                ChangeError::Read(_) | ChangeError::Persist(_) | ChangeError::Apply(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            };
            let mut resp = error(status, kind, &e);
            if let ChangeError::VersionMismatch { current, .. } = e {
                resp = with_etag(resp, current);
            }
            resp.into_response()
        }
    }
}

/// Prometheus's reload metrics, for alerting on a config that did not take.
fn record(metrics: &Metrics, result: &Result<Changed, ChangeError>) {
    match result {
        Ok(c) => metrics.config_changed(true, c.info.version),
        // A version mismatch is a caller's race, not a failed reload.
        Err(ChangeError::VersionMismatch { .. }) => {}
        Err(_) => metrics.config_changed(false, 0),
    }
}

/// Reloads the config file on every SIGHUP, as Prometheus does. Errors are logged and counted;
/// the running config stays.
pub async fn reload_on_sighup(store: Arc<ConfigStore>, metrics: Arc<Metrics>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config file");
            let result = store.reload().await;
            record(&metrics, &result);
            match result {
                Ok(c) => tracing::info!(
                    version = c.info.version,
                    unchanged = c.unchanged,
                    "reloaded"
                ),
                Err(e) => tracing::error!(error = %e, "reload failed; the running config stays"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (store, metrics);
    }
}
