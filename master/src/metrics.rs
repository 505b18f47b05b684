//! The master's self-metrics, served on `/metrics` in OpenMetrics text.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type LabelSet = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    workers: Family<LabelSet, Gauge>,
    targets: Family<LabelSet, Gauge>,
    pub reassignments: Counter,
    /// Make-before-break handoffs by outcome: completed, late (an ack came after the handoff
    /// instant, so a slot may be missed or doubled), cancelled (the new owner went away).
    pub handoffs: Family<LabelSet, Counter>,
    /// Handoffs started and not yet completed or cancelled.
    pub handoffs_in_flight: Gauge,
    /// The latest handoff instant scheduled (Unix seconds): until then, two workers share
    /// some target's slots.
    pub handoff_last_instant: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Fences by how they ended: released (the old owner reported delivery to every
    /// endpoint) or timed_out.
    pub fences: Family<LabelSet, Counter>,
    /// Fences waiting for their old owner's report.
    pub fences_waiting: Gauge,
    kube_requests: Family<LabelSet, Counter>,
    apiserver_requests: Family<LabelSet, Counter>,
    kube_watch_restarts: Family<LabelSet, Counter>,
    kube_watch_errors: Family<LabelSet, Counter>,
    kube_objects: Family<LabelSet, Gauge>,
    /// prometheus-operator resources selected by `prometheus_cr`, by kind and state (`ok`:
    /// its jobs run; `skipped`: it could not become a job, see `/api/v1/cr/status`).
    pub prometheus_cr_resources: Family<LabelSet, Gauge>,
    kube_last_event: Family<LabelSet, Gauge>,
    /// Refreshes of the HTTP, DNS and Consul discoveries, by mechanism and result.
    sd_refreshes: Family<LabelSet, Counter>,
    config_last_reload_successful: Gauge,
    config_last_reload_success_seconds: Gauge,
    config_version: Gauge,
    /// 1 while this master leads (places targets, answers workers); 0 while it stands by.
    /// Without leader election a master always leads.
    pub leader: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("promshard_master");
        let workers = Family::<Vec<(String, String)>, Gauge>::default();
        let targets = Family::<Vec<(String, String)>, Gauge>::default();
        let reassignments = Counter::default();
        let handoffs = Family::<LabelSet, Counter>::default();
        registry.register(
            "handoffs",
            "Make-before-break target handoffs between workers, by outcome",
            handoffs.clone(),
        );
        let fences = Family::<LabelSet, Counter>::default();
        registry.register(
            "handoff_fences",
            "Fences on moved targets by outcome: released (the old owner reported delivery to every remote-write endpoint) or timed_out",
            fences.clone(),
        );
        let fences_waiting = Gauge::default();
        registry.register(
            "handoff_fences_waiting",
            "Moved targets whose new owner holds their samples until the old owner reports delivery",
            fences_waiting.clone(),
        );
        let handoffs_in_flight = Gauge::default();
        let handoff_last_instant = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "handoff_last_instant_seconds",
            "The latest make-before-break handoff instant scheduled, in Unix seconds",
            handoff_last_instant.clone(),
        );
        registry.register(
            "handoffs_in_flight",
            "Handoffs started and not yet completed or cancelled",
            handoffs_in_flight.clone(),
        );
        registry.register(
            "workers",
            "Workers known to the master, by state",
            workers.clone(),
        );
        registry.register(
            "targets",
            "Targets by state (active, dropped)",
            targets.clone(),
        );
        registry.register(
            "worker_expirations",
            "Workers whose grace period ended, so their targets were reassigned",
            reassignments.clone(),
        );
        let kube_requests = Family::<LabelSet, Counter>::default();
        let apiserver_requests = Family::<LabelSet, Counter>::default();
        registry.register(
            "apiserver_requests",
            "Responses from the Kubernetes API server by verb, resource and HTTP code (\"<error>\" \
             when none came), to compare with the API server's apiserver_request_total",
            apiserver_requests.clone(),
        );
        let kube_watch_restarts = Family::<LabelSet, Counter>::default();
        let kube_watch_errors = Family::<LabelSet, Counter>::default();
        let kube_objects = Family::<LabelSet, Gauge>::default();
        let prometheus_cr_resources = Family::<LabelSet, Gauge>::default();
        registry.register(
            "prometheus_cr_resources",
            "prometheus-operator resources selected by prometheus_cr, by kind and state (ok, skipped)",
            prometheus_cr_resources.clone(),
        );
        let kube_last_event = Family::<LabelSet, Gauge>::default();
        registry.register(
            "kube_requests",
            "Requests to the Kubernetes API server by verb and resource",
            kube_requests.clone(),
        );
        registry.register(
            "kube_watch_restarts",
            "Initial LISTs and re-LISTs (after 410 Gone) per resource",
            kube_watch_restarts.clone(),
        );
        registry.register(
            "kube_watch_errors",
            "Errors on a resource's watch (retried with backoff; the store keeps its objects)",
            kube_watch_errors.clone(),
        );
        registry.register(
            "kube_objects",
            "Objects held in the shared store per resource",
            kube_objects.clone(),
        );
        registry.register(
            "kube_last_event_timestamp_seconds",
            "Unix time of the last watch event per resource",
            kube_last_event.clone(),
        );
        let config_last_reload_successful = Gauge::default();
        let config_last_reload_success_seconds = Gauge::default();
        let config_version = Gauge::default();
        registry.register(
            "config_last_reload_successful",
            "Whether the last configuration change (PUT, reload, SIGHUP) was applied",
            config_last_reload_successful.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last applied configuration change",
            config_last_reload_success_seconds.clone(),
        );
        registry.register(
            "config_version",
            "Version of the running configuration (see /api/v1/config/history)",
            config_version.clone(),
        );
        let sd_refreshes = Family::<LabelSet, Counter>::default();
        registry.register(
            "sd_refreshes",
            "Refreshes of http_sd_configs, dns_sd_configs and consul_sd_configs, by mechanism and result (success or failure); a failed refresh keeps the previous targets",
            sd_refreshes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "Whether this master holds the leader lease (1) or stands by (0); 1 without leader election",
            leader.clone(),
        );
        Metrics {
            registry,
            leader,
            config_last_reload_successful,
            config_last_reload_success_seconds,
            config_version,
            workers,
            targets,
            reassignments,
            handoffs,
            handoffs_in_flight,
            handoff_last_instant,
            fences,
            fences_waiting,
            kube_requests,
            apiserver_requests,
            kube_watch_restarts,
            kube_watch_errors,
            kube_objects,
            prometheus_cr_resources,
            kube_last_event,
            sd_refreshes,
        }
    }

    /// One refresh of a discovery `mechanism` (`http`, `dns`, `consul`).
    pub fn sd_refresh(&self, mechanism: &str, ok: bool) {
        let l = vec![
            ("mechanism".to_string(), mechanism.to_string()),
            (
                "result".to_string(),
                if ok { "success" } else { "failure" }.to_string(),
            ),
        ];
        self.sd_refreshes.get_or_create(&l).inc();
    }

    fn res(resource: &str) -> LabelSet {
        vec![("resource".to_string(), resource.to_string())]
    }

    pub fn kube_request(&self, verb: &str, resource: &str) {
        let l = vec![
            ("verb".to_string(), verb.to_string()),
            ("resource".to_string(), resource.to_string()),
        ];
        self.kube_requests.get_or_create(&l).inc();
    }

    pub fn apiserver_request(&self, verb: &str, resource: &str, code: &str) {
        let l = vec![
            ("verb".to_string(), verb.to_string()),
            ("resource".to_string(), resource.to_string()),
            ("code".to_string(), code.to_string()),
        ];
        self.apiserver_requests.get_or_create(&l).inc();
    }

    pub fn kube_watch_restart(&self, resource: &str) {
        self.kube_watch_restarts
            .get_or_create(&Self::res(resource))
            .inc();
    }

    pub fn kube_watch_error(&self, resource: &str) {
        self.kube_watch_errors
            .get_or_create(&Self::res(resource))
            .inc();
    }

    pub fn kube_objects(&self, resource: &str, n: usize) {
        self.kube_objects
            .get_or_create(&Self::res(resource))
            .set(n as i64);
    }

    pub fn kube_event(&self, resource: &str, at: std::time::SystemTime) {
        let secs = at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.kube_last_event
            .get_or_create(&Self::res(resource))
            .set(secs as i64);
    }

    pub fn set_state(&self, connected: usize, known: usize, active: usize, dropped: usize) {
        let l = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        self.workers
            .get_or_create(&l("state", "connected"))
            .set(connected as i64);
        self.workers
            .get_or_create(&l("state", "disconnected"))
            .set((known - connected) as i64);
        self.targets
            .get_or_create(&l("state", "active"))
            .set(active as i64);
        self.targets
            .get_or_create(&l("state", "dropped"))
            .set(dropped as i64);
    }

    /// Records a configuration change's outcome; `version` is the running one after success.
    pub fn config_changed(&self, ok: bool, version: u64) {
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.config_last_reload_success_seconds.set(now as i64);
            self.config_version.set(version as i64);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
