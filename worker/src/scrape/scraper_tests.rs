//! The scrape request against small real HTTP(S) servers: TLS (CA, `server_name`,
//! `insecure_skip_verify`, client certificates, CA rotation), credentials (`basic_auth`,
//! `authorization`, `bearer_token(_file)`, file rotation), the decompressed body limit (gzip
//! bomb), `enable_compression`, `follow_redirects`, `scrape_protocols` (the `Accept` header),
//! `http_headers`, `oauth2`, proxies and `enable_http2`.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use promshard_model::config::Config;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const BODY: &str = "m{a=\"1\"} 1\n";

type Respond = dyn Fn(&str) -> Vec<u8> + Send + Sync;

/// A one-response-per-connection HTTP/1.1 server that records each request head.
struct TestServer {
    addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>, respond: Arc<Respond>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (h, respond, tls) = (h.clone(), respond.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                            if let Ok(s) = acceptor.accept(tcp).await {
                                serve_one(s, &h, &*respond).await;
                            }
                        }
                        None => serve_one(tcp, &h, &*respond).await,
                    }
                });
            }
        });
        TestServer { addr, heads, task }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/metrics", self.addr)
    }

    fn last_head(&self) -> String {
        self.heads
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    heads: &Mutex<Vec<String>>,
    respond: &Respond,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    heads.lock().unwrap().push(head.clone());
    let _ = s.write_all(&respond(&head)).await;
    let _ = s.shutdown().await;
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok_text(body: &[u8]) -> Vec<u8> {
    http(
        "200 OK",
        &[("content-type", "text/plain; version=0.0.4")],
        body,
    )
}

async fn plain_server() -> TestServer {
    TestServer::start(None, Arc::new(|_: &str| ok_text(BODY.as_bytes()))).await
}

/// A scraper for a one-job config whose job section ends with `extra` (indented YAML lines).
fn scraper(extra: &str, url: &str) -> Scraper {
    let yaml = format!("scrape_configs:\n  - job_name: t\n{extra}");
    let cfg = Config::parse(&yaml).unwrap().scrape_configs[0].clone();
    Scraper::new(client_for(&cfg).unwrap(), url.to_string(), &cfg)
}

async fn scrape(s: &mut Scraper) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    s.scrape(&mut buf).await.map(|_| buf)
}

struct Pki {
    ca_pem: String,
    server_cfg: Arc<rustls::ServerConfig>,
    mtls_server_cfg: Arc<rustls::ServerConfig>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A CA, a server certificate for `target.example` only (the URL says 127.0.0.1, so
/// verification needs `server_name`), and a client certificate.
fn pki() -> Pki {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca = ca();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["target.example".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["scraper".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let chain = vec![server_cert.der().clone()];
    let key = || PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key())
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mtls_server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key())
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cfg: Arc::new(server_cfg),
        mtls_server_cfg: Arc::new(mtls_server_cfg),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

#[tokio::test]
async fn tls_target_verified_with_ca_and_server_name() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &pki.ca_pem);
    let body = BODY.as_bytes();
    let srv = TestServer::start(
        Some(pki.server_cfg.clone()),
        Arc::new(move |_: &str| ok_text(body)),
    )
    .await;
    let url = srv.url("https");

    let good = format!("    tls_config: {{ca_file: {ca_file}, server_name: target.example}}\n");
    assert_eq!(scrape(&mut scraper(&good, &url)).await.unwrap(), body);

    // The certificate names target.example, not 127.0.0.1.
    let no_name = format!("    tls_config: {{ca_file: {ca_file}}}\n");
    let e = scrape(&mut scraper(&no_name, &url)).await.unwrap_err();
    assert!(e.contains("not valid for name \"127.0.0.1\""), "{e}");
    // Unknown CA: the system roots do not know ours.
    let no_ca = "    tls_config: {server_name: target.example}\n";
    let e = scrape(&mut scraper(no_ca, &url)).await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // insecure_skip_verify accepts it anyway.
    let insecure = "    tls_config: {insecure_skip_verify: true}\n";
    assert_eq!(scrape(&mut scraper(insecure, &url)).await.unwrap(), body);
    // min_version TLS13 still connects (rustls servers speak 1.3).
    let v13 = format!(
        "    tls_config: {{ca_file: {ca_file}, server_name: target.example, min_version: TLS13}}\n"
    );
    assert_eq!(scrape(&mut scraper(&v13, &url)).await.unwrap(), body);
}

#[tokio::test]
async fn rotated_ca_file_takes_effect_without_rebuilding_the_job() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &ca().pem());
    let body = BODY.as_bytes();
    let srv = TestServer::start(
        Some(pki.server_cfg.clone()),
        Arc::new(move |_: &str| ok_text(body)),
    )
    .await;
    let mut s = scraper(
        &format!("    tls_config: {{ca_file: {ca_file}, server_name: target.example}}\n"),
        &srv.url("https"),
    );
    let e = scrape(&mut s).await.unwrap_err();
    assert!(e.contains("invalid peer certificate"), "{e}");
    write(&dir, "ca.pem", &pki.ca_pem);
    assert_eq!(
        scrape(&mut s).await.unwrap(),
        body,
        "rotated CA read at the next scrape"
    );
}

