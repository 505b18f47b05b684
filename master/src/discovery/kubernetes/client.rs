//! Building kube clients (in-cluster, `--kubeconfig`/`KUBECONFIG`, or a config's `api_server`
//! with its own auth and TLS settings) with a layer that counts every request by verb and
//! resource, so the footprint promshard puts on the API server is visible in its own metrics.
//!
//! An `api_server` entry's HTTP client settings map onto kube's config as Prometheus maps them
//! onto client-go's: `basic_auth`, `authorization` (a `Bearer` token, or any other scheme as a
//! header), `bearer_token(_file)`, `tls_config` (CA, client certificate, `server_name`,
//! `insecure_skip_verify`) and `http_headers`. Bearer token files are read for each request and
//! certificate files by kube itself; `password_file`, `username_file`, non-Bearer
//! `credentials_file` and header files are read once, when the client is built (at start and on
//! a config change).
//! `oauth2`, proxies and TLS version bounds are refused at load time for this section.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use promshard_model::config::KubernetesSdConfig;

use crate::metrics::Metrics;

pub const USER_AGENT: &str = concat!("promshard-master/", env!("CARGO_PKG_VERSION"));

/// Which API server a `kubernetes_sd_configs` entry talks to. Entries with the same key share
/// one client and one watch per resource kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterKey {
    /// In-cluster config, the master's `--kubeconfig`, or `KUBECONFIG`.
    Default,
    ApiServer(ApiServer),
    Kubeconfig(String),
}

/// An `api_server` with the entry's HTTP client settings: entries that name the same server
/// with the same settings share a client. Compared by the settings' canonical YAML; `Debug`
/// shows the URL only (the settings hold credentials).
#[derive(Clone)]
pub struct ApiServer {
    pub url: String,
    sd: Arc<KubernetesSdConfig>,
    canonical: String,
}

impl ApiServer {
    pub fn new(sd: &KubernetesSdConfig) -> ApiServer {
        // Only what the client is built from: role, namespaces and selectors apply over the
        // shared stores.
        let client_only = KubernetesSdConfig {
            role: promshard_model::config::KubernetesRole::Pod,
            namespaces: Default::default(),
            selectors: Vec::new(),
            attach_metadata: Default::default(),
            ..sd.clone()
        };
        ApiServer {
            url: sd.api_server_url().unwrap_or_default(),
            canonical: serde_norway::to_string(&client_only).unwrap_or_default(),
            sd: Arc::new(sd.clone()),
        }
    }
}

impl PartialEq for ApiServer {
    fn eq(&self, other: &Self) -> bool {
        (&self.url, &self.canonical) == (&other.url, &other.canonical)
    }
}
impl Eq for ApiServer {}
impl Hash for ApiServer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.url, &self.canonical).hash(state);
    }
}
impl PartialOrd for ApiServer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ApiServer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.url, &self.canonical).cmp(&(&other.url, &other.canonical))
    }
}
impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ApiServer").field(&self.url).finish()
    }
}

/// A file's content, or the inline value; trimmed as Prometheus's secrets are.
fn secret(inline: &str, file: &str, what: &str) -> anyhow::Result<String> {
    if file.is_empty() {
        return Ok(inline.to_string());
    }
    let s = std::fs::read_to_string(file)
        .with_context(|| format!("kubernetes_sd_configs: reading {what} file {file}"))?;
    Ok(s.trim().to_string())
}

