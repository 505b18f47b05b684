//! `http_sd_configs`: GET the configured URL every `refresh_interval`; the answer is a JSON list
//! of target groups (Prometheus's `discovery/http/http.go`). Each group gets `__meta_url`, and
//! is sourced `<url>:<index>`. The request carries `Accept: application/json` and
//! `X-Prometheus-Refresh-Interval-Seconds`; anything but a 200 with a JSON content type is a
//! failed refresh (the previous targets stay).

use std::collections::BTreeMap;
use std::time::Duration;

use promshard_httpclient::{ClientOptions, HttpClient};
use promshard_model::Labels;
use promshard_model::config::{HttpSdConfig, check_target_address};
use promshard_model::labels::ADDRESS;
use serde::Deserialize;

use super::TargetGroup;
use super::refresh::Refresh;

const URL_LABEL: &str = "__meta_url";
const USER_AGENT: &str = concat!("promshard-master/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub(super) enum HttpSdError {
    #[error("{0:#}")]
    Request(anyhow::Error),
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    #[error("reading the answer: {0}")]
    Body(reqwest::Error),
    #[error("the answer is not a JSON list of target groups: {0}")]
    Json(serde_json::Error),
    #[error("target group {index}: {message}")]
    Group { index: usize, message: String },
}

/// One target group as the endpoint sends it. Unknown fields are ignored, as Go's JSON decoder
/// does.
#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub(super) struct HttpSd {
    url: String,
    interval: Duration,
    client: HttpClient,
}

impl HttpSd {
    pub(super) fn new(cfg: &HttpSdConfig) -> anyhow::Result<HttpSd> {
        let client = HttpClient::new(&cfg.http_client_config(), ClientOptions::default())?;
        Ok(HttpSd {
            url: cfg.url.clone(),
            interval: cfg.refresh_interval.0,
            client,
        })
    }

    async fn fetch(&self) -> Result<Vec<TargetGroup>, HttpSdError> {
        let resp = self
            .client
            .request(reqwest::Method::GET, &self.url)
            .await
            .map_err(HttpSdError::Request)?
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .header(
                "X-Prometheus-Refresh-Interval-Seconds",
                self.interval.as_secs_f64().to_string(),
            )
            // A refresh may not take longer than the interval it repeats at.
            .timeout(self.interval.max(Duration::from_secs(1)))
            .send()
            .await
            .map_err(|e| HttpSdError::Request(e.into()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(HttpSdError::Status(resp.status()));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string();
        if !is_json(&content_type) {
            return Err(HttpSdError::ContentType(content_type));
        }
        let body = resp.bytes().await.map_err(HttpSdError::Body)?;
        let groups: Vec<Option<Group>> =
            serde_json::from_slice(&body).map_err(HttpSdError::Json)?;
        groups
            .into_iter()
            .enumerate()
            .map(|(index, g)| {
                let err = |message: String| HttpSdError::Group { index, message };
                let g = g.ok_or_else(|| err("nil target group item found".into()))?;
                let mut targets = Vec::with_capacity(g.targets.len());
                for t in &g.targets {
                    check_target_address(t).map_err(err)?;
                    targets.push(Labels::from_pairs([(ADDRESS, t.as_str())]));
                }
                // Prometheus 3 takes any non-empty UTF-8 name here.
                if g.labels.keys().any(String::is_empty) {
                    return Err(err("an empty label name".into()));
                }
                let mut labels = Labels::from_pairs(g.labels).builder();
                labels.set(URL_LABEL, self.url.clone());
                Ok(TargetGroup {
                    targets,
                    labels: labels.into_labels(),
                    source: format!("{}:{index}", self.url),
                })
            })
            .collect()
    }
}

/// Prometheus's `^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`.
fn is_json(content_type: &str) -> bool {
    let lower = content_type.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(param) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(param.trim_start(), "charset=utf-8" | "charset=\"utf-8\"")
}

impl Refresh for HttpSd {
    type Error = HttpSdError;
    const MECHANISM: &'static str = "http";

    async fn refresh(&mut self) -> Result<Vec<TargetGroup>, HttpSdError> {
        self.fetch().await
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn content_types_as_prometheus() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/json; charset=latin1",
            "application/jsonx",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
