//! `consul_sd_configs`: the service instances of a Consul catalog, as Prometheus's
//! `discovery/consul/consul.go` finds them.
//!
//! - The datacenter is `datacenter`, or the agent's own (`/v1/agent/self`).
//! - With `services` listed and no `tags`, each listed service is watched directly; otherwise
//!   the catalog (`/v1/catalog/services`) is watched and every service whose name is listed (or
//!   any, when none is) and that has all of `tags` gets a watch of its own.
//! - A service watch asks `/v1/health/service/<name>` (with `tag=` for each of `tags`) and turns
//!   each instance into a target: the service address, or else the node's, with the service
//!   port; labels `__meta_consul_*` as Prometheus names them, tags joined by `tag_separator`
//!   and surrounded by it, health aggregated from the checks.
//! - Every query is a Consul blocking query (`index`, `wait=2m`): it returns when something
//!   changed or the wait ran out, and an unchanged index changes nothing. Queries repeat at
//!   most once per `refresh_interval`; a failed one is retried after 15 s, keeping the targets.
//!
//! `allow_stale` adds `stale`, `node_meta` adds `node-meta=k:v`, `token` is sent as
//! `X-Consul-Token`, and the HTTP client settings (TLS, auth, proxies) apply to every request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use promshard_httpclient::{ClientOptions, HttpClient};
use promshard_model::Labels;
use promshard_model::config::ConsulSdConfig;
use promshard_model::labels::ADDRESS;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::kubernetes::roles::sanitize_label_name;
use super::{TargetGroup, Update};
use crate::metrics::Metrics;

/// How long a blocking query may wait for a change (Prometheus's `watchTimeout`).
const WATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// After a failed query (Prometheus's `retryInterval`).
const RETRY_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub(super) enum ConsulError {
    #[error("{0:#}")]
    Request(anyhow::Error),
    #[error("{path}: Consul answered HTTP status {status}")]
    Status {
        path: String,
        status: reqwest::StatusCode,
    },
    #[error("{path}: unexpected answer: {source}")]
    Body {
        path: String,
        source: reqwest::Error,
    },
    #[error("/v1/agent/self: no Config.Datacenter in the answer")]
    NoDatacenter,
}