/// kube's config for an `api_server` entry (see the module docs for the mapping), and the
/// bearer token file to read for each request, if any (kube's own token file reading keeps the
/// trailing newline, which makes an invalid header; Prometheus trims it).
pub(crate) fn api_server_config(
    sd: &KubernetesSdConfig,
) -> anyhow::Result<(kube::Config, Option<String>)> {
    use base64::Engine as _;
    let url = sd.api_server_url().unwrap_or_default();
    let mut config = kube::Config::new(
        url.parse()
            .with_context(|| format!("kubernetes_sd_configs: invalid api_server {url:?}"))?,
    );
    let http = sd.http_client_config();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    if let Some(t) = &http.tls_config {
        let ca = secret(&t.ca, &t.ca_file, "CA")?;
        if !ca.is_empty() {
            use rustls_pki_types::pem::PemObject as _;
            let certs = rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes())
                .map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("kubernetes_sd_configs: tls_config CA: {e}"))?;
            config.root_cert = Some(certs);
        }
        config.accept_invalid_certs = t.insecure_skip_verify;
        if !t.server_name.is_empty() {
            config.tls_server_name = Some(t.server_name.clone());
        }
        if !t.cert_file.is_empty() {
            config.auth_info.client_certificate = Some(t.cert_file.clone());
        } else if !t.cert.is_empty() {
            config.auth_info.client_certificate_data = Some(b64(&t.cert));
        }
        if !t.key_file.is_empty() {
            config.auth_info.client_key = Some(t.key_file.clone());
        } else if !t.key.is_empty() {
            config.auth_info.client_key_data = Some(b64(&t.key).into());
        }
    }
    if let Some(b) = &http.basic_auth {
        config.auth_info.username = Some(secret(
            &b.username,
            &b.username_file,
            "basic auth username",
        )?);
        config.auth_info.password =
            Some(secret(&b.password, &b.password_file, "basic auth password")?.into());
    }
    let mut token_file = None;
    let mut bearer = |config: &mut kube::Config, inline: &str, file: &str| {
        if file.is_empty() {
            config.auth_info.token = Some(inline.to_string().into());
        } else {
            token_file = Some(file.to_string());
        }
    };
    if let Some(a) = &http.authorization {
        if a.kind.is_empty() || a.kind.eq_ignore_ascii_case("bearer") {
            bearer(&mut config, &a.credentials, &a.credentials_file);
        } else {
            let creds = secret(
                &a.credentials,
                &a.credentials_file,
                "authorization credentials",
            )?;
            let mut v =
                http::HeaderValue::from_str(&format!("{} {creds}", a.kind)).map_err(|_| {
                    anyhow!("kubernetes_sd_configs: authorization is not a valid header")
                })?;
            v.set_sensitive(true);
            config.headers.push((http::header::AUTHORIZATION, v));
        }
    }
    if !http.bearer_token.is_empty() || !http.bearer_token_file.is_empty() {
        bearer(&mut config, &http.bearer_token, &http.bearer_token_file);
    }
    for (name, h) in &http.http_headers {
        let name = http::HeaderName::try_from(name.as_str()).map_err(|_| {
            anyhow!("kubernetes_sd_configs: http_headers: {name:?} is not a header name")
        })?;
        let files = h
            .files
            .iter()
            .map(|f| secret("", f, "headers"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for v in h.values.iter().chain(&h.secrets).chain(&files) {
            let v = http::HeaderValue::from_str(v).map_err(|_| {
                anyhow!("kubernetes_sd_configs: http_headers: a value of {name} is not allowed")
            })?;
            config.headers.push((name.clone(), v));
        }
    }
    Ok((config, token_file))
}

pub(crate) async fn build_client(
    key: &ClusterKey,
    master_kubeconfig: Option<&Path>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<kube::Client> {
    build_client_with(key, master_kubeconfig, metrics, |_| {}).await
}

/// [`build_client`] with the resolved config adjusted first (leader election sets timeouts and
/// turns kube's retries off, see `crate::leader`).
pub(crate) async fn build_client_with(
    key: &ClusterKey,
    master_kubeconfig: Option<&Path>,
    metrics: Arc<Metrics>,
    adjust: impl FnOnce(&mut kube::Config),
) -> anyhow::Result<kube::Client> {
    let mut token_file = None;
    let mut config = match key {
        ClusterKey::ApiServer(server) => {
            let (config, file) = api_server_config(&server.sd)?;
            token_file = file;
            config
        }
        ClusterKey::Kubeconfig(path) => from_kubeconfig(Path::new(path)).await?,
        ClusterKey::Default => match master_kubeconfig {
            Some(path) => from_kubeconfig(path).await?,
            None => kube::Config::infer().await.context(
                "kubernetes_sd_configs: no Kubernetes configuration found (not in a cluster, no \
                 --kubeconfig, no KUBECONFIG); set api_server or kubeconfig_file",
            )?,
        },
    };
    adjust(&mut config);
    let layer = tower::layer::layer_fn(move |inner| Accounting {
        inner,
        metrics: metrics.clone(),
        token_file: token_file.clone(),
    });
    let builder = ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    Ok(builder.with_layer(&layer).build())
}

/// Counts every request (and its response code) by verb and resource, names the master in
/// the `User-Agent`, and reads a bearer token file for each request.
#[derive(Clone)]
struct Accounting<S> {
    inner: S,
    metrics: Arc<Metrics>,
    token_file: Option<String>,
}

impl<S, B> tower::Service<http::Request<kube::client::Body>> for Accounting<S>
where
    S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<kube::client::Body>) -> Self::Future {
        let (verb, resource) = classify(req.method(), req.uri());
        self.metrics.kube_request(verb, &resource);
        // Named in the API server's audit log and request metrics, so operators can see
        // exactly what load the master puts on it.
        req.headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(USER_AGENT));
        // Read per request so a rotated token takes effect at once, as in Prometheus. A watch
        // client sends a handful of requests per kind (LIST, WATCH, rare re-LISTs), so the
        // small synchronous read costs nothing that matters.
        if let Some(file) = &self.token_file {
            match std::fs::read_to_string(file) {
                Ok(t) => {
                    if let Ok(mut v) = http::HeaderValue::from_str(&format!("Bearer {}", t.trim()))
                    {
                        v.set_sensitive(true);
                        req.headers_mut().insert(http::header::AUTHORIZATION, v);
                    }
                }
                Err(e) => {
                    tracing::warn!(%file, error = %e, "kubernetes_sd_configs: cannot read the token file")
                }
            }
        }
        let fut = self.inner.call(req);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            metrics.apiserver_request(verb, &resource, &code);
            res
        })
    }
}

