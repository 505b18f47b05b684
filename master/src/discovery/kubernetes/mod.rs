//! Kubernetes service discovery with one shared watch per resource kind.
//!
//! Whatever the number of jobs and roles, the master opens **one initial sync and one WATCH
//! per resource kind per API server** ([`Cluster`]): our [`reflector::Reflector`] loop feeding
//! a kube-runtime reflector store. Every `kubernetes_sd_configs` entry is a provider that reads
//! those shared stores and applies its `namespaces` and `selectors` in memory, instead of
//! opening a filtered watch of its own. That keeps the API server's load constant as jobs are
//! added: the usual failure at scale is N collectors × M jobs watches, each re-listing after
//! every hiccup.
//!
//! When is a namespaced watch cheaper? When every job only needs a few small namespaces of a
//! huge cluster, cluster-wide watches ship (and hold in memory) objects nobody uses. Namespaced
//! watches would then cost one watch per namespace and need their re-lists coordinated; we keep
//! cluster-wide watches (and ClusterRole RBAC) and note the trade-off in the README.
//!
//! API-server hygiene, per kind (see `reflector.rs`): protobuf where the server has it, a
//! streaming list where it has the WatchList feature (else LIST with `resourceVersion=0` and
//! no `limit`, served from the watch cache), WATCH with bookmarks from the last
//! resourceVersion, a re-sync only after `410 Gone`, jittered exponential backoff, `429
//! Retry-After` honoured, and only the fields discovery reads kept in the stores. While the API
//! server is unreachable the stores keep their last state, so targets neither churn nor vanish.

pub mod client;
pub mod cr;
pub mod protobuf;
pub mod reflector;
pub mod roles;
pub mod selector;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use promshard_model::config::{Config, KubernetesRole, KubernetesSdConfig};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

pub use client::ClusterKey;
use reflector::{Output, RateLimiter, Reflector, WatchedKind};
use roles::{Lookup, RoleOptions};
use selector::{Selector, node_field};

use super::{TargetGroup, Update};
use crate::metrics::Metrics;

/// Bursts of events (a rollout, a re-list) are folded into one recomputation.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Client-side rate limit of one API server's watches (client-go's defaults): enough for
/// every kind's LIST and WATCH at start, a brake on re-list storms.
const CLIENT_QPS: f64 = 5.0;
const CLIENT_BURST: u32 = 10;
const OWN_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// A resource kind promshard may watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Ingress,
    Namespace,
    ServiceMonitor,
    PodMonitor,
    Probe,
    ScrapeConfig,
}

impl Kind {
    /// The plural resource name, as in API paths, RBAC rules and our metrics.
    pub fn resource(&self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::EndpointSlice => "endpointslices",
            Kind::Node => "nodes",
            Kind::Ingress => "ingresses",
            Kind::Namespace => "namespaces",
            Kind::ServiceMonitor => "servicemonitors",
            Kind::PodMonitor => "podmonitors",
            Kind::Probe => "probes",
            Kind::ScrapeConfig => "scrapeconfigs",
        }
    }
}

/// The kinds one `kubernetes_sd_configs` entry reads.
pub fn kinds_for(sd: &KubernetesSdConfig) -> BTreeSet<Kind> {
    let mut k: BTreeSet<Kind> = match sd.role {
        KubernetesRole::Node => [Kind::Node].into(),
        KubernetesRole::Pod => [Kind::Pod].into(),
        KubernetesRole::Service => [Kind::Service].into(),
        KubernetesRole::Ingress => [Kind::Ingress].into(),
        KubernetesRole::Endpoints => [Kind::Endpoints, Kind::Service, Kind::Pod].into(),
        KubernetesRole::EndpointSlice => [Kind::EndpointSlice, Kind::Service, Kind::Pod].into(),
    };
    if sd.attach_metadata.node
        && matches!(
            sd.role,
            KubernetesRole::Pod | KubernetesRole::Endpoints | KubernetesRole::EndpointSlice
        )
    {
        k.insert(Kind::Node);
    }
    if sd.attach_metadata.namespace {
        k.insert(Kind::Namespace);
    }
    k
}