/// The parts of `/v1/health/service/<name>` entries Prometheus reads.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceEntry {
    node: Node,
    service: AgentService,
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Node {
    #[serde(default)]
    node: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tagged_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentService {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    partition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Check {
    #[serde(rename = "CheckID", default)]
    check_id: String,
    #[serde(default)]
    status: String,
}

/// Consul's `HealthChecks.AggregatedStatus`: maintenance, then critical, then warning wins;
/// no checks is passing; an unknown status is "".
fn aggregated_status(checks: &[Check]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for c in checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            "passing" => {}
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        "passing"
    }
}

/// What the watches tell the provider's loop.
enum Event {
    /// The catalog's services and their tags.
    Services(BTreeMap<String, Vec<String>>),
    /// A service's instances.
    Group(String, TargetGroup),
}

struct Client {
    cfg: ConsulSdConfig,
    http: HttpClient,
    base: String,
    metrics: Arc<Metrics>,
}

impl Client {
    /// GET `path` with `query`, as a blocking query from `index` when given; the answer and
    /// its `X-Consul-Index`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        index: Option<u64>,
    ) -> Result<(T, u64), ConsulError> {
        let url = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            if let Some(i) = index {
                q.append_pair("index", &i.to_string());
                q.append_pair("wait", &format!("{}ms", WATCH_TIMEOUT.as_millis()));
            }
            if self.cfg.allow_stale {
                q.append_key_only("stale");
            }
            let q = q.finish();
            if q.is_empty() {
                format!("{}{path}", self.base)
            } else {
                format!("{}{path}?{q}", self.base)
            }
        };
        let mut req = self
            .http
            .request(reqwest::Method::GET, &url)
            .await
            .map_err(ConsulError::Request)?
            .timeout(WATCH_TIMEOUT + Duration::from_secs(15));
        if !self.cfg.token.is_empty() {
            req = req.header("X-Consul-Token", &self.cfg.token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::Request(e.into()))?;
        if !resp.status().is_success() {
            return Err(ConsulError::Status {
                path: path.to_string(),
                status: resp.status(),
            });
        }
        let new_index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp.json().await.map_err(|source| ConsulError::Body {
            path: path.to_string(),
            source,
        })?;
        Ok((body, new_index))
    }

    fn common_query(&self, dc: &str) -> Vec<(&'static str, String)> {
        let mut q = vec![("dc", dc.to_string())];
        for (k, v) in &self.cfg.node_meta {
            q.push(("node-meta", format!("{k}:{v}")));
        }
        q
    }

    async fn datacenter(&self) -> Result<String, ConsulError> {
        if !self.cfg.datacenter.is_empty() {
            return Ok(self.cfg.datacenter.clone());
        }
        let (info, _): (serde_json::Value, u64) = self.get("/v1/agent/self", &[], None).await?;
        info["Config"]["Datacenter"]
            .as_str()
            .map(str::to_string)
            .ok_or(ConsulError::NoDatacenter)
    }

    /// Repeats the blocking query of `path` and sends each changed answer, as `event` makes
    /// it, until the provider is gone.
    async fn watch<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
        events: mpsc::Sender<Event>,
        event: impl Fn(T) -> Event,
    ) {
        let mut index = 0;
        let mut ticker = tokio::time::interval(self.cfg.refresh_interval.0);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.get::<T>(path, &query, Some(index)).await {
                Ok((_, new)) if new == index && index != 0 => {
                    // The wait ran out with nothing new.
                    self.metrics.sd_refresh("consul", true);
                }
                Ok((body, new)) => {
                    self.metrics.sd_refresh("consul", true);
                    // An index that went backwards means Consul was reset: start over.
                    index = if new < index { 0 } else { new };
                    if events.send(event(body)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    self.metrics.sd_refresh("consul", false);
                    tracing::warn!(error = %e, "consul_sd: query failed; keeping the targets");
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
            }
        }
    }

    fn group(&self, name: &str, dc: &str, entries: Vec<ServiceEntry>) -> TargetGroup {
        let sep = &self.cfg.tag_separator;
        let targets = entries
            .into_iter()
            .map(|e| {
                let tags = e.service.tags.unwrap_or_default();
                let host = if e.service.address.is_empty() {
                    &e.node.address
                } else {
                    &e.service.address
                };
                let address = match host.parse::<std::net::Ipv6Addr>() {
                    Ok(ip) => format!("[{ip}]:{}", e.service.port),
                    Err(_) => format!("{host}:{}", e.service.port),
                };
                let mut l: Vec<(String, String)> = vec![
                    (ADDRESS.into(), address),
                    ("__meta_consul_address".into(), e.node.address.clone()),
                    ("__meta_consul_node".into(), e.node.node.clone()),
                    (
                        "__meta_consul_namespace".into(),
                        e.service.namespace.clone(),
                    ),
                    (
                        "__meta_consul_partition".into(),
                        e.service.partition.clone(),
                    ),
                    (
                        "__meta_consul_tags".into(),
                        format!("{sep}{}{sep}", tags.join(sep)),
                    ),
                    (
                        "__meta_consul_service_address".into(),
                        e.service.address.clone(),
                    ),
                    (
                        "__meta_consul_service_port".into(),
                        e.service.port.to_string(),
                    ),
                    ("__meta_consul_service_id".into(), e.service.id.clone()),
                    (
                        "__meta_consul_health".into(),
                        aggregated_status(&e.checks).into(),
                    ),
                ];
                for (prefix, m) in [
                    ("__meta_consul_metadata_", e.node.meta),
                    ("__meta_consul_service_metadata_", e.service.meta),
                    ("__meta_consul_tagged_address_", e.node.tagged_addresses),
                ] {
                    for (k, v) in m.unwrap_or_default() {
                        l.push((format!("{prefix}{}", sanitize_label_name(&k)), v));
                    }
                }
                Labels::from_pairs(l)
            })
            .collect();
        TargetGroup {
            targets,
            labels: Labels::from_pairs([("__meta_consul_service", name), ("__meta_consul_dc", dc)]),
            source: name.to_string(),
        }
    }
}

pub(super) struct ConsulSd {
    client: Arc<Client>,
}

impl ConsulSd {
    pub(super) fn new(cfg: &ConsulSdConfig, metrics: Arc<Metrics>) -> anyhow::Result<ConsulSd> {
        let http = HttpClient::new(
            &cfg.effective_http_client_config(),
            ClientOptions::default(),
        )?;
        let base = format!(
            "{}://{}{}",
            cfg.scheme,
            cfg.server.trim(),
            cfg.path_prefix.trim_end_matches('/')
        );
        Ok(ConsulSd {
            client: Arc::new(Client {
                cfg: cfg.clone(),
                http,
                base,
                metrics,
            }),
        })
    }

