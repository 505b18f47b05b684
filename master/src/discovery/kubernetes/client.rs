//! Building kube clients (in-cluster, `--kubeconfig`/`KUBECONFIG`, or a config's `api_server`)
//! with a layer that counts every request by verb and resource, so the footprint promshard puts
//! on the API server is visible in its own metrics.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::util::MapRequestLayer;

use crate::metrics::Metrics;

pub const USER_AGENT: &str = concat!("promshard-master/", env!("CARGO_PKG_VERSION"));

/// Which API server a `kubernetes_sd_configs` entry talks to. Entries with the same key share
/// one client and one watch per resource kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterKey {
    /// In-cluster config, the master's `--kubeconfig`, or `KUBECONFIG`.
    Default,
    ApiServer(String),
    Kubeconfig(String),
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
    let mut config = match key {
        ClusterKey::ApiServer(url) => kube::Config::new(
            url.parse()
                .with_context(|| format!("kubernetes_sd_configs: invalid api_server {url:?}"))?,
        ),
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
    let layer = MapRequestLayer::new(move |mut req: http::Request<kube::client::Body>| {
        let (verb, resource) = classify(req.method(), req.uri());
        metrics.kube_request(verb, &resource);
        // Named in the API server's audit log and request metrics, so operators can see
        // exactly what load the master puts on it.
        req.headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(USER_AGENT));
        req
    });
    let builder = ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    Ok(builder.with_layer(&layer).build())
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
    use super::classify;

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
