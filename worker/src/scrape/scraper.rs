//! One HTTP scrape: the request Prometheus would send, the body read with a limit counted on
//! *decompressed* bytes (a gzip bomb stops at the limit), and failures worded like Prometheus's.
//!
//! A target keeps its own HTTP/1.1 connection ([`DirectConnection`]: a small read buffer, no
//! pool) unless its job needs the pooled client (a proxy, HTTP/2 over TLS); a redirect is
//! followed by the pooled client.

use std::sync::Arc;
use std::time::Duration;

use promshard_model::config::{EscapingScheme, ScrapeConfig, ScrapeProtocol};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HeaderValue, USER_AGENT};

use super::parser::{Format, negotiate_format};
use crate::http_client::{ClientOptions, HttpClient};
use promshard_httpclient::{DirectConnection, DirectError};

pub(super) const USER_AGENT_VALUE: &str = concat!("promshard/", env!("CARGO_PKG_VERSION"));

/// Builds the HTTP client shared by a job's loops (connection reuse across targets), with the
/// job's auth, TLS, proxy and header settings.
pub(super) fn client_for(cfg: &ScrapeConfig) -> anyhow::Result<Arc<HttpClient>> {
    let opts = ClientOptions {
        gzip: cfg.enable_compression,
        ..ClientOptions::default()
    };
    Ok(Arc::new(HttpClient::new(&cfg.http_client_config(), opts)?))
}

/// The `Accept` header for a job's `scrape_protocols`, as Prometheus 3's `acceptHeader`
/// (`scrape/scrape.go`) builds it: weights from `q=0.6` down in list order, `escaping=` on the
/// 1.0.0 text formats, `*/*` last.
pub(super) fn accept_header(protocols: &[ScrapeProtocol], escaping: EscapingScheme) -> String {
    // len(ScrapeProtocolsHeaders) + 1 in Prometheus: its five formats.
    let mut weight = 6;
    let mut parts = Vec::with_capacity(protocols.len() + 1);
    for p in protocols {
        let mut v = p.media_type().to_string();
        if matches!(
            p,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            v.push_str(";escaping=");
            v.push_str(escaping.as_str());
        }
        parts.push(format!("{v};q=0.{weight}"));
        weight -= 1;
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

pub(super) struct Scraper {
    client: Arc<HttpClient>,
    /// This target's own connection, when the job allows one.
    direct: Option<DirectConnection>,
    url: String,
    enable_compression: bool,
    timeout: Duration,
    body_limit: u64,
    /// `fallback_scrape_protocol`: the format for a missing or unusable `Content-Type`.
    fallback: Option<Format>,
    /// From `scrape_protocols` and the escaping scheme.
    accept: HeaderValue,
}

impl Scraper {
    pub(super) fn new(client: Arc<HttpClient>, url: String, cfg: &ScrapeConfig) -> Self {
        Scraper {
            direct: DirectConnection::for_url(&client, &url),
            client,
            url,
            enable_compression: cfg.enable_compression,
            timeout: cfg.timeout().0,
            body_limit: cfg.body_size_limit.map_or(0, |b| b.0),
            fallback: cfg.fallback_scrape_protocol.map(|p| match p {
                ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
                    Format::OpenMetrics
                }
                ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
                    Format::Text
                }
                ScrapeProtocol::PrometheusProto => Format::Protobuf,
            }),
            accept: HeaderValue::from_str(&accept_header(cfg.protocols(), cfg.escaping()))
                // Invariant: built from constant media types and weights.
                .unwrap_or(HeaderValue::from_static("*/*")),
        }
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the body into `buf` (cleared first) and returns its format.
    pub(super) async fn scrape(&mut self, buf: &mut Vec<u8>) -> Result<Format, String> {
        buf.clear();
        match tokio::time::timeout(self.timeout, self.fetch(buf)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "scrape timed out after {:?} (context deadline exceeded)",
                self.timeout
            )),
        }
    }

    async fn fetch(&mut self, buf: &mut Vec<u8>) -> Result<Format, String> {
        if self.direct.is_some() {
            match self.fetch_direct(buf).await {
                Err(None) => buf.clear(), // a redirect: the pooled client follows it
                Ok(format) => return Ok(format),
                Err(Some(e)) => return Err(e),
            }
        }
        self.fetch_pooled(buf).await
    }

    /// Over the target's own connection; `Err(None)`: a redirect to follow.
    async fn fetch_direct(&mut self, buf: &mut Vec<u8>) -> Result<Format, Option<String>> {
        let Some(conn) = self.direct.as_mut() else {
            return Err(None);
        };
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(ACCEPT, self.accept.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(
            "x-prometheus-scrape-timeout-seconds",
            HeaderValue::from_str(&format!("{}", self.timeout.as_secs_f64()))
                .unwrap_or(HeaderValue::from_static("10")),
        );
        // As Prometheus: say so explicitly when not compressing, or some servers compress.
        let encoding = if self.enable_compression {
            "gzip"
        } else {
            "identity"
        };
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(encoding));
        let resp = match conn.get(&self.client, headers, buf, self.body_limit).await {
            Ok(resp) => resp,
            Err(DirectError::Redirect) => return Err(None),
            Err(DirectError::BodyLimit(limit)) => {
                return Err(Some(format!("body size limit exceeded ({limit} bytes)")));
            }
            Err(DirectError::Failed(e)) => return Err(Some(e)),
        };
        if resp.status != reqwest::StatusCode::OK {
            return Err(Some(format!("server returned HTTP status {}", resp.status)));
        }
        self.body_format(buf, resp.content_type.as_deref())
            .map_err(Some)
    }

    async fn fetch_pooled(&self, buf: &mut Vec<u8>) -> Result<Format, String> {
        let timeout_secs = format!("{}", self.timeout.as_secs_f64());
        let mut req = self
            .client
            .request(reqwest::Method::GET, &self.url)
            .await
            .map_err(|e| format!("{e:#}"))?
            .header(ACCEPT, self.accept.clone())
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
        self.body_format(buf, content_type.as_deref())
    }

    /// The format of a body read in full, from its `Content-Type`.
    fn body_format(&self, buf: &[u8], content_type: Option<&str>) -> Result<Format, String> {
        if buf.is_empty() {
            // Prometheus 3 negotiates only for a non-empty body; an empty one is an empty scrape.
            return Ok(Format::Text);
        }
        // Prometheus 3: a blank, unparsable or unsupported Content-Type fails the scrape
        // unless the job names a fallback protocol.
        negotiate_format(content_type, self.fallback).map_err(|e| e.to_string())
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
