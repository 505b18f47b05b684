//! The HTTP client for one scrape job, remote-write queue or HTTP service discovery, built from
//! Prometheus's common client settings ([`HttpClientConfig`]: `basic_auth`, `authorization`,
//! `oauth2`, `bearer_token(_file)`, `tls_config`, `follow_redirects`, `enable_http2`, the proxy
//! settings and `http_headers`). Shared by the worker's scrape loops and remote write and by the
//! master's discoveries, so all of them speak TLS and send credentials the same way.
//!
//! Files are handled as Prometheus's `common/config` does: credential files (`password_file`,
//! `username_file`, `credentials_file`, `bearer_token_file`, `http_headers` files, the OAuth2
//! `client_secret_file`) are read on every request, so a rotated Kubernetes secret takes effect
//! at the next scrape; TLS files (`ca_file`, `cert_file`, `key_file`) are re-read on every
//! request and the client is rebuilt only when their content changed. Secrets never reach a log
//! line: [`HttpClient`]'s `Debug` omits them and the `Authorization` header is marked sensitive.
//!
//! TLS is rustls with the workspace's one provider (aws-lc-rs). Differences from Go's TLS: no
//! TLS 1.0/1.1 (rejected at config load), and `server_name` is used to *verify* the server's
//! certificate while the SNI sent is still the URL's host (rustls takes SNI from the URL).
//! HTTP/2 is offered over TLS (ALPN `h2`) unless `enable_http2: false`; plain `http://` is
//! HTTP/1.1, as in Go.
//!
//! Proxies follow Go's `http.Transport`: `proxy_url` (with the `no_proxy` exceptions) or, with
//! `proxy_from_environment`, the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` variables; otherwise no
//! proxy at all, whatever the environment says. `proxy_connect_header` is sent to the proxy with
//! each request (on the `CONNECT` of an `https://` URL, and on a proxied `http://` request).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use promshard_model::http_config::{HttpClientConfig, ProxyConfig, TlsConfig};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::oauth2::TokenSource;

/// Transport settings that are not part of [`HttpClientConfig`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Ask for and transparently decompress gzip responses (`enable_compression` for scrapes).
    pub gzip: bool,
    pub pool_idle_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            gzip: true,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// A client that applies a job's auth, TLS, proxy and header settings to each request.
pub struct HttpClient {
    cfg: HttpClientConfig,
    opts: ClientOptions,
    /// The current client and the TLS material it was built from (to notice file changes).
    state: Mutex<(reqwest::Client, TlsMaterial)>,
    /// `oauth2`: tokens fetched once and reused until shortly before they expire.
    oauth2: Option<TokenSource>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names which settings are present, never their values.
        f.debug_struct("HttpClient")
            .field("basic_auth", &self.cfg.basic_auth.is_some())
            .field(
                "authorization",
                &(self.cfg.authorization.is_some() || !self.cfg.bearer_token.is_empty()),
            )
            .field("bearer_token_file", &self.cfg.bearer_token_file)
            .field("oauth2", &self.cfg.oauth2.is_some())
            .field("tls_config", &self.cfg.tls_config.is_some())
            .field("proxy_url", &self.cfg.proxy.proxy_url)
            .field(
                "http_headers",
                &self.cfg.http_headers.keys().collect::<Vec<_>>(),
            )
            .field("opts", &self.opts)
            .finish()
    }
}

impl HttpClient {
    /// Validates `cfg` (Prometheus's rules) and builds the client; TLS files must be readable.
    pub fn new(cfg: &HttpClientConfig, opts: ClientOptions) -> anyhow::Result<HttpClient> {
        cfg.validate()
            .map_err(|e| anyhow!("{}: {}", e.field, e.message))?;
        let material = TlsMaterial::load(cfg.tls_config.as_ref())?;
        let client = build_client(cfg, &material, &opts)?;
        let oauth2 = match &cfg.oauth2 {
            Some(o) => Some(TokenSource::new(o)?),
            None => None,
        };
        Ok(HttpClient {
            cfg: cfg.clone(),
            opts,
            state: Mutex::new((client, material)),
            oauth2,
        })
    }