#[tokio::test]
async fn client_certificate_for_mtls_targets() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(&dir, "ca.pem", &pki.ca_pem);
    let cert_file = write(&dir, "client.pem", &pki.client_cert_pem);
    let key_file = write(&dir, "client.key", &pki.client_key_pem);
    let body = BODY.as_bytes();
    let srv = TestServer::start(
        Some(pki.mtls_server_cfg.clone()),
        Arc::new(move |_: &str| ok_text(body)),
    )
    .await;
    let url = srv.url("https");
    let without = format!("    tls_config: {{ca_file: {ca_file}, server_name: target.example}}\n");
    let e = scrape(&mut scraper(&without, &url)).await.unwrap_err();
    assert!(e.contains("CertificateRequired"), "{e}");
    let with = format!(
        "    tls_config: {{ca_file: {ca_file}, server_name: target.example, \
         cert_file: {cert_file}, key_file: {key_file}}}\n"
    );
    assert_eq!(scrape(&mut scraper(&with, &url)).await.unwrap(), body);
}

fn authorization(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("authorization: "))
        .map(str::to_string)
}

#[tokio::test]
async fn credentials_sent_and_files_reread_each_scrape() {
    use base64::Engine as _;
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(s)
            .to_lowercase()
    };
    let srv = plain_server().await;
    let url = srv.url("http");
    let dir = tempfile::tempdir().unwrap();

    // No credentials configured: no header.
    scrape(&mut scraper("", &url)).await.unwrap();
    assert_eq!(authorization(&srv.last_head()), None);

    let pass = write(&dir, "pass", "s3cret\n");
    let mut s = scraper(
        &format!("    basic_auth: {{username: alice, password_file: {pass}}}\n"),
        &url,
    );
    scrape(&mut s).await.unwrap();
    // Heads are recorded lowercased; the trailing newline of the file is trimmed.
    assert_eq!(
        authorization(&srv.last_head()).unwrap(),
        format!("basic {}", b64("alice:s3cret"))
    );
    write(&dir, "pass", "rotated");
    scrape(&mut s).await.unwrap();
    assert_eq!(
        authorization(&srv.last_head()).unwrap(),
        format!("basic {}", b64("alice:rotated"))
    );
    // Secrets stay out of Debug output (and so out of logs).
    let dbg = format!("{:?}", s.client);
    assert!(!dbg.contains("rotated") && !dbg.contains("alice"), "{dbg}");

    let token = write(&dir, "token", "tok1\n");
    let mut s = scraper(&format!("    bearer_token_file: {token}\n"), &url);
    scrape(&mut s).await.unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "bearer tok1");

    scrape(&mut scraper("    bearer_token: inline\n", &url))
        .await
        .unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "bearer inline");

    let mut s = scraper("    authorization: {type: Custom, credentials: c1}\n", &url);
    scrape(&mut s).await.unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "custom c1");

    // A credentials file that disappears fails the scrape, as in Prometheus.
    let gone = dir.path().join("missing").display().to_string();
    let mut s = scraper(
        &format!("    authorization: {{credentials_file: {gone}}}\n"),
        &url,
    );
    let e = scrape(&mut s).await.unwrap_err();
    assert!(
        e.contains("unable to read authorization credentials file"),
        "{e}"
    );
}

