//! One HTTP scrape: the request Prometheus would send, the body read with a limit counted on
//! *decompressed* bytes (a gzip bomb stops at the limit), and failures worded like Prometheus's.

use std::sync::Arc;
use std::time::Duration;

use promshard_model::config::{ScrapeConfig, ScrapeProtocol};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HeaderValue, USER_AGENT};

use super::parser::{ACCEPT_HEADER, Format, negotiate_format};
use crate::http_client::{ClientOptions, HttpClient};

pub(super) const USER_AGENT_VALUE: &str = concat!("promshard/", env!("CARGO_PKG_VERSION"));

/// Builds the HTTP client shared by a job's loops (connection reuse across targets), with the
/// job's auth and TLS settings.
pub(super) fn client_for(cfg: &ScrapeConfig) -> anyhow::Result<Arc<HttpClient>> {
    let opts = ClientOptions {
        follow_redirects: cfg.follow_redirects,
        gzip: cfg.enable_compression,
        ..ClientOptions::default()
    };
    Ok(Arc::new(HttpClient::new(&cfg.http_client_config(), opts)?))
}

pub(super) struct Scraper {
    client: Arc<HttpClient>,
    url: String,
    enable_compression: bool,
    timeout: Duration,
    body_limit: u64,
    /// `fallback_scrape_protocol`: the format for a missing or unusable `Content-Type`.
    fallback: Option<Format>,
}

impl Scraper {
    pub(super) fn new(client: Arc<HttpClient>, url: String, cfg: &ScrapeConfig) -> Self {
        Scraper {
            client,
            url,
            enable_compression: cfg.enable_compression,
            timeout: cfg.timeout().0,
            body_limit: cfg.body_size_limit.map_or(0, |b| b.0),
            fallback: cfg.fallback_scrape_protocol.and_then(|p| match p {
                ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
                    Some(Format::OpenMetrics)
                }
                ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
                    Some(Format::Text)
                }
                // Refused at load time: promshard does not parse protobuf.
                ScrapeProtocol::PrometheusProto => None,
            }),
        }
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the body into `buf` (cleared first) and returns its format.
    pub(super) async fn scrape(&self, buf: &mut Vec<u8>) -> Result<Format, String> {
        buf.clear();
        match tokio::time::timeout(self.timeout, self.fetch(buf)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "scrape timed out after {:?} (context deadline exceeded)",
                self.timeout
            )),
        }
    }

    async fn fetch(&self, buf: &mut Vec<u8>) -> Result<Format, String> {
        let timeout_secs = format!("{}", self.timeout.as_secs_f64());
        let mut req = self
            .client
            .request(reqwest::Method::GET, &self.url)
            .map_err(|e| format!("{e:#}"))?
            .header(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER))
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .header("X-Prometheus-Scrape-Timeout-Seconds", timeout_secs);
        if !self.enable_compression {
            // As Prometheus: say so explicitly, or some servers compress anyway.
            req = req.header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let mut resp = req.send().await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {status}"));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            buf.extend_from_slice(&chunk);
            if self.body_limit > 0 && buf.len() as u64 > self.body_limit {
                return Err(format!(
                    "body size limit exceeded ({} bytes)",
                    self.body_limit
                ));
            }
        }
        if buf.is_empty() {
            // Prometheus 3 negotiates only for a non-empty body; an empty one is an empty scrape.
            return Ok(Format::Text);
        }
        // Prometheus 3: a blank, unparsable or unsupported Content-Type fails the scrape
        // unless the job names a fallback protocol.
        negotiate_format(content_type.as_deref(), self.fallback).map_err(|e| e.to_string())
    }
}

/// The error and its causes: reqwest's own message ("error sending request") hides the
/// reason (refused, TLS name mismatch, unknown CA) in its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
#[path = "scraper_tests.rs"]
mod tests;