    /// The underlying client as of now (for callers that add auth themselves; prefer
    /// [`HttpClient::request`]).
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        self.refresh_tls()
    }

    /// A request with the job's credentials and `http_headers` set, on a client whose TLS
    /// material is current. Fails (as the scrape or send would in Prometheus) when a credential,
    /// header or TLS file cannot be read, or no OAuth2 token can be had.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let client = self.refresh_tls()?;
        let mut req = client.request(method, url);
        if let Some(v) = self.authorization_header().await? {
            req = req.header(AUTHORIZATION, v);
        }
        let headers = self.http_headers()?;
        if !headers.is_empty() {
            req = req.headers(headers);
        }
        Ok(req)
    }

    /// The credentials and `http_headers` a request carries (what [`HttpClient::request`]
    /// adds), for a request made without the pooled client (the direct scrape connection).
    pub async fn request_headers(&self) -> anyhow::Result<HeaderMap> {
        let mut headers = self.http_headers()?;
        if let Some(v) = self.authorization_header().await? {
            headers.insert(AUTHORIZATION, v);
        }
        Ok(headers)
    }

    /// Whether a direct HTTP/1.1 connection can carry this client's requests: not through a
    /// proxy, and not where HTTP/2 would be offered (Go offers h2 over TLS).
    pub(crate) fn direct_capable(&self, https: bool) -> bool {
        let p = &self.cfg.proxy;
        p.proxy_url.is_empty() && !p.proxy_from_environment && !(https && self.cfg.enable_http2)
    }

    /// The TLS configuration of a new connection, from the TLS files as they are now.
    pub(crate) fn rustls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let material = TlsMaterial::load(self.cfg.tls_config.as_ref())?;
        rustls_config(self.cfg.tls_config.as_ref(), &material)
    }

    /// `http_headers`: every value, secret and file content, added (a name may repeat).
    fn http_headers(&self) -> anyhow::Result<HeaderMap> {
        let mut out = HeaderMap::new();
        for (name, h) in &self.cfg.http_headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| anyhow!("http_headers: {name:?} is not a header name"))?;
            let mut add = |v: &str, sensitive: bool| -> anyhow::Result<()> {
                let mut v = HeaderValue::from_str(v).map_err(|_| {
                    anyhow!("http_headers: a value of {name} is not allowed in a header")
                })?;
                v.set_sensitive(sensitive);
                out.append(name.clone(), v);
                Ok(())
            };
            for v in &h.values {
                add(v, false)?;
            }
            for v in &h.secrets {
                add(v, true)?;
            }
            for f in &h.files {
                let v = std::fs::read_to_string(f)
                    .with_context(|| format!("unable to read headers file {f}"))?;
                add(v.trim(), true)?;
            }
        }
        Ok(out)
    }

    fn refresh_tls(&self) -> anyhow::Result<reqwest::Client> {
        let tls = self.cfg.tls_config.as_ref();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if tls.is_some_and(has_files) {
            let now = TlsMaterial::load(tls)?;
            if now != state.1 {
                let client = build_client(&self.cfg, &now, &self.opts)?;
                tracing::info!("TLS files changed; rebuilt HTTP client");
                *state = (client, now);
            }
        }
        Ok(state.0.clone())
    }

    /// The `Authorization` value from `basic_auth`, `authorization`, `oauth2` or
    /// `bearer_token(_file)`.
    async fn authorization_header(&self) -> anyhow::Result<Option<HeaderValue>> {
        let value = if let Some(source) = &self.oauth2 {
            source.authorization().await?
        } else if let Some(b) = &self.cfg.basic_auth {
            let user = secret(&b.username, &b.username_file, "basic auth username")?;
            let pass = secret(&b.password, &b.password_file, "basic auth password")?;
            use base64::Engine as _;
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            format!("Basic {enc}")
        } else if let Some(a) = &self.cfg.authorization {
            let creds = secret(
                &a.credentials,
                &a.credentials_file,
                "authorization credentials",
            )?;
            let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
            format!("{kind} {creds}")
        } else if !self.cfg.bearer_token.is_empty() || !self.cfg.bearer_token_file.is_empty() {
            let creds = secret(
                &self.cfg.bearer_token,
                &self.cfg.bearer_token_file,
                "bearer token",
            )?;
            format!("Bearer {creds}")
        } else {
            return Ok(None);
        };
        let mut v = HeaderValue::from_str(&value)
            .map_err(|_| anyhow!("credentials contain characters not allowed in a header"))?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

/// An inline secret, or the trimmed content of its file (read now), as Prometheus's
/// `FileSecret` does.
pub(crate) fn secret(inline: &str, file: &str, what: &str) -> anyhow::Result<String> {
    if file.is_empty() {
        return Ok(inline.to_string());
    }
    let content = std::fs::read_to_string(file)
        .with_context(|| format!("unable to read {what} file {file}"))?;
    Ok(content.trim().to_string())
}

fn has_files(t: &TlsConfig) -> bool {
    !t.ca_file.is_empty() || !t.cert_file.is_empty() || !t.key_file.is_empty()
}

/// The PEM bytes a TLS config refers to, inline or read from its files.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct TlsMaterial {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl TlsMaterial {
    pub(crate) fn load(tls: Option<&TlsConfig>) -> anyhow::Result<TlsMaterial> {
        let Some(t) = tls else {
            return Ok(TlsMaterial::default());
        };
        let read = |inline: &str, file: &str, what: &str| -> anyhow::Result<Vec<u8>> {
            if file.is_empty() {
                Ok(inline.as_bytes().to_vec())
            } else {
                std::fs::read(file).with_context(|| format!("unable to read {what} file {file}"))
            }
        };
        Ok(TlsMaterial {
            ca: read(&t.ca, &t.ca_file, "CA")?,
            cert: read(&t.cert, &t.cert_file, "client certificate")?,
            key: read(&t.key, &t.key_file, "client key")?,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The system's roots, loaded once per process (Prometheus uses the system pool when no CA is set).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!("no system CA certificates found; TLS targets need tls_config.ca");
            }
            Arc::new(store)
        })
        .clone()
}