    /// Whether a service of the catalog is watched (Prometheus's `shouldWatch`).
    fn should_watch(cfg: &ConsulSdConfig, name: &str, tags: &[String]) -> bool {
        (cfg.services.is_empty() || cfg.services.iter().any(|s| s == name))
            && cfg.tags.iter().all(|t| tags.contains(t))
    }

    pub(super) async fn run(self, job: String, provider: String, tx: mpsc::Sender<Update>) {
        let client = self.client;
        let cfg = client.cfg.clone();
        let dc = loop {
            match client.datacenter().await {
                Ok(dc) => break dc,
                Err(e) => {
                    client.metrics.sd_refresh("consul", false);
                    tracing::warn!(%job, error = %e, "consul_sd: cannot learn the datacenter; retrying");
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
            }
        };
        let (events, mut rx) = mpsc::channel::<Event>(64);
        let mut tasks = JoinSet::new();
        let mut watched: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
        let watch_service = |tasks: &mut JoinSet<()>, name: String| {
            let (client, events, dc) = (client.clone(), events.clone(), dc.clone());
            tasks.spawn(async move {
                let mut query = client.common_query(&dc);
                for t in &client.cfg.tags {
                    query.push(("tag", t.clone()));
                }
                let path = format!("/v1/health/service/{name}");
                client
                    .watch(&path, query, events, |entries: Vec<ServiceEntry>| {
                        Event::Group(name.clone(), client.group(&name, &dc, entries))
                    })
                    .await;
            })
        };
        if cfg.services.is_empty() || !cfg.tags.is_empty() {
            let (client, events, dc) = (client.clone(), events.clone(), dc.clone());
            tasks.spawn(async move {
                let query = client.common_query(&dc);
                client
                    .watch("/v1/catalog/services", query, events, Event::Services)
                    .await;
            });
        } else {
            for name in &cfg.services {
                let handle = watch_service(&mut tasks, name.clone());
                watched.insert(name.clone(), handle);
            }
        }
        let mut groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
        let mut sent = false;
        while let Some(event) = rx.recv().await {
            let changed = match event {
                Event::Group(name, group) => {
                    // A late answer of a service that left the catalog is dropped.
                    watched.contains_key(&name) && groups.insert(name, group.clone()) != Some(group)
                }
                Event::Services(services) => {
                    let mut changed = false;
                    for (name, tags) in &services {
                        if Self::should_watch(&cfg, name, tags) && !watched.contains_key(name) {
                            let handle = watch_service(&mut tasks, name.clone());
                            watched.insert(name.clone(), handle);
                        }
                    }
                    watched.retain(|name, handle| {
                        let keep = services.contains_key(name);
                        if !keep {
                            handle.abort();
                            changed |= groups.remove(name).is_some();
                        }
                        keep
                    });
                    // Nothing to watch is an answer too: no targets.
                    changed || (watched.is_empty() && !sent)
                }
            };
            if changed {
                sent = true;
                let update = Update {
                    job: job.clone(),
                    provider: provider.clone(),
                    groups: groups.values().cloned().collect(),
                };
                if tx.send(update).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: &str) -> Check {
        Check {
            check_id: id.into(),
            status: status.into(),
        }
    }

    #[test]
    fn health_is_aggregated_as_consul_does() {
        assert_eq!(aggregated_status(&[]), "passing");
        assert_eq!(aggregated_status(&[check("a", "passing")]), "passing");
        assert_eq!(
            aggregated_status(&[check("a", "passing"), check("b", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregated_status(&[check("a", "critical"), check("b", "warning")]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[
                check("a", "critical"),
                check("_service_maintenance:web", "critical")
            ]),
            "maintenance"
        );
        assert_eq!(aggregated_status(&[check("a", "unknown")]), "");
    }

    #[test]
    fn should_watch_needs_the_name_and_every_tag() {
        let cfg = |services: &[&str], tags: &[&str]| ConsulSdConfig {
            services: services.iter().map(|s| s.to_string()).collect(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            ..promshard_model::config::Config::parse(
                "scrape_configs: [{job_name: c, consul_sd_configs: [{}]}]",
            )
            .unwrap()
            .scrape_configs[0]
                .consul_sd_configs[0]
                .clone()
        };
        let tags = ["a".to_string(), "b".to_string()];
        assert!(ConsulSd::should_watch(&cfg(&[], &[]), "web", &tags));
        assert!(ConsulSd::should_watch(&cfg(&["web"], &["a"]), "web", &tags));
        assert!(!ConsulSd::should_watch(&cfg(&["db"], &[]), "web", &tags));
        assert!(!ConsulSd::should_watch(
            &cfg(&[], &["a", "c"]),
            "web",
            &tags
        ));
    }
}