pub fn cluster_key(sd: &KubernetesSdConfig) -> ClusterKey {
    if !sd.api_server.is_empty() {
        ClusterKey::ApiServer(client::ApiServer::new(sd))
    } else if !sd.kubeconfig_file.is_empty() {
        ClusterKey::Kubeconfig(sd.kubeconfig_file.clone())
    } else {
        ClusterKey::Default
    }
}

/// The stores of one API server, one per kind in use, each fed by a single watch. A cheap
/// snapshot (store handles) of what the [`KubePool`] runs for that server.
#[derive(Clone, Default)]
pub struct Cluster {
    pods: Option<Store<Pod>>,
    services: Option<Store<Service>>,
    endpoints: Option<Store<Endpoints>>,
    endpointslices: Option<Store<EndpointSlice>>,
    nodes: Option<Store<Node>>,
    ingresses: Option<Store<Ingress>>,
    namespaces: Option<Store<Namespace>>,
    pub(crate) service_monitors: Option<Store<cr::ServiceMonitorObject>>,
    pub(crate) pod_monitors: Option<Store<cr::PodMonitorObject>>,
    pub(crate) probes: Option<Store<cr::ProbeObject>>,
    pub(crate) scrape_configs: Option<Store<cr::ScrapeConfigObject>>,
    /// Bumped after every event of a kind, so providers know what to recompute.
    changes: HashMap<Kind, watch::Receiver<u64>>,
    /// True once a kind's first LIST has been applied to its store.
    ready: HashMap<Kind, watch::Receiver<bool>>,
}

impl Cluster {
    /// Waits until the kind's first LIST is in its store.
    ///
    /// Not `Store::wait_until_ready`: kube-runtime 5 implements it with a `futures` oneshot
    /// receiver shared by every clone of the store, which remembers only the *last* poller's
    /// waker, so with several providers waiting on one kind all but one hang forever.
    async fn wait_ready(&self, kind: Kind) {
        if let Some(rx) = self.ready.get(&kind) {
            let _ = rx.clone().wait_for(|ready| *ready).await;
        }
    }

    /// The change counter of a kind, if it is watched.
    pub(crate) fn changes(&self, kind: Kind) -> Option<watch::Receiver<u64>> {
        self.changes.get(&kind).cloned()
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        get(&self.namespaces, None, name)
    }

    fn has(&self, kind: Kind) -> bool {
        self.changes.contains_key(&kind)
    }

    fn forget(&mut self, kind: Kind) {
        match kind {
            Kind::Pod => self.pods = None,
            Kind::Service => self.services = None,
            Kind::Endpoints => self.endpoints = None,
            Kind::EndpointSlice => self.endpointslices = None,
            Kind::Node => self.nodes = None,
            Kind::Ingress => self.ingresses = None,
            Kind::Namespace => self.namespaces = None,
            Kind::ServiceMonitor => self.service_monitors = None,
            Kind::PodMonitor => self.pod_monitors = None,
            Kind::Probe => self.probes = None,
            Kind::ScrapeConfig => self.scrape_configs = None,
        }
        self.changes.remove(&kind);
        self.ready.remove(&kind);
    }
}
fn get<K>(s: &Option<Store<K>>, ns: Option<&str>, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut r = ObjectRef::new(name);
    if let Some(ns) = ns {
        r = r.within(ns);
    }
    s.as_ref()?.get(&r)
}

