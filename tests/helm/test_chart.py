"""Tests of the Helm chart in charts/promshard, run by scripts/test-helm.sh.

Every case renders the chart with the real `helm` and asserts on the objects it produces:
lint and render for the default values and every file in charts/promshard/ci/, Kubernetes
schema validation offline (kubernetes-validate's bundled schemas; the prometheus-operator CRDs
through cloudcoil's generated models), least-privilege RBAC for both tiers, the default scrape
jobs of the cluster's components, the control plane's credentials, TLS and NetworkPolicy,
leader election, the WAL volume, security settings, and the rendered prometheus.yml accepted by
`promshard check config`. That the rendered credentials and flags really lock the control plane,
and that the kubelet jobs really scrape over TLS with a rotating token, is tested with running
processes in integration-tests/tests/chart_control_plane.rs and kubelet_scrape.rs.

Environment: HELM (path of helm), PROMSHARD_BIN (path of the promshard binary), PROMTOOL
(optional; default: promtool on PATH, the alert rules are checked with it when present).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "promshard"
CI_FILES = sorted((CHART / "ci").glob("*.yaml"))
HELM = os.environ.get("HELM") or str(ROOT / ".tools" / "bin" / "helm")
PROMSHARD = os.environ.get("PROMSHARD_BIN") or str(ROOT / "target" / "debug" / "promshard")
PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool")

RELEASE = "ps"
NAMESPACE = "monitoring"
FULLNAME = "ps-promshard"
MASTER = f"{FULLNAME}-master"
WORKERS = f"{FULLNAME}-workers"
MASTER_ROLE = f"{MASTER}-{NAMESPACE}"
WORKERS_ROLE = f"{WORKERS}-{NAMESPACE}"
AUTH_SECRET = f"{FULLNAME}-auth"
TLS_SECRET = f"{MASTER}-tls"
MASTER_DNS = f"{MASTER}.{NAMESPACE}.svc"
# Kubernetes versions the manifests are validated against: the chart's kubeVersion floor and
# the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
# Flags the chart can render that the binary does not have yet (they land with later issues).
UPCOMING_FLAGS = {
    "--kubeconfig",
}

# Every kubernetes_sd_configs role, and the kinds ("group/resource") it must be allowed to read.
ROLE_KINDS = {
    "node": {"/nodes"},
    "pod": {"/pods"},
    "service": {"/services"},
    "endpoints": {"/endpoints", "/pods", "/services"},
    "endpointslice": {"discovery.k8s.io/endpointslices", "/pods", "/services"},
    "ingress": {"networking.k8s.io/ingresses"},
}
ALL_KINDS = set().union(*ROLE_KINDS.values()) | {"/namespaces"}
DEFAULT_VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
NO_DEFAULT_JOBS = {
    "defaultScrapeConfigs": {k: {"enabled": False} for k in DEFAULT_VALUES["defaultScrapeConfigs"]}
}
# Where Kubernetes mounts a pod's ServiceAccount credentials.
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The job labels kube-prometheus-stack's ServiceMonitors give the cluster's components.
COMPONENT_JOBS = {"kubelet", "apiserver", "coredns", "node-exporter", "kube-state-metrics"}
KUBELET_PATHS = {
    "kubelet": "/metrics",
    "kubelet-cadvisor": "/metrics/cadvisor",
    "kubelet-probes": "/metrics/probes",
    "kubelet-resource": "/metrics/resource",
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def _template(args: tuple[str, ...]) -> list[dict]:
    p = run([HELM, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args])
    if p.returncode != 0:
        raise RenderError(p.stderr)
    return [d for d in yaml.safe_load_all(p.stdout) if d]


class RenderError(Exception):
    pass


@lru_cache(maxsize=None)
def render_file(values_file: str | None) -> tuple[dict, ...]:
    args = ("-f", values_file) if values_file else ()
    return tuple(_template(args))


def render(values: dict | None = None, tmp_path: Path | None = None) -> list[dict]:
    """Renders with the default values plus `values` (written to a file: --set cannot express
    lists of maps faithfully)."""
    if not values:
        return copy.deepcopy(list(render_file(None)))
    path = (tmp_path or Path("/tmp")) / f"values-{os.getpid()}-{id(values)}.yaml"
    path.write_text(yaml.safe_dump(values))
    try:
        return _template(("-f", str(path)))
    finally:
        path.unlink(missing_ok=True)


def find(objs, kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs, kind: str, name: str | None = None) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: dict) -> dict:
    cs = workload["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def flags(args: list[str]) -> dict[str, str | None]:
    out = {}
    for a in args:
        if a.startswith("--"):
            k, _, v = a.partition("=")
            out[k] = v if _ else None
    return out


def discovery_kinds(objs) -> set[str]:
    """The master's ClusterRole rules as {"group/resource"}; asserts every rule is exactly
    list/watch."""
    roles = find(objs, "ClusterRole", MASTER_ROLE)
    if not roles:
        return set()
    assert len(roles) == 1
    kinds = set()
    for rule in roles[0]["rules"]:
        assert sorted(rule["verbs"]) == ["list", "watch"], rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                kinds.add(f"{group}/{res}")
    return kinds


def prometheus_yml(objs) -> str:
    return one(objs, "ConfigMap", f"{FULLNAME}-config")["data"]["prometheus.yml"]


def check_config(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    f = tmp_path / "prometheus.yml"
    f.write_text(text)
    return run([PROMSHARD, "check", "config", str(f)])


def values_cases():
    return [pytest.param(None, id="default")] + [
        pytest.param(str(f), id=f.stem) for f in CI_FILES
    ]


def jobs_of(objs) -> dict[str, dict]:
    cfg = yaml.safe_load(prometheus_yml(objs))
    return {j["job_name"]: j for j in cfg["scrape_configs"]}


def job_label(job: dict) -> str:
    """The `job` label a scrape config gives its targets: a relabel rule's constant, else the
    job name."""
    for r in job.get("relabel_configs", []):
        if r.get("target_label") == "job" and "replacement" in r and "source_labels" not in r:
            return r["replacement"]
    return job["job_name"]


# ---------------------------------------------------------------------------------------------
# lint, render, schemas: default values and every ci/ file
# ---------------------------------------------------------------------------------------------


def test_ci_files_cover_the_cases():
    names = {f.stem for f in CI_FILES}
    for want in ("default-values", "leader-election-values", "wal-emptydir-values",
                 "hpa-values", "monitoring-values", "all-roles-values",
                 "control-plane-jobs-values", "cert-manager-values", "existing-secrets-values",
                 "insecure-control-plane-values", "prometheus-cr-values"):
        assert want in names


@pytest.mark.parametrize("values_file", values_cases())
def test_helm_lint(values_file):
    args = ["-f", values_file] if values_file else []
    p = run([HELM, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *args])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in p.stdout


@pytest.mark.parametrize("values_file", values_cases())
def test_renders_the_core_objects(values_file):
    objs = render_file(values_file)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    for want in [
        ("ConfigMap", f"{FULLNAME}-config"),
        ("Deployment", MASTER),
        ("StatefulSet", WORKERS),
        ("Service", MASTER),
        ("Service", WORKERS),
        ("ServiceAccount", MASTER),
        ("ServiceAccount", WORKERS),
    ]:
        assert want in kinds, f"{want} missing"
    names = [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objs]
    assert len(names) == len(set(names)), "duplicate objects"
    for o in objs:
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/name"] == "promshard"
        # Cluster-scoped kinds, and the Roles granting `get` on Secrets in the namespaces
        # prometheusCr.secretAccess lists, live outside the release's namespace.
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition") \
                and not o["metadata"]["name"].endswith("-cr-secrets"):
            assert o["metadata"]["namespace"] == NAMESPACE, o["metadata"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_file", values_cases())
def test_kubernetes_schemas(values_file, kube_version):
    """Strict validation (unknown fields rejected) against the Kubernetes OpenAPI schemas that
    kubernetes-validate bundles: no network."""
    checked = 0
    for o in render_file(values_file):
        if o["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: test_prometheus_operator_schemas
        if o["apiVersion"].startswith("cert-manager.io/"):
            continue  # CRDs: test_cert_manager_issues_the_master_certificate
        try:
            kubernetes_validate.validate(o, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(str(x) for x in e.absolute_path)
            pytest.fail(f"{o['kind']} {o['metadata']['name']} at {where}: {e.message[:300]}")
        checked += 1
    assert checked >= 7


def _unknown_keys(given, dumped, path=""):
    """Keys of `given` that the model dropped (pydantic ignores unknown fields)."""
    out = []
    if isinstance(given, dict):
        if not isinstance(dumped, dict):
            return [path or "."]
        for k, v in given.items():
            if k not in dumped:
                out.append(f"{path}.{k}")
            else:
                out += _unknown_keys(v, dumped[k], f"{path}.{k}")
    elif isinstance(given, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(given, dumped)):
            out += _unknown_keys(a, b, f"{path}[{i}]")
    return out


def test_prometheus_operator_schemas():
    """ServiceMonitor and PrometheusRule against models generated from the prometheus-operator
    CRDs (PyPI cloudcoil-models-prometheus-operator): types, patterns, unknown fields."""
    from cloudcoil.models.prometheus_operator import v1

    objs = render_file(str(CHART / "ci" / "monitoring-values.yaml"))
    for kind in ("ServiceMonitor", "PrometheusRule"):
        o = one(objs, kind)
        model = getattr(v1, kind).model_validate(o)
        dumped = model.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert _unknown_keys(o["spec"], dumped["spec"], "spec") == []


@pytest.mark.parametrize("values_file", values_cases())
def test_rendered_config_is_accepted_by_promshard(values_file, tmp_path):
    text = prometheus_yml(render_file(values_file))
    p = check_config(text, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("SUCCESS"), p.stdout


def test_default_config_jobs(tmp_path):
    cfg = yaml.safe_load(prometheus_yml(render_file(None)))
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert sorted(jobs) == [
        "apiserver", "coredns", "kube-state-metrics", "kubelet", "kubelet-cadvisor",
        "kubelet-probes", "kubelet-resource", "kubernetes-pods", "node-exporter", "promshard",
    ]
    assert "remote_write" not in cfg
    assert cfg["global"]["scrape_interval"] == "30s"
    pods = jobs["kubernetes-pods"]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod"}]
    keep = pods["relabel_configs"][0]
    assert keep == {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "regex": "true",
        "action": "keep",
    }
    targets = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"__scheme__", "__metrics_path__", "__address__", "namespace", "pod"} <= targets
    assert jobs["coredns"]["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["kube-system"]}
    # Only the jobs that need them carry credentials.
    for name, job in jobs.items():
        if name not in KUBELET_PATHS and name != "apiserver":
            for field in ("tls_config", "authorization", "bearer_token_file", "basic_auth"):
                assert field not in job, (name, field)
    # `enabled` is a chart key and never reaches the config.
    assert "enabled:" not in prometheus_yml(render_file(None))


def test_component_jobs_have_kube_prometheus_stack_job_labels():
    jobs = jobs_of(render_file(None))
    labels = {job_label(j) for j in jobs.values()}
    assert COMPONENT_JOBS <= labels
    assert {job_label(jobs[n]) for n in KUBELET_PATHS} == {"kubelet"}
    # The opt-in control-plane jobs, with kubeadm's ports.
    opt_in = jobs_of(render_file(str(CHART / "ci" / "control-plane-jobs-values.yaml")))
    ports = {
        "kube-etcd": ("http", "2381"),
        "kube-scheduler": ("https", "10259"),
        "kube-controller-manager": ("https", "10257"),
        "kube-proxy": ("http", "10249"),
    }
    for name, (scheme, port) in ports.items():
        job = opt_in[name]
        assert job_label(job) == name
        assert job.get("scheme", "http") == scheme, name
        assert job["kubernetes_sd_configs"] == [{"role": "pod",
                                                 "namespaces": {"names": ["kube-system"]}}]
        addresses = [r["replacement"] for r in job["relabel_configs"]
                     if r.get("target_label") == "__address__"]
        assert addresses == [f"[$1]:{port}", f"$1:{port}"], name
        if scheme == "https":
            assert job["authorization"] == {"credentials_file": f"{SA_DIR}/token"}
    for name in ports:
        assert name not in jobs, f"{name} is opt-in"


def test_kubelet_jobs_scrape_each_kubelet_directly_over_https_with_the_token():
    jobs = jobs_of(render_file(None))
    for name, path in KUBELET_PATHS.items():
        job = jobs[name]
        assert job["scheme"] == "https", name
        assert job.get("metrics_path", "/metrics") == path, name
        assert job["kubernetes_sd_configs"] == [{"role": "node"}], name
        assert job["tls_config"] == {"ca_file": f"{SA_DIR}/ca.crt"}, name
        assert job["authorization"] == {"credentials_file": f"{SA_DIR}/token"}, name
        assert job["honor_labels"] is True, name
        # The address is the node's own (InternalIP and kubelet port): nothing rewrites it.
        written = {r.get("target_label") for r in job["relabel_configs"]}
        assert not written & {"__address__", "__scheme__", "__metrics_path__"}, name
        # The labels of kube-prometheus-stack's kubelet ServiceMonitor.
        rules = job["relabel_configs"]
        assert {"source_labels": ["__address__"], "target_label": "instance"} in rules
        assert {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"} in rules
        assert {"source_labels": ["__metrics_path__"], "target_label": "metrics_path"} in rules
        assert {"target_label": "namespace", "replacement": "kube-system"} in rules
        assert {"target_label": "endpoint", "replacement": "https-metrics"} in rules
    api = jobs["apiserver"]
    assert api["scheme"] == "https"
    assert api["tls_config"] == {"ca_file": f"{SA_DIR}/ca.crt", "server_name": "kubernetes"}
    assert api["authorization"] == {"credentials_file": f"{SA_DIR}/token"}
    assert api["kubernetes_sd_configs"] == [{"role": "endpointslice",
                                             "namespaces": {"names": ["default"]}}]
    assert api["relabel_configs"][0]["regex"] == "apiserver;kubernetes;https"


@pytest.mark.parametrize("values_file", values_cases())
def test_no_job_goes_through_the_api_server_proxy(values_file):
    """Scraping /api/v1/nodes/<node>/proxy/metrics would send every kubelet scrape through the
    API servers: nothing in any job may point there."""
    for name, job in jobs_of(render_file(values_file)).items():
        text = json.dumps(job)
        for needle in ("/proxy", "/api/v1/nodes", "kubernetes.default"):
            assert needle not in text, f"job {name} mentions {needle}: {text}"


def test_cadvisor_timestamps_and_drops():
    jobs = jobs_of(render_file(None))
    cadvisor, resource = jobs["kubelet-cadvisor"], jobs["kubelet-resource"]
    for job in (cadvisor, resource):
        # Exposed labels kept (the workload's namespace, pod, container); cAdvisor's timestamps
        # not (they fall behind the stale markers of a failed scrape: values.yaml explains).
        assert (job["honor_labels"], job["honor_timestamps"], job["scrape_interval"]) == \
            (True, False, "10s")
        assert "track_timestamps_staleness" not in job
    assert resource["metric_relabel_configs"] == []
    drops = {(tuple(r["source_labels"]), r["regex"]) for r in cadvisor["metric_relabel_configs"]}
    assert all(r["action"] == "drop" for r in cadvisor["metric_relabel_configs"])
    # kube-prometheus-stack's kubelet.serviceMonitor.cAdvisorMetricRelabelings.
    assert drops == {
        (("__name__",), "container_cpu_(cfs_throttled_seconds_total|load_average_10s|"
                        "system_seconds_total|user_seconds_total)"),
        (("__name__",), "container_fs_(io_current|io_time_seconds_total|"
                        "io_time_weighted_seconds_total|reads_merged_total|sector_reads_total|"
                        "sector_writes_total|writes_merged_total)"),
        (("__name__",), "container_memory_(mapped_file|swap)"),
        (("__name__",), "container_(file_descriptors|tasks_state|threads_max)"),
        (("__name__", "scope"), "container_memory_failures_total;hierarchy"),
        (("__name__", "interface"),
         "container_network_.*;(cali|cilium|cni|lxc|nodelocaldns|tunl).*"),
        (("__name__",), "container_spec.*"),
        (("id", "pod"), ".+;"),
    }
    for name in ("kubelet", "kubelet-probes"):
        assert "honor_timestamps" not in jobs[name]  # Prometheus's default, true


def test_cadvisor_drops_are_a_value(tmp_path):
    objs = render({"defaultScrapeConfigs": {"kubeletCadvisor": {
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": "container_tasks_state", "action": "drop"}],
        "honor_timestamps": True, "track_timestamps_staleness": True}}}, tmp_path)
    job = jobs_of(objs)["kubelet-cadvisor"]
    assert job["metric_relabel_configs"] == [
        {"source_labels": ["__name__"], "regex": "container_tasks_state", "action": "drop"}]
    assert job["honor_timestamps"] is True and job["track_timestamps_staleness"] is True
    assert job["tls_config"] == {"ca_file": f"{SA_DIR}/ca.crt"}  # the rest is untouched


def test_self_monitoring_job_scrapes_this_release_only():
    job = jobs_of(render_file(None))["promshard"]
    assert job["kubernetes_sd_configs"] == [{"role": "endpointslice",
                                             "namespaces": {"names": [NAMESPACE]}}]
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["regex"] == f"promshard;{RELEASE};(master|workers);http"
    # job = the Service name, as this chart's ServiceMonitor and alert selectors have it.
    assert {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"} in \
        job["relabel_configs"]


def test_remote_write_and_global_pass_through():
    cfg = yaml.safe_load(prometheus_yml(render_file(str(CHART / "ci" / "default-values.yaml"))))
    assert cfg["global"]["external_labels"] == {"cluster": "ci"}
    [rw] = cfg["remote_write"]
    assert rw["url"] == "http://prometheus.monitoring.svc:9090/api/v1/write"
    assert rw["queue_config"]["capacity"] == 1000000  # not 1e+06
    assert rw["headers"] == {"X-Scope-OrgID": "ci"}


# ---------------------------------------------------------------------------------------------
# RBAC: list/watch of exactly the kinds the config reads
# ---------------------------------------------------------------------------------------------


def sd_values(*sd_configs: dict) -> dict:
    return {
        **NO_DEFAULT_JOBS,
        "scrapeConfigs": [
            {"job_name": f"job{i}", "kubernetes_sd_configs": [sd]}
            for i, sd in enumerate(sd_configs)
        ],
    }


@pytest.mark.parametrize("role", sorted(ROLE_KINDS))
def test_rbac_one_role(role, tmp_path):
    objs = render(sd_values({"role": role}), tmp_path)
    assert discovery_kinds(objs) == ROLE_KINDS[role]


@pytest.mark.parametrize("role", ["pod", "endpoints", "endpointslice"])
def test_rbac_attach_metadata_node(role, tmp_path):
    objs = render(sd_values({"role": role, "attach_metadata": {"node": True}}), tmp_path)
    assert discovery_kinds(objs) == ROLE_KINDS[role] | {"/nodes"}


@pytest.mark.parametrize("role", ["service", "ingress"])
def test_rbac_attach_metadata_node_ignored_where_prometheus_ignores_it(role, tmp_path):
    objs = render(sd_values({"role": role, "attach_metadata": {"node": True}}), tmp_path)
    assert discovery_kinds(objs) == ROLE_KINDS[role]


def test_rbac_attach_metadata_namespace(tmp_path):
    objs = render(sd_values({"role": "pod", "attach_metadata": {"namespace": True}}), tmp_path)
    assert discovery_kinds(objs) == {"/pods", "/namespaces"}


def test_rbac_all_roles_ci_file():
    objs = render_file(str(CHART / "ci" / "all-roles-values.yaml"))
    assert discovery_kinds(objs) == ALL_KINDS
    role = one(objs, "ClusterRole", MASTER_ROLE)
    groups = sorted(g for r in role["rules"] for g in r["apiGroups"])
    assert groups == ["", "discovery.k8s.io", "networking.k8s.io"]  # one rule per group


def test_rbac_default_values():
    assert discovery_kinds(render_file(None)) == ROLE_KINDS["endpointslice"] | {"/nodes"}


def test_rbac_union_over_jobs(tmp_path):
    objs = render(sd_values({"role": "node"}, {"role": "ingress"}, {"role": "node"}), tmp_path)
    assert discovery_kinds(objs) == {"/nodes", "networking.k8s.io/ingresses"}


def test_rbac_no_kubernetes_discovery_no_cluster_role(tmp_path):
    objs = render({**NO_DEFAULT_JOBS,
                   "scrapeConfigs": [{"job_name": "s", "static_configs": [{"targets": ["a:1"]}]}]},
                  tmp_path)
    assert find(objs, "ClusterRole", MASTER_ROLE) == []
    assert find(objs, "ClusterRoleBinding", MASTER_ROLE) == []


def test_rbac_binding_is_the_master_service_account():
    objs = render_file(None)
    role = one(objs, "ClusterRole", MASTER_ROLE)
    binding = one(objs, "ClusterRoleBinding", MASTER_ROLE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": MASTER,
                                    "namespace": NAMESPACE}]
    dep = one(objs, "Deployment", MASTER)
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == MASTER


def test_rbac_unknown_role_fails_the_render(tmp_path):
    # The schema rejects it first; with or without, the render must fail.
    with pytest.raises(RenderError, match="role"):
        render(sd_values({"role": "pods"}), tmp_path)


WORKER_RULES = [
    {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
    {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
]


@pytest.mark.parametrize("values_file", values_cases())
def test_worker_cluster_role_is_exactly_scrape_access(values_file):
    """Workers get `get` on nodes/metrics (every /metrics/* path of a kubelet) and the /metrics
    URLs (API servers, scheduler, controller manager), bound to their ServiceAccount only, whose
    token is mounted; nodes/proxy only when asked for. Nothing else binds the workers."""
    objs = render_file(values_file)
    role = one(objs, "ClusterRole", WORKERS_ROLE)
    nodes_proxy = "control-plane-jobs" in (values_file or "")
    want = copy.deepcopy(WORKER_RULES)
    if nodes_proxy:
        want[0]["resources"] = ["nodes/metrics", "nodes/proxy"]
    assert role["rules"] == want
    binding = one(objs, "ClusterRoleBinding", WORKERS_ROLE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": WORKERS_ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": WORKERS,
                                    "namespace": NAMESPACE}]
    for b in find(objs, "RoleBinding") + find(objs, "ClusterRoleBinding"):
        if b is not binding:
            assert all(s["name"] != WORKERS for s in b["subjects"]), b["metadata"]["name"]
    sts = one(objs, "StatefulSet", WORKERS)
    pod = sts["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == WORKERS
    assert pod["automountServiceAccountToken"] is True
    assert one(objs, "ServiceAccount", WORKERS)["automountServiceAccountToken"] is True


def test_worker_rbac_follows_rbac_create(tmp_path):
    objs = render({"rbac": {"create": False}}, tmp_path)
    assert find(objs, "ClusterRole") == [] and find(objs, "ClusterRoleBinding") == []


# ---------------------------------------------------------------------------------------------
# leader election
# ---------------------------------------------------------------------------------------------


def lease_rules(objs) -> list[dict]:
    return [r for o in find(objs, "Role") + find(objs, "ClusterRole") for r in o["rules"]
            if "leases" in r.get("resources", [])]


def test_leader_election_on():
    objs = render_file(str(CHART / "ci" / "leader-election-values.yaml"))
    dep = one(objs, "Deployment", MASTER)
    assert dep["spec"]["replicas"] == 2
    role = one(objs, "Role", f"{MASTER}-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    rules = lease_rules(objs)
    # kube-lease-manager reads, creates and patches (strategic merge and server-side apply).
    assert {v for r in rules for v in r["verbs"]} == {"create", "get", "update", "patch"}
    for r in rules:
        assert r["apiGroups"] == ["coordination.k8s.io"]
        if r["verbs"] != ["create"]:
            assert r["resourceNames"] == ["promshard-leader"]
    rb = one(objs, "RoleBinding", f"{MASTER}-leader-election")
    assert rb["roleRef"]["name"] == role["metadata"]["name"]
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": MASTER, "namespace": NAMESPACE}]
    f = flags(container(dep)["args"])
    assert "--leader-election" in f
    assert f["--leader-election-namespace"] == NAMESPACE
    assert f["--leader-election-lease-name"] == "promshard-leader"
    assert "strategy" not in dep["spec"]  # rolling: the standby takes over
    assert one(objs, "PodDisruptionBudget", MASTER)["spec"]["maxUnavailable"] == 1
    anti = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
        "labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "master"


def test_leader_election_lease_in_another_namespace(tmp_path):
    objs = render({"master": {"leaderElection": {"enabled": True, "namespace": "kube-system"}}},
                  tmp_path)
    assert one(objs, "Role")["metadata"]["namespace"] == "kube-system"
    assert one(objs, "RoleBinding")["subjects"][0]["namespace"] == NAMESPACE
    f = flags(container(one(objs, "Deployment", MASTER))["args"])
    assert f["--leader-election-namespace"] == "kube-system"
    assert f["--leader-election-lease-name"] == MASTER


@pytest.mark.parametrize("values_file", [None, str(CHART / "ci" / "all-roles-values.yaml")])
def test_leader_election_off(values_file):
    objs = render_file(values_file)
    assert lease_rules(objs) == []
    assert find(objs, "Role") == [] and find(objs, "RoleBinding") == []
    dep = one(objs, "Deployment", MASTER)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # never two masters
    assert not any(a.startswith("--leader-election") for a in container(dep)["args"])
    assert find(objs, "PodDisruptionBudget", MASTER) == []


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------


def test_master_command_line():
    dep = one(render_file(None), "Deployment", MASTER)
    c = container(dep)
    assert c["args"] == [
        "master",
        "--config=/etc/promshard/prometheus.yml",
        "--listen-grpc=0.0.0.0:9400",
        "--listen-http=0.0.0.0:9401",
        "--worker-grace-period=10s",
        "--grpc.tls-cert-file=/var/run/secrets/promshard/tls/tls.crt",
        "--grpc.tls-key-file=/var/run/secrets/promshard/tls/tls.key",
        "--grpc.token-file=/var/run/secrets/promshard/auth/grpc-token",
        "--web.admin-token-file=/var/run/secrets/promshard/auth/admin-token",
    ]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/promshard" and mounts["config"]["readOnly"]
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert vols["config"]["configMap"]["name"] == f"{FULLNAME}-config"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 9400, "http": 9401}
    assert "checksum/config" in dep["spec"]["template"]["metadata"]["annotations"]


def test_worker_command_line():
    sts = one(render_file(None), "StatefulSet", WORKERS)
    c = container(sts)
    assert c["args"] == [
        "worker",
        f"--master=https://{MASTER_DNS}:9400",
        f"--master.server-name={MASTER_DNS}",
        "--master.ca-file=/var/run/secrets/promshard/tls/ca.crt",
        "--master.token-file=/var/run/secrets/promshard/auth/grpc-token",
        "--id=$(POD_NAME)",
        "--listen-http=0.0.0.0:9402",
        "--data-dir=/data",
    ]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 9402}


def test_upcoming_flags_only_when_set(tmp_path):
    objs = render({"master": {"kubeconfig": "/etc/kube/config"},
                   "workers": {"wal": {"maxBytes": "2GiB"}}}, tmp_path)
    assert flags(container(one(objs, "Deployment", MASTER))["args"])["--kubeconfig"] == \
        "/etc/kube/config"
    assert flags(container(one(objs, "StatefulSet", WORKERS))["args"])["--wal.max-bytes"] == "2GiB"
    default = render_file(None)
    for o in (one(default, "Deployment", MASTER), one(default, "StatefulSet", WORKERS)):
        assert not UPCOMING_FLAGS & set(flags(container(o)["args"]))


@pytest.mark.parametrize("values_file", values_cases())
def test_rendered_flags_exist_in_the_binary(values_file):
    """Every flag the chart passes is one `promshard master|worker --help` lists, or one of
    the upcoming flags named in values.yaml."""
    objs = render_file(values_file)
    for o in (one(objs, "Deployment", MASTER), one(objs, "StatefulSet", WORKERS)):
        args = container(o)["args"]
        p = run([PROMSHARD, args[0], "--help"])
        assert p.returncode == 0, p.stderr
        known = set(re.findall(r"--[a-z][a-z0-9.-]*", p.stdout))
        unknown = set(flags(args)) - known - UPCOMING_FLAGS
        assert not unknown, f"{args[0]}: flags the binary does not know: {unknown}"


def test_wal_on_a_persistent_volume():
    sts = one(render_file(None), "StatefulSet", WORKERS)
    mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
    assert mounts["data"] == "/data"
    [pvc] = sts["spec"]["volumeClaimTemplates"]
    assert pvc["metadata"]["name"] == "data"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    vols = {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "data" not in vols  # comes from the claim template
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["serviceName"] == WORKERS
    assert sts["spec"]["podManagementPolicy"] == "Parallel"


def test_wal_on_an_empty_dir():
    sts = one(render_file(str(CHART / "ci" / "wal-emptydir-values.yaml")), "StatefulSet", WORKERS)
    assert "volumeClaimTemplates" not in sts["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
    assert mounts["data"] == "/data"
    vols = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert vols["data"]["emptyDir"] == {"sizeLimit": "4Gi"}
    assert flags(container(sts)["args"])["--wal.max-bytes"] == "1GiB"
    assert sts["spec"]["replicas"] == 4


def test_hpa():
    objs = render_file(str(CHART / "ci" / "hpa-values.yaml"))
    hpa = one(objs, "HorizontalPodAutoscaler", WORKERS)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                             "name": WORKERS}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 30)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
               for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 75}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 900
    sts = one(objs, "StatefulSet", WORKERS)
    assert "replicas" not in sts["spec"]  # the HPA owns it
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Delete"}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    assert find(render_file(None), "HorizontalPodAutoscaler") == []


@pytest.mark.parametrize("values_file", values_cases())
def test_security_context(values_file):
    objs = render_file(values_file)
    for o in (one(objs, "Deployment", MASTER), one(objs, "StatefulSet", WORKERS)):
        pod = o["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container(o)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container(o)["resources"]["requests"]


@pytest.mark.parametrize("values_file", values_cases())
def test_probes(values_file):
    objs = render_file(values_file)
    for o in (one(objs, "Deployment", MASTER), one(objs, "StatefulSet", WORKERS)):
        c = container(o)
        ports = {p["name"] for p in c["ports"]}
        assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
        assert "http" in ports


def test_services_select_their_pods():
    objs = render_file(None)
    master_svc = one(objs, "Service", MASTER)
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in master_svc["spec"]["ports"]}
    assert ports == {"grpc": (9400, "grpc"), "http": (9401, "http")}
    workers_svc = one(objs, "Service", WORKERS)
    assert workers_svc["spec"]["clusterIP"] == "None"
    assert [(p["name"], p["port"]) for p in workers_svc["spec"]["ports"]] == [("http", 9402)]
    for svc, wl in ((master_svc, one(objs, "Deployment", MASTER)),
                    (workers_svc, one(objs, "StatefulSet", WORKERS))):
        pod_labels = wl["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert wl["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert master_svc["spec"]["selector"] != workers_svc["spec"]["selector"]


def test_pod_disruption_budgets_select_their_pods():
    objs = render_file(str(CHART / "ci" / "leader-election-values.yaml"))
    for name, kind in ((MASTER, "Deployment"), (WORKERS, "StatefulSet")):
        pdb = one(objs, "PodDisruptionBudget", name)
        wl = one(objs, kind, name)
        assert pdb["spec"]["selector"] == wl["spec"]["selector"]


def test_topology_spread_gets_the_workers_selector():
    sts = one(render_file(None), "StatefulSet", WORKERS)
    tsc = sts["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in tsc] == ["topology.kubernetes.io/zone",
                                               "kubernetes.io/hostname"]
    for c in tsc:
        assert c["labelSelector"] == sts["spec"]["selector"]


def test_config_change_rolls_the_master(tmp_path):
    a = one(render_file(None), "Deployment", MASTER)
    b = one(render({"prometheusGlobal": {"scrape_interval": "15s"}}, tmp_path), "Deployment",
            MASTER)
    key = "checksum/config"
    assert a["spec"]["template"]["metadata"]["annotations"][key] != \
        b["spec"]["template"]["metadata"]["annotations"][key]


# ---------------------------------------------------------------------------------------------
# values.schema.json
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values,match", [
    ({"workerz": {}}, "workerz"),
    ({"workers": {"replicas": -1}}, "replicas"),
    ({"remoteWrite": [{"url": "prometheus:9090"}]}, "url"),
    ({"scrapeConfigs": [{"kubernetes_sd_configs": [{"role": "pod"}]}]}, "job_name"),
    ({"scrapeConfigs": [{"job_name": "x", "kubernetes_sd_configs": [{"role": "pods"}]}]}, "role"),
    ({"master": {"leaderElection": {"enabled": "yes"}}}, "enabled"),
    ({"prometheusGlobal": {"scrape_interval": "30 seconds"}}, "scrape_interval"),
])
def test_schema_rejects(values, match, tmp_path):
    with pytest.raises(RenderError, match=match):
        render(values, tmp_path)


def test_schema_allows_helm_globals(tmp_path):
    objs = render({"global": {"imageRegistry": "mirror.example"}}, tmp_path)
    assert "imageRegistry" not in prometheus_yml(objs)


# ---------------------------------------------------------------------------------------------
# self-monitoring
# ---------------------------------------------------------------------------------------------


def test_service_monitor_scrapes_both_tiers():
    objs = render_file(str(CHART / "ci" / "monitoring-values.yaml"))
    sm = one(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    sel = sm["spec"]["selector"]
    for svc in (one(objs, "Service", MASTER), one(objs, "Service", WORKERS)):
        assert sel["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert svc["metadata"]["labels"]["app.kubernetes.io/component"] in \
            sel["matchExpressions"][0]["values"]
        assert "http" in {p["name"] for p in svc["spec"]["ports"]}
    assert find(render_file(None), "ServiceMonitor") == []


def alerts(objs) -> dict[str, dict]:
    rule = one(objs, "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def test_prometheus_rule_alerts():
    objs = render_file(str(CHART / "ci" / "monitoring-values.yaml"))
    got = alerts(objs)
    assert set(got) == {
        "PromshardMasterDown", "PromshardNoLeader", "PromshardMultipleLeaders",
        "PromshardNoWorkersConnected", "PromshardWorkersDisconnected", "PromshardKubeWatchErrors",
        "PromshardWorkerDown", "PromshardWorkerMasterDisconnected", "PromshardRemoteWriteFailing",
        "PromshardRemoteWriteDropping", "PromshardRemoteWriteBacklogGrowing",
        "PromshardScrapeFailuresHigh",  # additionalRules; PlacementImbalance is disabled
        "PromshardComponentTargetDown",
    }
    assert f'job="{MASTER}"' in got["PromshardMasterDown"]["expr"]
    assert f'up{{job="{WORKERS}"}} == 0' == got["PromshardWorkerDown"]["expr"]
    assert "prometheus_remote_storage_samples_failed_total" in \
        got["PromshardRemoteWriteFailing"]["expr"]
    assert "prometheus_remote_storage_samples_pending" in \
        got["PromshardRemoteWriteBacklogGrowing"]["expr"]
    assert "promshard_master_kube_watch_restarts_total" in got["PromshardKubeWatchErrors"]["expr"]
    assert "promshard_master_leader" in got["PromshardNoLeader"]["expr"]
    for name, r in got.items():
        assert r["labels"]["severity"] in ("critical", "warning"), name
        assert r["annotations"]["summary"], name


def test_prometheus_rule_without_leader_election(tmp_path):
    got = alerts(render({"prometheusRule": {"enabled": True}}, tmp_path))
    assert "PromshardNoLeader" not in got and "PromshardMultipleLeaders" not in got
    assert "promshard_worker_targets" in got["PromshardPlacementImbalance"]["expr"]
    assert "> 1.5" in got["PromshardPlacementImbalance"]["expr"]


@pytest.mark.skipif(not PROMTOOL, reason="promtool not installed (scripts/test.sh installs it)")
@pytest.mark.parametrize("values", [
    {"prometheusRule": {"enabled": True}},
    {"prometheusRule": {"enabled": True}, "master": {"leaderElection": {"enabled": True}}},
])
def test_alert_rules_pass_promtool(values, tmp_path):
    rule = one(render(values, tmp_path), "PrometheusRule")
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    p = run([PROMTOOL, "check", "rules", str(f)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


KNOWN_METRICS = {
    "up", "promshard_master_workers", "promshard_master_targets", "promshard_master_leader",
    "promshard_master_kube_requests_total", "promshard_master_kube_watch_restarts_total",
    "promshard_worker_targets", "promshard_worker_master_connected",
    "promshard_worker_scrapes_total", "promshard_worker_assignment_generation",
    "prometheus_remote_storage_samples_total", "prometheus_remote_storage_samples_failed_total",
    "prometheus_remote_storage_samples_retried_total",
    "prometheus_remote_storage_samples_dropped_total",
    "prometheus_remote_storage_samples_pending",
    "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
}
METRIC_RE = re.compile(r"\b((?:promshard|prometheus_remote_storage)_[a-z_]+)\b")


def test_alerts_and_dashboard_use_known_metrics():
    objs = render_file(str(CHART / "ci" / "monitoring-values.yaml"))
    exprs = [r["expr"] for r in alerts(objs).values()]
    dash = json.loads(one(objs, "ConfigMap", f"{FULLNAME}-dashboard")["data"]["promshard.json"])
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    exprs += [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in METRIC_RE.findall(e)}
    assert used - KNOWN_METRICS == set()
    assert {"promshard_master_workers", "promshard_worker_targets",
            "prometheus_remote_storage_samples_pending"} <= used


def test_grafana_dashboard():
    objs = render_file(None)
    cm = one(objs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["promshard.json"])
    assert dash["uid"] == "promshard-overview"
    assert [v["name"] for v in dash["templating"]["list"]] == [
        "datasource", "namespace", "master_job", "workers_job", "scrape_job"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
    annotated = one(render_file(str(CHART / "ci" / "monitoring-values.yaml")), "ConfigMap",
                    f"{FULLNAME}-dashboard")
    assert annotated["metadata"]["annotations"] == {"grafana_folder": "Monitoring"}


def test_dashboard_and_alerts_cover_the_component_jobs(tmp_path):
    dash = json.loads(one(render_file(None), "ConfigMap",
                          f"{FULLNAME}-dashboard")["data"]["promshard.json"])
    exprs = [t["expr"] for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]
    for series in ("up{", "scrape_samples_post_metric_relabeling{", "scrape_samples_scraped{",
                   "scrape_duration_seconds{"):
        assert any(series + 'job=~"$scrape_job"' in e for e in exprs), series
    got = alerts(render({"prometheusRule": {"enabled": True}}, tmp_path))
    expr = got["PromshardComponentTargetDown"]["expr"]
    assert expr == 'up{job=~"apiserver|coredns|kube-state-metrics|kubelet|node-exporter"} == 0'
    opt_in = alerts(render({"prometheusRule": {"enabled": True},
                            "defaultScrapeConfigs": {"kubeProxy": {"enabled": True},
                                                     "kubeStateMetrics": {"enabled": False}}},
                           tmp_path))
    assert opt_in["PromshardComponentTargetDown"]["expr"] == \
        'up{job=~"apiserver|coredns|kube-proxy|kubelet|node-exporter"} == 0'
    # The self-monitoring alerts select what the built-in promshard job produces.
    assert f'up{{job="{WORKERS}"}} == 0' == got["PromshardWorkerDown"]["expr"]


# ---------------------------------------------------------------------------------------------
# control plane: credentials, TLS, NetworkPolicy
# ---------------------------------------------------------------------------------------------


def secret_volume_files(workload: dict) -> dict[str, tuple[str, str]]:
    """Files the container sees from Secret volumes: path -> (secret name, key)."""
    pod = workload["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for m in container(workload)["volumeMounts"]:
        secret = vols.get(m["name"], {}).get("secret")
        if secret:
            assert m.get("readOnly") is True, m
            for item in secret["items"]:
                out[f"{m['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return out


def secret_data(objs, name: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in one(objs, "Secret", name)["data"].items()}


def test_control_plane_credentials_are_mounted_and_passed_to_the_flags():
    objs = render_file(None)
    master = one(objs, "Deployment", MASTER)
    workers = one(objs, "StatefulSet", WORKERS)
    mf, wf = flags(container(master)["args"]), flags(container(workers)["args"])
    m_files, w_files = secret_volume_files(master), secret_volume_files(workers)
    assert {mf[f] for f in ("--grpc.tls-cert-file", "--grpc.tls-key-file", "--grpc.token-file",
                            "--web.admin-token-file")} == set(m_files)
    assert m_files[mf["--grpc.tls-cert-file"]] == (TLS_SECRET, "tls.crt")
    assert m_files[mf["--grpc.tls-key-file"]] == (TLS_SECRET, "tls.key")
    assert m_files[mf["--grpc.token-file"]] == (AUTH_SECRET, "grpc-token")
    assert m_files[mf["--web.admin-token-file"]] == (AUTH_SECRET, "admin-token")
    # Workers get the token and the CA, never the admin token or the master's key.
    assert set(w_files) == {wf["--master.token-file"], wf["--master.ca-file"]}
    assert w_files[wf["--master.token-file"]] == (AUTH_SECRET, "grpc-token")
    assert w_files[wf["--master.ca-file"]] == (TLS_SECRET, "ca.crt")
    assert wf["--master"] == f"https://{MASTER_DNS}:9400"
    assert wf["--master.server-name"] == MASTER_DNS
    # The same token on both sides, random, and different for the admin API.
    auth = secret_data(objs, AUTH_SECRET)
    assert set(auth) == {"grpc-token", "admin-token"}
    assert len(auth["grpc-token"]) == 48 and auth["grpc-token"] != auth["admin-token"]
    again = secret_data(_template(()), AUTH_SECRET)
    assert again["grpc-token"] != auth["grpc-token"], "tokens must not be a constant"


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_generated_certificate_names_the_master_and_chains_to_the_ca(tmp_path):
    tls = secret_data(render_file(None), TLS_SECRET)
    assert one(render_file(None), "Secret", TLS_SECRET)["type"] == "kubernetes.io/tls"
    for k, v in tls.items():
        (tmp_path / k).write_bytes(v)
    p = run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), "-purpose", "sslserver",
             "-verify_hostname", MASTER_DNS, str(tmp_path / "tls.crt")])
    assert p.returncode == 0 and ": OK" in p.stdout, p.stdout + p.stderr
    p = run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"),
             "-verify_hostname", "evil.example", str(tmp_path / "tls.crt")])
    assert p.returncode != 0
    p = run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
             str(tmp_path / "tls.crt")])
    sans = set(re.findall(r"DNS:([^,\s]+)", p.stdout))
    assert sans == {MASTER, f"{MASTER}.{NAMESPACE}", MASTER_DNS, f"{MASTER_DNS}.cluster.local"}
    p = run(["openssl", "pkey", "-in", str(tmp_path / "tls.key"), "-noout"])
    assert p.returncode == 0, p.stderr


def test_cert_manager_issues_the_master_certificate(tmp_path):
    objs = render_file(str(CHART / "ci" / "cert-manager-values.yaml"))
    assert find(objs, "Secret", TLS_SECRET) == []  # cert-manager writes it
    cert = one(objs, "Certificate", f"{MASTER}-tls")
    assert cert["apiVersion"] == "cert-manager.io/v1"
    spec = cert["spec"]
    assert spec["secretName"] == TLS_SECRET
    assert MASTER_DNS in spec["dnsNames"] and spec["usages"] == ["server auth"]
    assert spec["issuerRef"] == {"name": f"{FULLNAME}-ca", "kind": "Issuer"}
    assert one(objs, "Issuer", f"{FULLNAME}-ca")["spec"] == {"ca": {"secretName": f"{FULLNAME}-ca"}}
    assert one(objs, "Issuer", f"{FULLNAME}-selfsigned")["spec"] == {"selfSigned": {}}
    ca = one(objs, "Certificate", f"{FULLNAME}-ca")["spec"]
    assert ca["isCA"] is True and ca["issuerRef"]["name"] == f"{FULLNAME}-selfsigned"
    files = secret_volume_files(one(objs, "StatefulSet", WORKERS))
    assert (TLS_SECRET, "ca.crt") in files.values()
    # An issuer of the user's: no release CA.
    objs = render({"controlPlaneTLS": {"certManager": {
        "enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}}, tmp_path)
    assert find(objs, "Issuer") == []
    assert one(objs, "Certificate")["spec"]["issuerRef"] == {"name": "corp-ca",
                                                            "kind": "ClusterIssuer"}


def test_existing_secrets_are_mounted_not_generated():
    objs = render_file(str(CHART / "ci" / "existing-secrets-values.yaml"))
    assert find(objs, "Secret") == []
    m_files = secret_volume_files(one(objs, "Deployment", MASTER))
    w_files = secret_volume_files(one(objs, "StatefulSet", WORKERS))
    assert {s for s, _ in m_files.values()} == {"promshard-tokens", "promshard-grpc-tls"}
    assert sorted(w_files.values()) == [("promshard-grpc-tls", "ca.crt"),
                                        ("promshard-tokens", "grpc-token")]
    assert find(objs, "NetworkPolicy") == []


def test_control_plane_protections_can_be_turned_off():
    objs = render_file(str(CHART / "ci" / "insecure-control-plane-values.yaml"))
    assert find(objs, "Secret") == [] and find(objs, "NetworkPolicy") == []
    master = one(objs, "Deployment", MASTER)
    workers = one(objs, "StatefulSet", WORKERS)
    assert not [a for a in container(master)["args"] if a.startswith(("--grpc.", "--web."))]
    assert not [a for a in container(workers)["args"] if a.startswith("--master.")]
    assert flags(container(workers)["args"])["--master"] == f"http://{MASTER_DNS}:9400"
    assert secret_volume_files(master) == {} and secret_volume_files(workers) == {}


@pytest.mark.parametrize("values_file", [None, str(CHART / "ci" / "cert-manager-values.yaml")])
def test_network_policy_admits_grpc_from_workers_and_http_from_the_namespace(values_file):
    objs = render_file(values_file)
    np = one(objs, "NetworkPolicy", MASTER)["spec"]
    master = one(objs, "Deployment", MASTER)
    workers = one(objs, "StatefulSet", WORKERS)
    assert np["podSelector"] == master["spec"]["selector"]
    assert np["policyTypes"] == ["Ingress"]
    grpc, http = np["ingress"]
    assert grpc == {"from": [{"podSelector": workers["spec"]["selector"]}],
                    "ports": [{"protocol": "TCP", "port": "grpc"}]}
    assert http["ports"] == [{"protocol": "TCP", "port": "http"}]
    extra = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prometheus"}}}]
    assert http["from"] == [{"podSelector": {}}] + (extra if values_file else [])
    # The named ports exist on the master's container.
    assert {p["name"] for p in container(master)["ports"]} == {"grpc", "http"}


# ---------------------------------------------------------------------------------------------
# prometheusCr: the prometheus_cr block, RBAC on monitoring.coreos.com, Secrets by name, CRDs
# ---------------------------------------------------------------------------------------------

CR_KINDS = {
    "monitoring.coreos.com/servicemonitors", "monitoring.coreos.com/podmonitors",
    "monitoring.coreos.com/probes", "monitoring.coreos.com/scrapeconfigs",
    "/pods", "/services", "/nodes", "networking.k8s.io/ingresses",
}


def test_prometheus_cr_off_by_default():
    objs = render_file(None)
    assert "prometheus_cr" not in yaml.safe_load(prometheus_yml(objs))
    assert not find(objs, "CustomResourceDefinition")
    assert not [o for o in find(objs, "Role") if o["metadata"]["name"].endswith("-cr-secrets")]


def test_prometheus_cr_block_rbac_and_crds(tmp_path):
    objs = render_file(str(CHART / "ci" / "prometheus-cr-values.yaml"))
    cfg = yaml.safe_load(prometheus_yml(objs))
    cr = cfg["prometheus_cr"]
    assert cr["enabled"] is True
    assert cr["scrape_interval"] == "15s"
    assert cr["service_monitor_selector"] == {"matchLabels": {"release": "kube-prometheus-stack"}}
    assert cr["pod_monitor_selector"] == {}
    assert check_config(prometheus_yml(objs), tmp_path).returncode == 0
    # list/watch on the four kinds and what their jobs read; namespaces for the namespace
    # selector; never secrets.
    kinds = discovery_kinds(objs)
    assert CR_KINDS | {"discovery.k8s.io/endpointslices", "/namespaces"} <= kinds
    assert not {k for k in kinds if k.endswith("/secrets") or k.endswith("/configmaps")}
    # get on Secrets and ConfigMaps only in the namespaces listed.
    roles = [o for o in find(objs, "Role") if o["metadata"]["name"].endswith("-cr-secrets")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["apps", "monitoring"]
    for r in roles:
        assert r["rules"] == [{"apiGroups": [""], "resources": ["secrets", "configmaps"],
                               "verbs": ["get"]}]
    crds = find(objs, "CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "podmonitors.monitoring.coreos.com", "probes.monitoring.coreos.com",
        "scrapeconfigs.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"]


def test_prometheus_cr_endpoints_role_and_cluster_wide_secrets(tmp_path):
    objs = render({**NO_DEFAULT_JOBS, "prometheusCr": {
        "enabled": True, "serviceDiscoveryRole": "Endpoints",
        "secretAccess": {"clusterWide": True}}}, tmp_path)
    kinds = discovery_kinds(objs)
    assert kinds == CR_KINDS | {"/endpoints"}
    role = one(objs, "ClusterRole", f"{MASTER_ROLE}-cr-secrets")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets", "configmaps"],
                              "verbs": ["get"]}]
