//! The scrape request against small real HTTP(S) servers: TLS (CA, `server_name`,
//! `insecure_skip_verify`, client certificates, CA rotation), credentials (`basic_auth`,
//! `authorization`, `bearer_token(_file)`, file rotation), the decompressed body limit (gzip
//! bomb), `enable_compression` and `follow_redirects`.

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

async fn scrape(s: &Scraper) -> Result<Vec<u8>, String> {
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
    assert_eq!(scrape(&scraper(&good, &url)).await.unwrap(), body);

    // The certificate names target.example, not 127.0.0.1.
    let no_name = format!("    tls_config: {{ca_file: {ca_file}}}\n");
    let e = scrape(&scraper(&no_name, &url)).await.unwrap_err();
    assert!(e.contains("not valid for name \"127.0.0.1\""), "{e}");
    // Unknown CA: the system roots do not know ours.
    let no_ca = "    tls_config: {server_name: target.example}\n";
    let e = scrape(&scraper(no_ca, &url)).await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // insecure_skip_verify accepts it anyway.
    let insecure = "    tls_config: {insecure_skip_verify: true}\n";
    assert_eq!(scrape(&scraper(insecure, &url)).await.unwrap(), body);
    // min_version TLS13 still connects (rustls servers speak 1.3).
    let v13 = format!(
        "    tls_config: {{ca_file: {ca_file}, server_name: target.example, min_version: TLS13}}\n"
    );
    assert_eq!(scrape(&scraper(&v13, &url)).await.unwrap(), body);
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
    let s = scraper(
        &format!("    tls_config: {{ca_file: {ca_file}, server_name: target.example}}\n"),
        &srv.url("https"),
    );
    let e = scrape(&s).await.unwrap_err();
    assert!(e.contains("invalid peer certificate"), "{e}");
    write(&dir, "ca.pem", &pki.ca_pem);
    assert_eq!(
        scrape(&s).await.unwrap(),
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
    let e = scrape(&scraper(&without, &url)).await.unwrap_err();
    assert!(e.contains("CertificateRequired"), "{e}");
    let with = format!(
        "    tls_config: {{ca_file: {ca_file}, server_name: target.example, \
         cert_file: {cert_file}, key_file: {key_file}}}\n"
    );
    assert_eq!(scrape(&scraper(&with, &url)).await.unwrap(), body);
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
    scrape(&scraper("", &url)).await.unwrap();
    assert_eq!(authorization(&srv.last_head()), None);

    let pass = write(&dir, "pass", "s3cret\n");
    let s = scraper(
        &format!("    basic_auth: {{username: alice, password_file: {pass}}}\n"),
        &url,
    );
    scrape(&s).await.unwrap();
    // Heads are recorded lowercased; the trailing newline of the file is trimmed.
    assert_eq!(
        authorization(&srv.last_head()).unwrap(),
        format!("basic {}", b64("alice:s3cret"))
    );
    write(&dir, "pass", "rotated");
    scrape(&s).await.unwrap();
    assert_eq!(
        authorization(&srv.last_head()).unwrap(),
        format!("basic {}", b64("alice:rotated"))
    );
    // Secrets stay out of Debug output (and so out of logs).
    let dbg = format!("{:?}", s.client);
    assert!(!dbg.contains("rotated") && !dbg.contains("alice"), "{dbg}");

    let token = write(&dir, "token", "tok1\n");
    let s = scraper(&format!("    bearer_token_file: {token}\n"), &url);
    scrape(&s).await.unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "bearer tok1");

    scrape(&scraper("    bearer_token: inline\n", &url))
        .await
        .unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "bearer inline");

    let s = scraper("    authorization: {type: Custom, credentials: c1}\n", &url);
    scrape(&s).await.unwrap();
    assert_eq!(authorization(&srv.last_head()).unwrap(), "custom c1");

    // A credentials file that disappears fails the scrape, as in Prometheus.
    let gone = dir.path().join("missing").display().to_string();
    let s = scraper(
        &format!("    authorization: {{credentials_file: {gone}}}\n"),
        &url,
    );
    let e = scrape(&s).await.unwrap_err();
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
    let e = scrape(&scraper("    body_size_limit: 1MB\n", &url))
        .await
        .unwrap_err();
    assert!(e.contains("body size limit exceeded"), "{e}");
    let body = scrape(&scraper("    body_size_limit: 32MB\n", &url))
        .await
        .unwrap();
    assert_eq!(body.len(), 16 << 20);
}

#[tokio::test]
async fn accept_encoding_follows_enable_compression() {
    let srv = plain_server().await;
    let url = srv.url("http");
    scrape(&scraper("", &url)).await.unwrap();
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
    scrape(&scraper("    enable_compression: false\n", &url))
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
    assert_eq!(scrape(&scraper("", &url)).await.unwrap(), BODY.as_bytes());
    assert!(srv.last_head().starts_with("get /real "));
    let e = scrape(&scraper("    follow_redirects: false\n", &url))
        .await
        .unwrap_err();
    assert!(e.contains("302"), "{e}");
}