/// What one kind's watch reports as its events arrive, whichever watcher runs it: the change
/// counter providers wait on, readiness after the first sync, and the kind's metrics.
struct KindFeed<K: Resource<DynamicType = ()> + Clone + 'static> {
    resource: &'static str,
    metrics: Arc<Metrics>,
    reader: Store<K>,
    changes: watch::Sender<u64>,
    ready: watch::Sender<bool>,
    n: u64,
    /// Inside an initial sync: its objects are not events worth a timestamp.
    listing: bool,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> KindFeed<K> {
    /// A feed for `kind`, its receivers registered in `w` for the providers.
    fn new(w: &mut Watches<'_>, kind: Kind, reader: Store<K>) -> Self {
        let (changes, rx) = watch::channel(0u64);
        w.changes.insert(kind, rx);
        let (ready, ready_rx) = watch::channel(false);
        w.ready.insert(kind, ready_rx);
        KindFeed {
            resource: kind.resource(),
            metrics: w.metrics.clone(),
            reader,
            changes,
            ready,
            n: 0,
            listing: false,
        }
    }

    /// An event already applied to the store.
    fn event(&mut self, ev: &watcher::Event<K>) {
        match ev {
            watcher::Event::Init => {
                self.listing = true;
                self.metrics.kube_watch_restart(self.resource);
            }
            watcher::Event::InitApply(_) => {}
            watcher::Event::InitDone => {
                self.listing = false;
                self.ready.send_replace(true);
                self.bump();
            }
            _ => self.bump(),
        }
        self.observed();
    }

    fn bump(&mut self) {
        self.n += 1;
        self.changes.send_replace(self.n);
    }

    fn error(&self, e: &dyn std::fmt::Display) {
        self.metrics.kube_watch_error(self.resource);
        tracing::warn!(resource = self.resource, error = %e, "kubernetes watch error; keeping last known objects");
    }

    /// Outside an initial sync: the time of the last event and the store's size.
    fn observed(&self) {
        if !self.listing {
            self.metrics.kube_event(self.resource, SystemTime::now());
            self.metrics.kube_objects(self.resource, self.reader.len());
        }
    }
}

/// Starts the single watch of one kind and returns its store.
fn start_watch<K: WatchedKind>(w: &mut Watches<'_>, kind: Kind) -> Store<K> {
    let (store, mut writer) = kube::runtime::reflector::store::<K>();
    let mut feed = KindFeed::new(w, kind, store.clone());
    let r = Reflector::new::<K>(
        w.client.clone(),
        kind.resource(),
        w.options,
        w.limiter.clone(),
    );
    let task = tokio::spawn(async move {
        r.run(move |out: Output<K>| match out {
            Output::Event(ev) => {
                writer.apply_watcher_event(&ev);
                feed.event(&ev);
            }
            Output::Error(e) => feed.error(&e),
            Output::StreamingRefused => {}
        })
        .await;
    });
    w.tasks.insert(kind, task.abort_handle());
    store
}

/// Starts the single watch of one prometheus-operator kind and returns its store.
///
/// Custom resources have no protobuf encoding (the API server serves CRDs as JSON only), so
/// they keep kube-runtime's watcher: LIST `resourceVersion=0` without a page size, WATCH with
/// bookmarks, re-LIST after 410, kube's default backoff. They share neither the protobuf
/// reflector's rate limiter nor its streaming lists; they are few objects next to pods.
fn start_cr_watch<K>(w: &mut Watches<'_>, kind: Kind) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = kube::runtime::reflector::store::<K>();
    let mut feed = KindFeed::new(w, kind, store.clone());
    let mut cfg = watcher::Config::default().any_semantic();
    // kube drops resourceVersion=0 whenever a page size is set; without a limit the LIST is
    // served from the API server's watch cache instead of etcd.
    cfg.page_size = None;
    let api: Api<K> = Api::all(w.client.clone());
    let stream = watcher(api, cfg)
        .default_backoff()
        .modify(|o: &mut K| o.managed_fields_mut().clear())
        .reflect(writer);
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => feed.event(&ev),
                Err(e) => {
                    feed.error(&e);
                    feed.observed();
                }
            }
        }
    });
    w.tasks.insert(kind, task.abort_handle());
    store
}

