//! One HTTP/1.1 connection kept by one scrape target's loop: the scrape path for the common
//! case (no proxy, HTTP/1.1), beside the pooled reqwest client that serves everything else.
//!
//! Why: reqwest's pool keeps a keep-alive connection per target anyway, but the connection's
//! read buffer grows to fit the largest reads it has seen (hyper's adaptive strategy, up to
//! ~400 KiB) and stays allocated while the connection idles between scrapes: ~80 KiB per node
//! exporter, a third of the worker's memory at 1,000 targets (docs/BENCHMARKS.md). Here the read
//! buffer is [`READ_BUF`] bytes, set per connection, and a scrape costs no pool lookup.
//!
//! The request carries the same credentials and headers as the pooled client's
//! ([`HttpClient::request_headers`]) and the same TLS configuration; a gzip body is inflated
//! here, counting the limit on inflated bytes. A redirect is handed back
//! ([`DirectError::Redirect`]) for the pooled client to follow.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::client::HttpClient;

/// The connection's read buffer: reads of at most this much, and no more kept while idle.
/// 16 KiB reads a 2.6 MiB cAdvisor body in ~160 reads.
pub(crate) const READ_BUF: usize = 16 * 1024;

/// Why a direct request did not produce a body.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// A 3xx with a `Location`: let the pooled client follow it (it has the redirect policy).
    #[error("redirect")]
    Redirect,
    #[error("body size limit exceeded ({0} bytes)")]
    BodyLimit(u64),
    /// Anything else, worded for a scrape error.
    #[error("{0}")]
    Failed(String),
}

/// A response whose body was read into the caller's buffer.
#[derive(Debug)]
pub struct DirectResponse {
    pub status: StatusCode,
    pub content_type: Option<String>,
}

/// Where a direct connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as the URL wrote it, for the `Host` header.
    authority: String,
    path_and_query: String,
}

/// One target's connection (see the module comment).
pub struct DirectConnection {
    endpoint: Endpoint,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// A request is in flight or was abandoned mid-response (a timed-out scrape): the
    /// connection cannot take another one.
    busy: bool,
}

impl DirectConnection {
    /// A connection for `url` (made on first use), or `None` when the request needs the pooled
    /// client: a proxy, HTTP/2 over TLS, or a URL it cannot take apart.
    pub fn for_url(client: &HttpClient, url: &str) -> Option<DirectConnection> {
        let u = reqwest::Url::parse(url).ok()?;
        let https = match u.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        if !client.direct_capable(https) {
            return None;
        }
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
        let port = u.port_or_known_default()?;
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str()?),
            None => u.host_str()?.to_string(),
        };
        let mut path_and_query = u.path().to_string();
        if let Some(q) = u.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        Some(DirectConnection {
            endpoint: Endpoint {
                https,
                host: host.to_string(),
                port,
                authority,
                path_and_query,
            },
            sender: None,
            busy: false,
        })
    }

    /// GETs the URL with `headers` (plus the job's credentials and headers) and reads the body
    /// into `buf`, inflating gzip, failing past `limit` inflated bytes (0: none).
    pub async fn get(
        &mut self,
        client: &HttpClient,
        headers: HeaderMap,
        buf: &mut Vec<u8>,
        limit: u64,
    ) -> Result<DirectResponse, DirectError> {
        let mut headers = headers;
        let extra = client
            .request_headers()
            .await
            .map_err(|e| DirectError::Failed(format!("{e:#}")))?;
        // Every value: a name may repeat (`http_headers` values, secrets and files).
        for (name, value) in extra.iter() {
            headers.append(name.clone(), value.clone());
        }
        let host = HeaderValue::from_str(&self.endpoint.authority)
            .map_err(|_| DirectError::Failed("invalid host in the URL".into()))?;
        headers.insert(HOST, host);
        // A kept connection may have been closed by the target since the last scrape: one
        // more try on a fresh connection, as the pooled client would.
        let reused = self.sender.is_some() && !self.busy;
        let resp = match self.send(client, &headers).await {
            Ok(resp) => resp,
            Err(_) if reused => {
                self.sender = None;
                self.send(client, &headers).await?
            }
            Err(e) => return Err(e),
        };
        let result = read_body(resp, buf, limit).await;
        match &result {
            Ok(_) | Err(DirectError::Redirect) => self.busy = false,
            // The connection's state is unknown after a failed read.
            Err(_) => self.sender = None,
        }
        result
    }

    async fn send(
        &mut self,
        client: &HttpClient,
        headers: &HeaderMap,
    ) -> Result<hyper::Response<hyper::body::Incoming>, DirectError> {
        if self.busy || self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = None;
            self.busy = false;
        }
        if self.sender.is_none() {
            self.sender = Some(
                connect(client, &self.endpoint)
                    .await
                    .map_err(|e| DirectError::Failed(format!("{e:#}")))?,
            );
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(DirectError::Failed("no connection".into()));
        };
        let mut req = Request::get(self.endpoint.path_and_query.as_str())
            .body(Empty::new())
            .map_err(|e| DirectError::Failed(e.to_string()))?;
        *req.headers_mut() = headers.clone();
        sender
            .ready()
            .await
            .map_err(|e| DirectError::Failed(error_chain(&e)))?;
        self.busy = true;
        sender
            .send_request(req)
            .await
            .map_err(|e| DirectError::Failed(error_chain(&e)))
    }
}