async fn from_kubeconfig(path: &Path) -> anyhow::Result<kube::Config> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("using kubeconfig {}", path.display()))
}

/// Verb and resource of a request, as the API server's audit log would name them.
pub(crate) fn classify(method: &http::Method, uri: &http::Uri) -> (&'static str, String) {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut rest: &[&str] = match segs.first() {
        Some(&"api") => segs.get(2..).unwrap_or(&[]),
        Some(&"apis") => segs.get(3..).unwrap_or(&[]),
        _ => &[],
    };
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        rest = &rest[2..];
    }
    let resource = rest
        .first()
        .map_or_else(|| "other".to_string(), |r| r.to_string());
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if rest.len() >= 2 => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use promshard_model::config::Config;

    use super::*;

    fn sd(yaml: &str) -> KubernetesSdConfig {
        Config::parse(&format!(
            "scrape_configs: [{{job_name: k, kubernetes_sd_configs: [{yaml}]}}]"
        ))
        .unwrap()
        .scrape_configs[0]
            .kubernetes_sd_configs[0]
            .clone()
    }

    #[test]
    fn api_server_settings_map_onto_kube_config() {
        // Without a scheme: http://, or https:// with tls_config, as client-go does.
        let (c, _) = api_server_config(&sd("{role: pod, api_server: 'k8s.example:6443'}")).unwrap();
        assert_eq!(c.cluster_url.to_string(), "http://k8s.example:6443/");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret-pw\n").unwrap();
        let (c, _) = api_server_config(&sd(&format!(
            "{{role: pod, api_server: 'k8s.example:6443', basic_auth: {{username: u, password_file: {}}}, tls_config: {{insecure_skip_verify: true, server_name: api.internal, cert_file: /c.pem, key_file: /k.pem}}, http_headers: {{X-A: {{values: [1, 2]}}}}}}",
            pw.display()
        )))
        .unwrap();
        assert_eq!(c.cluster_url.to_string(), "https://k8s.example:6443/");
        assert!(c.accept_invalid_certs);
        assert_eq!(c.tls_server_name.as_deref(), Some("api.internal"));
        assert_eq!(c.auth_info.username.as_deref(), Some("u"));
        use secrecy::ExposeSecret as _;
        assert_eq!(
            c.auth_info
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
            Some("secret-pw".to_string())
        );
        assert_eq!(c.auth_info.client_certificate.as_deref(), Some("/c.pem"));
        assert_eq!(c.auth_info.client_key.as_deref(), Some("/k.pem"));
        let headers: Vec<_> = c
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        assert_eq!(headers, ["x-a: 1", "x-a: 2"]);

        let (c, file) = api_server_config(&sd(
            "{role: pod, api_server: 'https://k:1', authorization: {credentials_file: /run/token}}",
        ))
        .unwrap();
        assert_eq!(file.as_deref(), Some("/run/token"));
        assert!(c.auth_info.token.is_none());
        let (c, _) = api_server_config(&sd(
            "{role: pod, api_server: 'https://k:1', authorization: {type: Token, credentials: abc}}",
        ))
        .unwrap();
        assert_eq!(c.headers[0].1.to_str().unwrap(), "Token abc");
    }

    #[test]
    fn entries_share_a_client_only_with_the_same_server_and_settings() {
        let a = ApiServer::new(&sd(
            "{role: pod, api_server: 'https://k:1', bearer_token: x}",
        ));
        let b = ApiServer::new(&sd(
            "{role: endpoints, api_server: 'https://k:1', bearer_token: x, namespaces: {names: [n]}}",
        ));
        let c = ApiServer::new(&sd(
            "{role: pod, api_server: 'https://k:1', bearer_token: y}",
        ));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Never prints the credentials.
        assert_eq!(format!("{c:?}"), r#"ApiServer("https://k:1")"#);
    }

    #[test]
    fn classifies_like_audit_logs() {
        let c = |m: &str, u: &str| {
            let (v, r) = classify(&m.parse().unwrap(), &u.parse().unwrap());
            format!("{v} {r}")
        };
        assert_eq!(c("GET", "/api/v1/pods?resourceVersion=0"), "list pods");
        assert_eq!(
            c(
                "GET",
                "/api/v1/pods?watch=true&resourceVersion=5&allowWatchBookmarks=true"
            ),
            "watch pods"
        );
        assert_eq!(
            c("GET", "/apis/discovery.k8s.io/v1/endpointslices?watch=1"),
            "watch endpointslices"
        );
        assert_eq!(c("GET", "/api/v1/namespaces/a/pods/p1"), "get pods");
        assert_eq!(c("GET", "/api/v1/namespaces/a/pods"), "list pods");
        assert_eq!(
            c("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"),
            "update leases"
        );
    }
}