/// What the watches of one API server share while they are started.
struct Watches<'a> {
    client: &'a kube::Client,
    options: reflector::Options,
    limiter: &'a Arc<RateLimiter>,
    metrics: &'a Arc<Metrics>,
    tasks: &'a mut HashMap<Kind, tokio::task::AbortHandle>,
    changes: &'a mut HashMap<Kind, watch::Receiver<u64>>,
    ready: &'a mut HashMap<Kind, watch::Receiver<bool>>,
}

/// The shared watches of the whole master, one per (API server, kind), kept across config
/// changes: a reload or a job generated from a ServiceMonitor reuses the stores and costs no
/// new LIST. A kind no config needs any more is stopped by [`KubePool::retain`].
pub struct KubePool {
    kubeconfig: Option<PathBuf>,
    /// Protobuf and streaming lists, each on unless the operator turned it off.
    options: reflector::Options,
    metrics: Arc<Metrics>,
    clusters: HashMap<ClusterKey, PooledCluster>,
    own_namespace: String,
}

struct PooledCluster {
    client: kube::Client,
    /// One client-side rate limit for all the kinds watched on this API server.
    limiter: Arc<RateLimiter>,
    view: Cluster,
    tasks: HashMap<Kind, tokio::task::AbortHandle>,
}

impl Drop for PooledCluster {
    fn drop(&mut self) {
        for t in self.tasks.values() {
            t.abort();
        }
    }
}