#[tokio::test]
async fn gzip_bomb_stops_at_the_decompressed_limit() {
    // 16 MiB of zeros compress to ~16 KiB: the limit must apply after decompression.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let line = b"zeros 0\n".repeat(1 << 10);
    for _ in 0..(16 << 20) / line.len() {
        gz.write_all(&line).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "compressed size {}", bomb.len());
    let srv = TestServer::start(
        None,
        Arc::new(move |_: &str| {
            http(
                "200 OK",
                &[
                    ("content-type", "text/plain; version=0.0.4"),
                    ("content-encoding", "gzip"),
                ],
                &bomb,
            )
        }),
    )
    .await;
    let url = srv.url("http");
    let e = scrape(&mut scraper("    body_size_limit: 1MB\n", &url))
        .await
        .unwrap_err();
    assert!(e.contains("body size limit exceeded"), "{e}");
    let body = scrape(&mut scraper("    body_size_limit: 32MB\n", &url))
        .await
        .unwrap();
    assert_eq!(body.len(), 16 << 20);
}

#[tokio::test]
async fn accept_encoding_follows_enable_compression() {
    let srv = plain_server().await;
    let url = srv.url("http");
    scrape(&mut scraper("", &url)).await.unwrap();
    // The rest of what Prometheus sends with every scrape.
    let head = srv.last_head();
    let accept = format!(
        "accept: {}\r\n",
        crate::scrape::parser::ACCEPT_HEADER.to_lowercase()
    );
    assert!(head.contains(&accept), "{head}");
    assert!(
        head.contains("x-prometheus-scrape-timeout-seconds: 10\r\n"),
        "{head}"
    );
    assert!(head.contains("user-agent: promshard/"), "{head}");
    assert!(
        srv.last_head().contains("accept-encoding: gzip"),
        "{}",
        srv.last_head()
    );
    scrape(&mut scraper("    enable_compression: false\n", &url))
        .await
        .unwrap();
    assert!(
        srv.last_head().contains("accept-encoding: identity"),
        "{}",
        srv.last_head()
    );
}

#[tokio::test]
async fn redirects_followed_only_when_configured() {
    let srv = TestServer::start(
        None,
        Arc::new(|head: &str| {
            if head.starts_with("get /metrics ") {
                http("302 Found", &[("location", "/real")], b"")
            } else {
                ok_text(BODY.as_bytes())
            }
        }),
    )
    .await;
    let url = srv.url("http");
    assert_eq!(
        scrape(&mut scraper("", &url)).await.unwrap(),
        BODY.as_bytes()
    );
    assert!(srv.last_head().starts_with("get /real "));
    let e = scrape(&mut scraper("    follow_redirects: false\n", &url))
        .await
        .unwrap_err();
    assert!(e.contains("302"), "{e}");
}

#[test]
fn accept_header_follows_scrape_protocols_as_prometheus_3() {
    use promshard_model::config::{EscapingScheme as E, ScrapeProtocol as P};
    // The default list gives Prometheus 3's default header.
    assert_eq!(
        accept_header(&P::DEFAULT, E::AllowUtf8),
        crate::scrape::parser::ACCEPT_HEADER
    );
    assert_eq!(
        accept_header(&[P::PrometheusText0_0_4], E::AllowUtf8),
        "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    );
    // Escaping follows the job's scheme; protobuf takes its place in the order.
    assert_eq!(
        accept_header(
            &[
                P::OpenMetricsText1_0_0,
                P::PrometheusProto,
                P::PrometheusText1_0_0
            ],
            E::Underscores
        ),
        "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,\
         application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,\
         text/plain;version=1.0.0;escaping=underscores;q=0.4,*/*;q=0.3"
    );
    // Prometheus's `DefaultProtoFirstScrapeProtocols` (scrape_test.go `TestAcceptHeader`).
    assert_eq!(
        accept_header(&P::PROTO_FIRST, E::AllowUtf8),
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,\
         application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
         application/openmetrics-text;version=0.0.1;q=0.4,\
         text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
         text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    );
}

#[tokio::test]
async fn scrape_protocols_and_escaping_reach_the_target() {
    let srv = plain_server().await;
    let url = srv.url("http");
    let job = "    metric_name_validation_scheme: legacy\n    scrape_protocols: [PrometheusText1.0.0, OpenMetricsText0.0.1]\n";
    scrape(&mut scraper(job, &url)).await.unwrap();
    let head = srv.last_head();
    assert!(
        head.contains(
            "accept: text/plain;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,*/*;q=0.4\r\n"
        ),
        "{head}"
    );
}

/// A job asking for protobuf first says so in `Accept`, and a protobuf `Content-Type` is read
/// as protobuf.
#[tokio::test]
async fn a_protobuf_answer_is_read_as_protobuf() {
    const PROTO_CT: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    let srv = TestServer::start(
        None,
        Arc::new(|_: &str| http("200 OK", &[("content-type", PROTO_CT)], b"\x00")),
    )
    .await;
    let url = srv.url("http");
    let mut s = scraper(
        "    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n",
        &url,
    );
    let mut buf = Vec::new();
    assert_eq!(s.scrape(&mut buf).await, Ok(Format::Protobuf));
    assert_eq!(buf, b"\x00");
    let head = srv.last_head();
    assert!(
        head.contains(
            "accept: application/vnd.google.protobuf;proto=io.prometheus.client.metricfamily;encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4\r\n"
        ),
        "{head}"
    );
}

fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    head.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[tokio::test]
async fn http_headers_values_secrets_and_files_are_sent_files_reread_each_scrape() {
    let srv = plain_server().await;
    let url = srv.url("http");
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "tenant", "from-file-1\n");
    let job = format!(
        "    http_headers:\n      X-Scope-OrgID: {{values: [team-a], secrets: [s3cret], files: [{file}]}}\n      X-Other: {{values: [o]}}\n"
    );
    let mut s = scraper(&job, &url);
    scrape(&mut s).await.unwrap();
    let head = srv.last_head();
    assert_eq!(
        header_values(&head, "x-scope-orgid"),
        ["team-a", "s3cret", "from-file-1"],
        "{head}"
    );
    assert_eq!(header_values(&head, "x-other"), ["o"]);
    std::fs::write(&file, "from-file-2").unwrap();
    scrape(&mut s).await.unwrap();
    assert_eq!(
        header_values(&srv.last_head(), "x-scope-orgid"),
        ["team-a", "s3cret", "from-file-2"]
    );
    // A header file that cannot be read fails the scrape, as in Prometheus.
    std::fs::remove_file(&file).unwrap();
    let e = scrape(&mut s).await.unwrap_err();
    assert!(e.contains("unable to read headers file"), "{e}");
}