/// Opens the connection: TCP (each resolved address in turn), TLS when the URL says so, and
/// an HTTP/1.1 handshake with a [`READ_BUF`]-byte read buffer; the connection runs in a task
/// of its own until its sender is dropped.
async fn connect(client: &HttpClient, ep: &Endpoint) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let mut last = None;
    let mut tcp = None;
    for addr in tokio::net::lookup_host((ep.host.as_str(), ep.port))
        .await
        .with_context(|| format!("error sending request: dns error: {}", ep.host))?
    {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            return Err(e).context("error sending request: client error (Connect)");
        }
        (None, None) => anyhow::bail!("error sending request: no address for {}", ep.host),
    };
    tcp.set_nodelay(true)?;
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder.read_buf_exact_size(Some(READ_BUF));
    if ep.https {
        let config = client.rustls_config()?;
        let name = ServerName::try_from(ep.host.clone())
            .map_err(|_| anyhow::anyhow!("invalid TLS server name {:?}", ep.host))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("error sending request: client error (Connect)")?;
        let (sender, conn) = builder.handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    } else {
        let (sender, conn) = builder.handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// Reads the whole body into `buf` (inflating gzip), or hands back a redirect.
async fn read_body(
    resp: hyper::Response<hyper::body::Incoming>,
    buf: &mut Vec<u8>,
    limit: u64,
) -> Result<DirectResponse, DirectError> {
    let status = resp.status();
    if status.is_redirection() && resp.headers().contains_key(hyper::header::LOCATION) {
        return Err(DirectError::Redirect);
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let gzip = resp
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut body = resp.into_body();
    let mut out = LimitedWriter { buf, limit };
    let mut inflater = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| DirectError::Failed(error_chain(&e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let written = match &mut inflater {
            // Inflated a frame at a time into the decoder's own small buffer, then moved on
            // with the limit counted.
            Some(d) => std::io::Write::write_all(d, &data).and_then(|()| {
                let inflated = std::mem::take(d.get_mut());
                std::io::Write::write_all(&mut out, &inflated)
            }),
            None => std::io::Write::write_all(&mut out, &data),
        };
        written.map_err(|e| io_error(e, limit))?;
    }
    if let Some(d) = inflater {
        let rest = d.finish().map_err(|e| io_error(e, limit))?;
        std::io::Write::write_all(&mut out, &rest).map_err(|e| io_error(e, limit))?;
    }
    Ok(DirectResponse {
        status,
        content_type,
    })
}

/// An inflated (or plain) body going into the scrape buffer, stopped at the limit.
struct LimitedWriter<'a> {
    buf: &'a mut Vec<u8>,
    limit: u64,
}

impl std::io::Write for LimitedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.limit > 0 && (self.buf.len() + data.len()) as u64 > self.limit {
            return Err(std::io::Error::other(LimitExceeded));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

fn io_error(e: std::io::Error, limit: u64) -> DirectError {
    if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
        DirectError::BodyLimit(limit)
    } else {
        DirectError::Failed(format!("error decoding response body: {e}"))
    }
}

/// The error and its causes, as the pooled client's scrape errors read.
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
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use promshard_model::http_config::HttpClientConfig;

    use super::*;
    use crate::client::ClientOptions;

    /// A target on 127.0.0.1 that counts its TCP connections, serves `/metrics` (gzip when
    /// `/gz` is asked) and drops every connection on `/close`.
    async fn target() -> (String, Arc<AtomicUsize>) {
        let conns = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counted = conns.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            let gz = req.uri().path() == "/gz";
                            let body = if gz {
                                let mut e = flate2::write::GzEncoder::new(
                                    Vec::new(),
                                    flate2::Compression::fast(),
                                );
                                std::io::Write::write_all(&mut e, b"up 1\n").unwrap();
                                e.finish().unwrap()
                            } else {
                                b"up 1\n".to_vec()
                            };
                            let mut resp =
                                hyper::Response::new(http_body_util::Full::new(Bytes::from(body)));
                            if gz {
                                resp.headers_mut()
                                    .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                            }
                            if req.uri().path() == "/close" {
                                // The server ends the connection after this response.
                                resp.headers_mut().insert(
                                    hyper::header::CONNECTION,
                                    HeaderValue::from_static("close"),
                                );
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), conns)
    }

    fn client() -> HttpClient {
        HttpClient::new(&HttpClientConfig::default(), ClientOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn one_connection_carries_every_scrape_and_gzip_is_inflated() {
        let (base, conns) = target().await;
        let client = client();
        let mut c = DirectConnection::for_url(&client, &format!("{base}/metrics")).unwrap();
        for _ in 0..3 {
            let mut buf = Vec::new();
            let r = c.get(&client, HeaderMap::new(), &mut buf, 0).await.unwrap();
            assert_eq!((r.status, buf.as_slice()), (StatusCode::OK, &b"up 1\n"[..]));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1, "kept alive");
        let mut c = DirectConnection::for_url(&client, &format!("{base}/gz")).unwrap();
        let mut buf = Vec::new();
        c.get(&client, HeaderMap::new(), &mut buf, 0).await.unwrap();
        assert_eq!(buf, b"up 1\n");
        // The limit counts inflated bytes.
        let mut buf = Vec::new();
        let e = c
            .get(&client, HeaderMap::new(), &mut buf, 3)
            .await
            .unwrap_err();
        assert!(matches!(e, DirectError::BodyLimit(3)), "{e:?}");
    }

    #[tokio::test]
    async fn a_connection_the_target_closed_is_replaced_on_the_next_scrape() {
        let (base, conns) = target().await;
        let client = client();
        let mut c = DirectConnection::for_url(&client, &format!("{base}/close")).unwrap();
        for n in 1..=3 {
            let mut buf = Vec::new();
            c.get(&client, HeaderMap::new(), &mut buf, 0).await.unwrap();
            assert_eq!(buf, b"up 1\n");
            assert_eq!(
                conns.load(Ordering::SeqCst),
                n,
                "a new connection per closed one"
            );
        }
    }

    #[test]
    fn a_proxy_or_http2_over_tls_needs_the_pooled_client() {
        assert!(DirectConnection::for_url(&client(), "http://a:1/m?x=1").is_some());
        let mut cfg = HttpClientConfig::default();
        cfg.proxy.proxy_url = "http://127.0.0.1:3128".into();
        let proxied = HttpClient::new(&cfg, ClientOptions::default()).unwrap();
        assert!(DirectConnection::for_url(&proxied, "http://a:1/m").is_none());
        let cfg = HttpClientConfig {
            enable_http2: true,
            ..HttpClientConfig::default()
        };
        let h2 = HttpClient::new(&cfg, ClientOptions::default()).unwrap();
        assert!(DirectConnection::for_url(&h2, "https://a:1/m").is_none());
        assert!(DirectConnection::for_url(&h2, "http://a:1/m").is_some());
        let c = DirectConnection::for_url(&client(), "http://[::1]:9100/metrics?a=b").unwrap();
        assert_eq!(
            (
                c.endpoint.host.as_str(),
                c.endpoint.port,
                c.endpoint.authority.as_str()
            ),
            ("::1", 9100, "[::1]:9100")
        );
        assert_eq!(c.endpoint.path_and_query, "/metrics?a=b");
    }
}