impl KubePool {
    pub fn new(
        kubeconfig: Option<PathBuf>,
        options: reflector::Options,
        metrics: Arc<Metrics>,
    ) -> Self {
        let own_namespace = std::fs::read_to_string(OWN_NAMESPACE_FILE)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "default".to_string());
        KubePool {
            kubeconfig,
            options,
            metrics,
            clusters: HashMap::new(),
            own_namespace,
        }
    }

    /// The stores of `kinds` on `key`'s API server, starting the watches not yet running.
    /// Fails only if a client cannot be built (e.g. no Kubernetes config at all).
    pub async fn ensure(
        &mut self,
        key: &ClusterKey,
        kinds: &BTreeSet<Kind>,
    ) -> anyhow::Result<Arc<Cluster>> {
        if !self.clusters.contains_key(key) {
            let client =
                client::build_client(key, self.kubeconfig.as_deref(), self.metrics.clone()).await?;
            self.clusters.insert(
                key.clone(),
                PooledCluster {
                    client,
                    limiter: Arc::new(RateLimiter::new(CLIENT_QPS, CLIENT_BURST)),
                    view: Cluster::default(),
                    tasks: HashMap::new(),
                },
            );
        }
        let Some(pc) = self.clusters.get_mut(key) else {
            anyhow::bail!("cluster {key:?} vanished");
        };
        let missing: Vec<Kind> = kinds.iter().copied().filter(|k| !pc.view.has(*k)).collect();
        let c = &mut pc.view;
        let mut w = Watches {
            client: &pc.client,
            options: self.options,
            limiter: &pc.limiter,
            metrics: &self.metrics,
            tasks: &mut pc.tasks,
            changes: &mut c.changes,
            ready: &mut c.ready,
        };
        for kind in &missing {
            match kind {
                Kind::Pod => c.pods = Some(start_watch(&mut w, *kind)),
                Kind::Service => c.services = Some(start_watch(&mut w, *kind)),
                Kind::Endpoints => c.endpoints = Some(start_watch(&mut w, *kind)),
                Kind::EndpointSlice => c.endpointslices = Some(start_watch(&mut w, *kind)),
                Kind::Node => c.nodes = Some(start_watch(&mut w, *kind)),
                Kind::Ingress => c.ingresses = Some(start_watch(&mut w, *kind)),
                Kind::Namespace => c.namespaces = Some(start_watch(&mut w, *kind)),
                Kind::ServiceMonitor => c.service_monitors = Some(start_cr_watch(&mut w, *kind)),
                Kind::PodMonitor => c.pod_monitors = Some(start_cr_watch(&mut w, *kind)),
                Kind::Probe => c.probes = Some(start_cr_watch(&mut w, *kind)),
                Kind::ScrapeConfig => c.scrape_configs = Some(start_cr_watch(&mut w, *kind)),
            }
        }
        if !missing.is_empty() {
            tracing::info!(cluster = ?key, kinds = ?missing, "kubernetes watches started (one per kind)");
        }
        Ok(Arc::new(pc.view.clone()))
    }

    /// The client of an API server the pool already talks to.
    pub fn client(&self, key: &ClusterKey) -> Option<kube::Client> {
        self.clusters.get(key).map(|c| c.client.clone())
    }

    /// Stops the watches no longer needed (`needed`: every kind any running job or the
    /// custom-resource reader uses).
    pub fn retain(&mut self, needed: &BTreeMap<ClusterKey, BTreeSet<Kind>>) {
        self.clusters.retain(|key, pc| {
            let Some(kinds) = needed.get(key) else {
                return false;
            };
            let gone: Vec<Kind> = pc
                .tasks
                .keys()
                .copied()
                .filter(|k| !kinds.contains(k))
                .collect();
            for k in gone {
                if let Some(t) = pc.tasks.remove(&k) {
                    t.abort();
                }
                pc.view.forget(k);
                tracing::info!(cluster = ?key, kind = ?k, "kubernetes watch stopped (no longer used)");
            }
            true
        });
    }

    /// The providers of one job's `kubernetes_sd_configs`, as (provider name, task) pairs,
    /// built before anything is started so a bad entry changes nothing.
    pub async fn providers(
        &mut self,
        job: &str,
        sds: &[KubernetesSdConfig],
        tx: &mpsc::Sender<Update>,
    ) -> anyhow::Result<Vec<(String, futures::future::BoxFuture<'static, ()>)>> {
        let mut out = Vec::new();
        for (i, sd) in sds.iter().enumerate() {
            let provider = Provider::new(sd.clone(), &self.own_namespace)
                .map_err(|e| anyhow::anyhow!("job {job:?} kubernetes_sd_configs[{i}]: {e}"))?;
            let cluster = self.ensure(&cluster_key(sd), &kinds_for(sd)).await?;
            let (job, name, tx) = (job.to_string(), format!("kubernetes/{i}"), tx.clone());
            let fut: futures::future::BoxFuture<'static, ()> =
                Box::pin(provider.run(cluster, job, name, tx));
            out.push((format!("kubernetes/{i}"), fut));
        }
        Ok(out)
    }
}

/// The (API server, kinds) a config's `kubernetes_sd_configs` read.
pub fn needed_kinds(cfg: &Config) -> BTreeMap<ClusterKey, BTreeSet<Kind>> {
    let mut needed: BTreeMap<ClusterKey, BTreeSet<Kind>> = BTreeMap::new();
    for sc in &cfg.scrape_configs {
        for sd in &sc.kubernetes_sd_configs {
            needed
                .entry(cluster_key(sd))
                .or_default()
                .extend(kinds_for(sd));
        }
    }
    needed
}

/// One `kubernetes_sd_configs` entry over the shared stores.
struct Provider {
    sd: KubernetesSdConfig,
    /// Empty: all namespaces.
    namespaces: BTreeSet<String>,
    /// Label and field selectors per role (endpoints roles also filter pods and services).
    selectors: HashMap<KubernetesRole, (Option<Selector>, Option<Selector>)>,
    /// Role pod without attach_metadata: each pod's group, kept while the store holds the same
    /// object (the reflector replaces the `Arc` when the pod changes), so an event costs one
    /// pod's labels rather than every pod's.
    pod_memo: std::sync::Mutex<PodMemo>,
}