/// A token endpoint: records each request's basic auth and form, answers a token that
/// expires after `expires_in` seconds.
struct TokenServer {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenServer {
    async fn start(expires_in: u64) -> TokenServer {
        use axum::http::HeaderMap;
        let requests: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let r = requests.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let r = r.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let n = {
                        let mut r = r.lock().unwrap();
                        r.push((auth, body));
                        r.len()
                    };
                    axum::Json(serde_json::json!({
                        "access_token": format!("token-{n}"),
                        "token_type": "bearer",
                        "expires_in": expires_in,
                    }))
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_cached_until_it_expires() {
    use base64::Engine as _;
    let srv = plain_server().await;
    let url = srv.url("http");
    let tokens = TokenServer::start(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write(&dir, "secret", "sec ret&1\n");
    let job = format!(
        "    oauth2:\n      client_id: my id\n      client_secret_file: {secret}\n      token_url: {}\n      scopes: [read, write]\n      endpoint_params: {{audience: prom}}\n",
        tokens.url
    );
    let mut s = scraper(&job, &url);
    for _ in 0..3 {
        scrape(&mut s).await.unwrap();
        assert_eq!(
            authorization(&srv.last_head()).as_deref(),
            Some("bearer token-1")
        );
    }
    let reqs = tokens.requests();
    assert_eq!(reqs.len(), 1, "one token for three scrapes: {reqs:?}");
    // Go's clientcredentials: id and secret URL-encoded into basic auth, the rest as a form.
    let want_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("my+id:sec+ret%261")
    );
    assert_eq!(reqs[0].0, want_auth);
    assert_eq!(
        reqs[0].1,
        "grant_type=client_credentials&scope=read+write&audience=prom"
    );
    // A rotated secret gets a new token at once.
    std::fs::write(&secret, "rotated").unwrap();
    scrape(&mut s).await.unwrap();
    assert_eq!(
        authorization(&srv.last_head()).as_deref(),
        Some("bearer token-2")
    );
    assert_eq!(tokens.requests().len(), 2);
}

#[tokio::test]
async fn oauth2_token_expiring_within_ten_seconds_is_renewed_and_failures_fail_the_scrape() {
    let srv = plain_server().await;
    let url = srv.url("http");
    // Expires in 5 s, inside the 10 s margin: renewed for every request.
    let tokens = TokenServer::start(5).await;
    let job = format!(
        "    oauth2: {{client_id: a, client_secret: b, token_url: '{}'}}\n",
        tokens.url
    );
    let mut s = scraper(&job, &url);
    scrape(&mut s).await.unwrap();
    scrape(&mut s).await.unwrap();
    assert_eq!(tokens.requests().len(), 2);
    assert_eq!(
        authorization(&srv.last_head()).as_deref(),
        Some("bearer token-2")
    );
    // No token endpoint: the scrape fails, naming why, and the target is not asked.
    let before = srv.heads.lock().unwrap().len();
    let job =
        "    oauth2: {client_id: a, client_secret: b, token_url: 'http://127.0.0.1:9/token'}\n";
    let e = scrape(&mut scraper(job, &url)).await.unwrap_err();
    assert!(e.contains("oauth2: cannot fetch token"), "{e}");
    assert_eq!(srv.heads.lock().unwrap().len(), before);
}

#[tokio::test]
async fn proxy_url_carries_requests_except_no_proxy_hosts() {
    // The "proxy" answers every request itself and records what it was asked.
    let proxy = TestServer::start(None, Arc::new(|_: &str| ok_text(BODY.as_bytes()))).await;
    let proxy_url = format!("http://{}", proxy.addr);
    let direct = plain_server().await;

    let job = format!(
        "    proxy_url: {proxy_url}\n    no_proxy: 127.0.0.1,.internal\n    proxy_connect_header: {{Proxy-Authorization: [Basic cHJveHk6cHc=]}}\n"
    );
    // A plain-http target through the proxy: absolute-form request line.
    let body = scrape(&mut scraper(&job, "http://metrics.example:9100/metrics"))
        .await
        .unwrap();
    assert_eq!(body, BODY.as_bytes());
    let head = proxy.last_head();
    assert!(
        head.starts_with("get http://metrics.example:9100/metrics http/1.1"),
        "{head}"
    );
    assert_eq!(
        header_values(&head, "proxy-authorization"),
        ["basic cHJveHk6cHc=".to_lowercase()]
    );
    // no_proxy: straight to the target.
    let seen = proxy.heads.lock().unwrap().len();
    scrape(&mut scraper(&job, &direct.url("http")))
        .await
        .unwrap();
    assert_eq!(proxy.heads.lock().unwrap().len(), seen);
    assert!(direct.last_head().starts_with("get /metrics "));

    // An https target: a CONNECT to the proxy, with the connect headers.
    let refuse = TestServer::start(None, Arc::new(|_: &str| http("403 Forbidden", &[], b""))).await;
    let job = format!(
        "    proxy_url: http://{}\n    proxy_connect_header: {{Proxy-Authorization: [Basic eDp5]}}\n",
        refuse.addr
    );
    let e = scrape(&mut scraper(&job, "https://secure.example:8443/metrics"))
        .await
        .unwrap_err();
    let head = refuse.last_head();
    assert!(
        head.starts_with("connect secure.example:8443 http/1.1"),
        "{head}\n{e}"
    );
    assert_eq!(
        header_values(&head, "proxy-authorization"),
        ["basic eDp5".to_lowercase()]
    );
}

/// A TLS server that records the ALPN protocols each client offers, then speaks HTTP/1.1.
async fn alpn_recording_server(
    cfg: Arc<rustls::ServerConfig>,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let offers: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let o = offers.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (o, cfg) = (o.clone(), cfg.clone());
            tokio::spawn(async move {
                let acceptor =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                let Ok(start) = acceptor.await else { return };
                let offered = start
                    .client_hello()
                    .alpn()
                    .map(|a| a.map(|p| String::from_utf8_lossy(p).into_owned()).collect())
                    .unwrap_or_default();
                o.lock().unwrap().push(offered);
                if let Ok(s) = start.into_stream(cfg).await {
                    let heads = Mutex::new(Vec::new());
                    serve_one(s, &heads, &|_: &str| ok_text(BODY.as_bytes())).await;
                }
            });
        }
    });
    (addr, offers)
}

#[tokio::test]
async fn enable_http2_offers_h2_over_tls_and_false_does_not() {
    let pki = pki();
    let (addr, offers) = alpn_recording_server(pki.server_cfg.clone()).await;
    let url = format!("https://{addr}/metrics");
    let insecure = "    tls_config: {insecure_skip_verify: true}\n";
    assert_eq!(
        scrape(&mut scraper(insecure, &url)).await.unwrap(),
        BODY.as_bytes()
    );
    let off = format!("{insecure}    enable_http2: false\n");
    assert_eq!(
        scrape(&mut scraper(&off, &url)).await.unwrap(),
        BODY.as_bytes()
    );
    assert_eq!(
        *offers.lock().unwrap(),
        [
            vec!["h2".to_string(), "http/1.1".to_string()],
            vec!["http/1.1".to_string()]
        ]
    );
}
