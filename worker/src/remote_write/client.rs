//! The write client: encodes one request (protobuf + snappy block format) and POSTs it with the
//! headers the remote-write 1.0 spec requires, classifying failures as the spec says.

use std::time::Duration;

use promshard_proto::prometheus::WriteRequest;
use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};

pub(crate) const USER_AGENT_VALUE: &str = concat!("promshard/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 5xx, 429 (when configured) or a network error: retry with backoff.
    #[error("recoverable: {message}")]
    Recoverable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Any other 4xx: the data will never be accepted; drop and count it.
    #[error("non-recoverable: {0}")]
    Fatal(String),
}

pub struct WriteClient {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    retry_on_429: bool,
}

impl WriteClient {
    pub fn new(
        url: &str,
        timeout: Duration,
        extra_headers: &std::collections::BTreeMap<String, String>,
        retry_on_429: bool,
    ) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        for (k, v) in extra_headers {
            headers.insert(
                HeaderName::try_from(k.as_str())?,
                HeaderValue::try_from(v.as_str())?,
            );
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(
            "x-prometheus-remote-write-version",
            HeaderValue::from_static("0.1.0"),
        );
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(WriteClient {
            http,
            url: url.to_string(),
            headers,
            retry_on_429,
        })
    }

    /// Encodes a request into `buf` (protobuf, then snappy block format).
    pub fn encode(req: &WriteRequest, proto_buf: &mut Vec<u8>) -> Vec<u8> {
        proto_buf.clear();
        // Encoding into a Vec only fails on capacity overflow, which reserve() prevents.
        proto_buf.reserve(req.encoded_len());
        let _ = req.encode(proto_buf);
        snap::raw::Encoder::new()
            .compress_vec(proto_buf)
            .unwrap_or_default()
    }

    /// Sends one compressed body. `attempt` > 0 adds the `Retry-Attempt` header.
    pub async fn send(&self, body: Vec<u8>, attempt: u32) -> Result<(), SendError> {
        let mut req = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body);
        if attempt > 0 {
            req = req.header("retry-attempt", attempt.to_string());
        }
        let resp = req.send().await.map_err(|e| SendError::Recoverable {
            message: format!("{e:#}"),
            retry_after: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.unwrap_or_default();
        let line: String = body
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(512)
            .collect();
        let message = format!("server returned HTTP status {status}: {line}");
        if status.is_server_error()
            || (status == StatusCode::TOO_MANY_REQUESTS && self.retry_on_429)
        {
            Err(SendError::Recoverable {
                message,
                retry_after,
            })
        } else {
            Err(SendError::Fatal(message))
        }
    }
}
