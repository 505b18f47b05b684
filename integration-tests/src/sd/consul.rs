//! A Consul agent's HTTP API, the part `consul_sd_configs` reads: `/v1/agent/self` (the
//! datacenter), `/v1/catalog/services` and `/v1/health/service/<name>` (with `tag` and
//! `node-meta` filters), with `X-Consul-Index` and blocking queries (`index`, `wait`): a query
//! at the current index waits until the catalog changes or the wait runs out. Every request's
//! path, query and `X-Consul-Token` are recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::query_pairs;
use crate::server::{Handler, Server, lock, response};

/// One instance of a service on a node.
#[derive(Clone, Debug, Default)]
pub struct ConsulInstance {
    pub id: String,
    pub node: String,
    pub node_address: String,
    /// Empty: the node's address is the target's.
    pub service_address: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub service_meta: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    /// The one health check's status: passing, warning or critical.
    pub status: String,
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct ConsulRequest {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub token: Option<String>,
}

struct Catalog {
    datacenter: String,
    services: BTreeMap<String, Vec<ConsulInstance>>,
    requests: Vec<ConsulRequest>,
}

pub struct ConsulDouble {
    server: Server,
    catalog: Arc<Mutex<Catalog>>,
    /// The catalog's index, moved on every change; blocking queries wait on it.
    index: watch::Sender<u64>,
}

impl ConsulDouble {
    pub async fn start(datacenter: &str) -> ConsulDouble {
        let catalog = Arc::new(Mutex::new(Catalog {
            datacenter: datacenter.into(),
            services: BTreeMap::new(),
            requests: Vec::new(),
        }));
        let (index, _) = watch::channel(1u64);
        let (c, i) = (catalog.clone(), index.clone());
        let handler: Handler = Arc::new(move |request, _peer| {
            let (c, i) = (c.clone(), i.subscribe());
            Box::pin(async move { answer(request, &c, i).await })
        });
        let server = Server::bind(([127, 0, 0, 1], 0).into(), handler)
            .await
            .expect("binding the Consul double on 127.0.0.1:0");
        ConsulDouble {
            server,
            catalog,
            index,
        }
    }

    /// `host:port`, for `server:` in `consul_sd_configs`.
    pub fn server(&self) -> String {
        self.server.addr().to_string()
    }

    /// Registers (or replaces) a service's instances.
    pub fn set_service(&self, name: &str, instances: Vec<ConsulInstance>) {
        lock(&self.catalog).services.insert(name.into(), instances);
        self.index.send_modify(|i| *i += 1);
    }

    pub fn remove_service(&self, name: &str) {
        lock(&self.catalog).services.remove(name);
        self.index.send_modify(|i| *i += 1);
    }

    pub fn requests(&self) -> Vec<ConsulRequest> {
        lock(&self.catalog).requests.clone()
    }
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Consul's `wait`: `120000ms`, `2m`, `30s`.
fn parse_wait(s: &str) -> Duration {
    let num = |t: &str| t.parse::<u64>().unwrap_or(0);
    if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(num(ms))
    } else if let Some(m) = s.strip_suffix('m') {
        Duration::from_secs(num(m) * 60)
    } else if let Some(sec) = s.strip_suffix('s') {
        Duration::from_secs(num(sec))
    } else {
        Duration::from_secs(300)
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    catalog: &Mutex<Catalog>,
    mut index: watch::Receiver<u64>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let path = request.uri().path().to_string();
    let query = query_pairs(request.uri());
    let token = request
        .headers()
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    lock(catalog).requests.push(ConsulRequest {
        path: path.clone(),
        query: query.clone(),
        token,
    });
    // A blocking query at the current index waits for a change.
    if let Some(asked) = param(&query, "index").and_then(|i| i.parse::<u64>().ok()) {
        let wait = param(&query, "wait").map_or(Duration::from_secs(300), parse_wait);
        let _ = tokio::time::timeout(wait, index.wait_for(|now| *now > asked)).await;
    }
    let current = *index.borrow();
    let c = lock(catalog);
    let node_meta: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| k == "node-meta")
        .filter_map(|(_, v)| v.split_once(':'))
        .collect();
    let meta_ok = |i: &ConsulInstance| {
        node_meta
            .iter()
            .all(|(k, v)| i.node_meta.get(*k).map(String::as_str) == Some(*v))
    };
    let body = if path == "/v1/agent/self" {
        json!({"Config": {"Datacenter": c.datacenter, "NodeName": "agent"}})
    } else if path == "/v1/catalog/services" {
        let mut out = serde_json::Map::new();
        for (name, instances) in &c.services {
            let mut tags: Vec<&String> = instances
                .iter()
                .filter(|i| meta_ok(i))
                .flat_map(|i| &i.tags)
                .collect();
            tags.sort();
            tags.dedup();
            if instances.iter().any(&meta_ok) {
                out.insert(name.clone(), json!(tags));
            }
        }
        serde_json::Value::Object(out)
    } else if let Some(name) = path.strip_prefix("/v1/health/service/") {
        let tags: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.as_str())
            .collect();
        let entries: Vec<serde_json::Value> = c
            .services
            .get(name)
            .into_iter()
            .flatten()
            .filter(|i| meta_ok(i) && tags.iter().all(|t| i.tags.iter().any(|x| x == t)))
            .map(|i| {
                json!({
                    "Node": {
                        "Node": i.node, "Address": i.node_address, "Datacenter": c.datacenter,
                        "Meta": i.node_meta, "TaggedAddresses": {"lan": i.node_address},
                    },
                    "Service": {
                        "ID": i.id, "Service": name, "Tags": i.tags, "Address": i.service_address,
                        "Port": i.port, "Meta": i.service_meta,
                    },
                    "Checks": [{"CheckID": "serfHealth", "Status": i.status}],
                })
            })
            .collect();
        json!(entries)
    } else {
        return response(404, "text/plain", "no such endpoint");
    };
    let mut resp = response(200, "application/json", body.to_string());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&current.to_string()) {
        resp.headers_mut().insert("x-consul-index", v);
    }
    resp
}