fn build_client(
    cfg: &HttpClientConfig,
    material: &TlsMaterial,
    opts: &ClientOptions,
) -> anyhow::Result<reqwest::Client> {
    let redirect = if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut tls = rustls_config(cfg.tls_config.as_ref(), material)?;
    let mut builder = reqwest::Client::builder()
        .gzip(opts.gzip)
        .redirect(redirect)
        .pool_idle_timeout(opts.pool_idle_timeout)
        .tcp_nodelay(true);
    // Go offers h2 over TLS by ALPN when HTTP/2 is enabled, and speaks HTTP/1.1 otherwise.
    if cfg.enable_http2 {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    } else {
        builder = builder.http1_only();
    }
    builder = with_proxy(builder.tls_backend_preconfigured(tls), &cfg.proxy)?;
    Ok(builder.build()?)
}

/// Go's rules: `proxy_url` with its `no_proxy` exceptions, or the environment with
/// `proxy_from_environment`, or no proxy (reqwest would read the environment by default).
pub(crate) fn with_proxy(
    builder: reqwest::ClientBuilder,
    proxy: &ProxyConfig,
) -> anyhow::Result<reqwest::ClientBuilder> {
    if proxy.proxy_from_environment {
        return Ok(builder);
    }
    let builder = builder.no_proxy();
    if proxy.proxy_url.is_empty() {
        return Ok(builder);
    }
    let mut p = reqwest::Proxy::all(&proxy.proxy_url)
        .with_context(|| format!("invalid proxy_url {:?}", proxy.proxy_url))?;
    if !proxy.no_proxy.is_empty() {
        p = p.no_proxy(reqwest::NoProxy::from_string(&proxy.no_proxy));
    }
    if !proxy.proxy_connect_header.is_empty() {
        let mut headers = HeaderMap::new();
        for (name, values) in &proxy.proxy_connect_header {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| anyhow!("proxy_connect_header: {name:?} is not a header name"))?;
            for v in values {
                let mut v = HeaderValue::from_str(v).map_err(|_| {
                    anyhow!("proxy_connect_header: a value of {name} is not allowed in a header")
                })?;
                v.set_sensitive(true);
                headers.append(name.clone(), v);
            }
        }
        p = p.headers(headers);
    }
    Ok(builder.proxy(p))
}

pub(crate) fn rustls_config(
    tls: Option<&TlsConfig>,
    material: &TlsMaterial,
) -> anyhow::Result<rustls::ClientConfig> {
    let default = TlsConfig::default();
    let t = tls.unwrap_or(&default);
    let provider = provider();
    let roots = if material.ca.is_empty() {
        system_roots()
    } else {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&material.ca) {
            store
                .add(cert.context("unable to parse CA certificate")?)
                .context("unable to use CA certificate")?;
        }
        if store.is_empty() {
            bail!("unable to use specified CA cert: no certificate in PEM");
        }
        Arc::new(store)
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .context("unable to build the certificate verifier")?;
    let server_name = if t.server_name.is_empty() {
        None
    } else {
        Some(
            ServerName::try_from(t.server_name.clone())
                .map_err(|_| anyhow!("invalid tls_config.server_name {:?}", t.server_name))?,
        )
    };
    let verifier = Arc::new(Verifier {
        inner: webpki,
        server_name,
        insecure: t.insecure_skip_verify,
        provider: provider.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] =
        match (t.min_version.as_str(), t.max_version.as_str()) {
            ("TLS13", _) => &[&rustls::version::TLS13],
            (_, "TLS12") => &[&rustls::version::TLS12],
            _ => rustls::ALL_VERSIONS,
        };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if material.cert.is_empty() {
        builder.with_no_client_auth()
    } else {
        let certs = CertificateDer::pem_slice_iter(&material.cert)
            .collect::<Result<Vec<_>, _>>()
            .context("unable to parse client certificate")?;
        let key =
            PrivateKeyDer::from_pem_slice(&material.key).context("unable to parse client key")?;
        builder
            .with_client_auth_cert(certs, key)
            .context("unable to use client certificate")?
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies as webpki does, against `server_name` when set, or not at all under
/// `insecure_skip_verify` (handshake signatures are still checked).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    server_name: Option<ServerName<'static>>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        let name = self.server_name.as_ref().unwrap_or(server_name);
        self.inner
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