/// (namespace, name) → the pod object a group was computed from, and that group.
type PodMemo = HashMap<(String, String), (Arc<Pod>, TargetGroup)>;

impl Provider {
    fn new(sd: KubernetesSdConfig, own_namespace: &str) -> Result<Self, String> {
        let mut namespaces: BTreeSet<String> = sd.namespaces.names.iter().cloned().collect();
        if sd.namespaces.own_namespace {
            namespaces.insert(own_namespace.to_string());
        }
        let mut selectors = HashMap::new();
        for s in &sd.selectors {
            let label = if s.label.is_empty() {
                None
            } else {
                Some(Selector::parse_label(&s.label)?)
            };
            let field = if s.field.is_empty() {
                None
            } else {
                Some(Selector::parse_field(&s.field)?)
            };
            selectors.insert(s.role, (label, field));
        }
        Ok(Provider {
            sd,
            namespaces,
            selectors,
            pod_memo: Default::default(),
        })
    }

    async fn run(
        self,
        cluster: Arc<Cluster>,
        job: String,
        provider: String,
        tx: mpsc::Sender<Update>,
    ) {
        let kinds = kinds_for(&self.sd);
        for k in &kinds {
            cluster.wait_ready(*k).await;
        }
        tracing::debug!(%job, %provider, ?kinds, "kubernetes provider ready");
        let mut rxs: Vec<watch::Receiver<u64>> = kinds
            .iter()
            .filter_map(|k| cluster.changes.get(k).cloned())
            .collect();
        let mut last: Option<Vec<TargetGroup>> = None;
        loop {
            for r in rxs.iter_mut() {
                r.borrow_and_update();
            }
            let groups = self.groups(&cluster);
            tracing::debug!(%job, %provider, groups = groups.len(), "kubernetes provider computed groups");
            if last.as_ref() != Some(&groups) {
                let update = Update {
                    job: job.clone(),
                    provider: provider.clone(),
                    groups: groups.clone(),
                };
                if tx.send(update).await.is_err() {
                    return;
                }
                last = Some(groups);
            }
            let changed =
                futures::future::select_all(rxs.iter_mut().map(|r| Box::pin(r.changed())));
            if changed.await.0.is_err() {
                return;
            }
            tokio::time::sleep(DEBOUNCE).await;
        }
    }

    fn in_namespace(&self, ns: Option<&str>) -> bool {
        self.namespaces.is_empty() || ns.is_some_and(|n| self.namespaces.contains(n))
    }

    fn selected<K: ResourceExt>(
        &self,
        role: KubernetesRole,
        o: &K,
        fields: impl Fn(&str) -> Option<String>,
    ) -> bool {
        let Some((label, field)) = self.selectors.get(&role) else {
            return true;
        };
        label.as_ref().is_none_or(|s| s.matches_labels(o.labels()))
            && field.as_ref().is_none_or(|s| s.matches_fields(&fields))
    }

    fn groups(&self, c: &Cluster) -> Vec<TargetGroup> {
        let opts = RoleOptions {
            attach_node: self.sd.attach_metadata.node,
            attach_namespace: self.sd.attach_metadata.namespace,
        };
        let lookup = ClusterLookup { c, p: self };
        let mut out = Vec::new();
        let ns_ok = |o: &dyn NsName| self.in_namespace(o.ns());
        match self.sd.role {
            KubernetesRole::Node => {
                for n in all(&c.nodes) {
                    if self.selected(KubernetesRole::Node, n.as_ref(), |f| node_field(&n, f)) {
                        out.extend(roles::node_group(&n));
                    }
                }
            }
            KubernetesRole::Pod => {
                let memoize = !opts.attach_node && !opts.attach_namespace;
                // Prometheus 3.11: with node metadata attached, node selectors filter the nodes
                // it reads, and pods on a node not read have no targets.
                let by_node =
                    opts.attach_node && self.selectors.contains_key(&KubernetesRole::Node);
                let on_selected_node = |p: &Pod| {
                    let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
                    node.and_then(|n| get(&c.nodes, None, n)).is_some_and(|n| {
                        self.selected(KubernetesRole::Node, n.as_ref(), |f| node_field(&n, f))
                    })
                };
                let mut memo = self.pod_memo.lock().unwrap_or_else(|e| e.into_inner());
                let mut next = HashMap::new();
                for p in all(&c.pods) {
                    if ns_ok(p.as_ref())
                        && self.selected(KubernetesRole::Pod, p.as_ref(), |f| {
                            selector::pod_field(&p, f)
                        })
                        && (!by_node || on_selected_node(&p))
                    {
                        if !memoize {
                            out.push(roles::pod_group(&p, &opts, &lookup));
                            continue;
                        }
                        let key = (p.namespace().unwrap_or_default(), p.name_any());
                        let group = match memo.remove(&key) {
                            Some((prev, g)) if Arc::ptr_eq(&prev, &p) => g,
                            _ => roles::pod_group(&p, &opts, &lookup),
                        };
                        out.push(group.clone());
                        next.insert(key, (p, group));
                    }
                }
                *memo = next;
            }
            KubernetesRole::Service => {
                for s in all(&c.services) {
                    if ns_ok(s.as_ref())
                        && self.selected(KubernetesRole::Service, s.as_ref(), |f| {
                            selector::service_field(s.as_ref(), f)
                        })
                    {
                        out.push(roles::service_group(&s, &opts, &lookup));
                    }
                }
            }
            KubernetesRole::Endpoints => {
                for e in all(&c.endpoints) {
                    if ns_ok(e.as_ref())
                        && self.selected(KubernetesRole::Endpoints, e.as_ref(), |f| {
                            selector::meta_field(&e.metadata, f)
                        })
                    {
                        out.push(roles::endpoints_group(&e, &opts, &lookup));
                    }
                }
            }
            KubernetesRole::EndpointSlice => {
                for e in all(&c.endpointslices) {
                    if ns_ok(e.as_ref())
                        && self.selected(KubernetesRole::EndpointSlice, e.as_ref(), |f| {
                            selector::meta_field(&e.metadata, f)
                        })
                    {
                        out.push(roles::endpointslice_group(&e, &opts, &lookup));
                    }
                }
            }
            KubernetesRole::Ingress => {
                for i in all(&c.ingresses) {
                    if ns_ok(i.as_ref())
                        && self.selected(KubernetesRole::Ingress, i.as_ref(), |f| {
                            selector::meta_field(&i.metadata, f)
                        })
                    {
                        out.push(roles::ingress_group(&i, &opts, &lookup));
                    }
                }
            }
        }
        // Stores are hash maps: sort so an unchanged cluster gives an identical update.
        out.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

trait NsName {
    fn ns(&self) -> Option<&str>;
}

impl<K: ResourceExt> NsName for K {
    fn ns(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }
}

fn all<K>(s: &Option<Store<K>>) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    s.as_ref().map(|s| s.state()).unwrap_or_default()
}

/// Lookups for the role builders, honouring the provider's pod and service selectors the way
/// Prometheus's filtered informers would.
struct ClusterLookup<'a> {
    c: &'a Cluster,
    p: &'a Provider,
}

impl Lookup for ClusterLookup<'_> {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        get(&self.c.pods, Some(namespace), name).filter(|p| {
            self.p.selected(KubernetesRole::Pod, p.as_ref(), |f| {
                selector::pod_field(p, f)
            })
        })
    }
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        get(&self.c.services, Some(namespace), name).filter(|s| {
            self.p.selected(KubernetesRole::Service, s.as_ref(), |f| {
                selector::service_field(s.as_ref(), f)
            })
        })
    }
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        get(&self.c.nodes, None, name)
    }
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        get(&self.c.namespaces, None, name)
    }
}
