//! The chart's default kubelet jobs, as rendered by `helm`, scraping a kubelet the way they do
//! in a cluster: the node is discovered through the API-server double (role `node`: its
//! InternalIP and kubelet port), and a real worker scrapes it directly over https, verifying the
//! serving certificate with the "ServiceAccount CA" and sending the "ServiceAccount token" from a
//! file that rotates during the test, as the kubelet rotates projected tokens.
//!
//! The kubelet double serves `/metrics`, `/metrics/cadvisor`, `/metrics/probes` and
//! `/metrics/resource` over TLS with a certificate for 127.0.0.1 signed by a test CA (rcgen), and
//! answers 401 unless the request carries `Authorization: Bearer <token>` with the token currently
//! in its own token file (the API server's view of which tokens are valid). Only the file paths,
//! the intervals and the remote-write URL of the rendered jobs are changed.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use promshard_integration_tests::apiserver::ApiServerDouble;
use promshard_integration_tests::chart::Chart;
use promshard_integration_tests::cluster::start_worker;
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::launcher::Process;
use promshard_integration_tests::receiver::{Labels, RecordingReceiver};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const NODE: &str = "node-a";
/// Where the chart's jobs read the worker's ServiceAccount credentials.
const SA_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const KUBELET_JOBS: [(&str, &str); 4] = [
    ("kubelet", "/metrics"),
    ("kubelet-cadvisor", "/metrics/cadvisor"),
    ("kubelet-probes", "/metrics/probes"),
    ("kubelet-resource", "/metrics/resource"),
];

/// One request the kubelet double answered.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    status: u16,
}

/// Timestamps (ms) the double put on its timestamped series, per path.
type Stamps = Arc<Mutex<BTreeSet<(String, i64)>>>;

struct KubeletDouble {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stamps: Stamps,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeletDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeletDouble {
    /// Serves https on 127.0.0.1 with `cert`/`key`, accepting the token in `token_file`.
    async fn start(cert: Vec<u8>, key: Vec<u8>, token_file: PathBuf) -> KubeletDouble {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(cert)],
                rustls::pki_types::PrivateKeyDer::try_from(key).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stamps = Stamps::default();
        let (s, st) = (seen.clone(), stamps.clone());
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, token_file) = (acceptor.clone(), token_file.clone());
                let (seen, stamps, requests) = (s.clone(), st.clone(), requests.clone());
                tokio::spawn(async move {
                    // A failed handshake (a scraper that does not trust the CA) ends here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let n = requests.fetch_add(1, Ordering::Relaxed) + 1;
                        let answer = answer(&req, &token_file, &stamps, n);
                        seen.lock().unwrap().push(Seen {
                            path: req.uri().path().to_owned(),
                            authorization: req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                            status: answer.status().as_u16(),
                        });
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KubeletDouble {
            addr,
            seen,
            stamps,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// What the kubelet answers: 401 without the valid token, else the path's exposition.
fn answer(
    req: &Request<hyper::body::Incoming>,
    token_file: &Path,
    stamps: &Stamps,
    n: u64,
) -> Response<Full<Bytes>> {
    let valid = std::fs::read_to_string(token_file).unwrap_or_default();
    let want = format!("Bearer {}", valid.trim());
    let got = req.headers().get("authorization").map(|v| v.as_bytes());
    if got != Some(want.as_bytes()) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized\n".to_owned());
    }
    // cAdvisor and the resource endpoint stamp samples with when they read the cgroups: a
    // moment before the scrape.
    let ts = now_ms() - 1500;
    let path = req.uri().path();
    let body = match path {
        "/metrics" => format!(
            "# TYPE kubelet_node_name gauge\n\
             kubelet_node_name{{node=\"{NODE}\"}} 1\n\
             # TYPE kubelet_running_pods gauge\n\
             kubelet_running_pods 3\n\
             # TYPE storage_operation_duration_seconds histogram\n\
             storage_operation_duration_seconds_bucket{{operation_name=\"verify\",le=\"0.1\"}} 1\n\
             storage_operation_duration_seconds_bucket{{operation_name=\"verify\",le=\"0.25\"}} 1\n\
             storage_operation_duration_seconds_bucket{{operation_name=\"verify\",le=\"+Inf\"}} 1\n\
             storage_operation_duration_seconds_sum{{operation_name=\"verify\"}} 0.05\n\
             storage_operation_duration_seconds_count{{operation_name=\"verify\"}} 1\n"
        ),
        "/metrics/cadvisor" => {
            stamps.lock().unwrap().insert((path.to_owned(), ts));
            let app = r#"container="app",id="/kubepods/pod1/c1",image="img",name="c1",namespace="team-a",pod="web-0""#;
            format!(
                "# TYPE container_cpu_usage_seconds_total counter\n\
                 container_cpu_usage_seconds_total{{{app},cpu=\"total\"}} {n} {ts}\n\
                 container_cpu_usage_seconds_total{{container=\"\",cpu=\"total\",id=\"/system.slice/docker.service\",image=\"\",name=\"\",namespace=\"\",pod=\"\"}} 5 {ts}\n\
                 # TYPE container_cpu_load_average_10s gauge\n\
                 container_cpu_load_average_10s{{{app}}} 0 {ts}\n\
                 # TYPE container_spec_memory_limit_bytes gauge\n\
                 container_spec_memory_limit_bytes{{{app}}} 1e+09 {ts}\n\
                 # TYPE container_memory_working_set_bytes gauge\n\
                 container_memory_working_set_bytes{{{app}}} 1000 {ts}\n\
                 # TYPE container_network_receive_bytes_total counter\n\
                 container_network_receive_bytes_total{{{app},interface=\"eth0\"}} 10 {ts}\n\
                 container_network_receive_bytes_total{{{app},interface=\"cali123\"}} 10 {ts}\n"
            )
        }
        "/metrics/probes" => "# TYPE prober_probe_total counter\n\
             prober_probe_total{container=\"app\",namespace=\"team-a\",pod=\"web-0\",probe_type=\"Readiness\",result=\"successful\"} 7\n"
            .to_owned(),
        "/metrics/resource" => {
            stamps.lock().unwrap().insert((path.to_owned(), ts));
            format!(
                "# TYPE node_cpu_usage_seconds_total counter\n\
                 node_cpu_usage_seconds_total {n} {ts}\n\
                 # TYPE container_memory_working_set_bytes gauge\n\
                 container_memory_working_set_bytes{{container=\"app\",namespace=\"team-a\",pod=\"web-0\"}} 2000 {ts}\n"
            )
        }
        _ => return text(StatusCode::NOT_FOUND, "404 page not found\n".to_owned()),
    };
    text(StatusCode::OK, body)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8".parse().unwrap(),
    );
    r
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A test CA and a serving certificate for 127.0.0.1 signed by it: (CA PEM, cert DER, key DER).
fn pki() -> (String, Vec<u8>, Vec<u8>) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test cluster CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{NODE}@kubelet"));
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.der().to_vec(), key.serialize_der())
}

/// Replaces a file the way the kubelet updates a projected volume: write aside, then rename.
fn rotate(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The rendered kubelet jobs with the test's paths and 1 s intervals, plus `kubelet-no-token`:
/// the cAdvisor job without its `authorization`, labelled variant="no-token".
fn kubelet_jobs(rendered: &str, ca: &Path, token: &Path) -> Vec<Value> {
    let config: Value = serde_norway::from_str(rendered).unwrap();
    let mut jobs = Vec::new();
    for (name, path) in KUBELET_JOBS {
        let mut job = config["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == name)
            .unwrap_or_else(|| panic!("the chart renders no job {name}"))
            .clone();
        // What the worker would read in its pod; everything else stays as rendered.
        assert_eq!(job["tls_config"]["ca_file"], SA_CA, "{name}");
        assert_eq!(job["authorization"]["credentials_file"], SA_TOKEN, "{name}");
        assert_eq!(job["scheme"], "https", "{name}");
        assert_eq!(
            job["kubernetes_sd_configs"],
            json!([{"role": "node"}]),
            "{name}"
        );
        assert_eq!(job["metrics_path"].as_str().unwrap_or("/metrics"), path);
        job["tls_config"]["ca_file"] = json!(ca);
        job["authorization"]["credentials_file"] = json!(token);
        job["scrape_interval"] = json!("1s");
        job["scrape_timeout"] = json!("1s");
        jobs.push(job);
    }
    let mut without = jobs[1].clone();
    without["job_name"] = json!("kubelet-no-token");
    without.as_object_mut().unwrap().remove("authorization");
    without["relabel_configs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"target_label": "variant", "replacement": "no-token"}));
    jobs.push(without);
    jobs
}

/// The target labels kube-prometheus-stack's kubelet ServiceMonitor gives a kubelet endpoint.
fn target_labels(instance: &str, path: &str) -> Labels {
    [
        ("job", "kubelet"),
        ("instance", instance),
        ("node", NODE),
        ("namespace", "kube-system"),
        ("endpoint", "https-metrics"),
        ("metrics_path", path),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn with(mut labels: Labels, extra: &[(&str, &str)]) -> Labels {
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    labels
}

/// The last `up` of a target, if any.
fn last_up(rx: &RecordingReceiver, target: &Labels) -> Option<f64> {
    let series = with(target.clone(), &[("__name__", "up")]);
    rx.samples(&series).last().map(|(_, v)| *v)
}

/// `lastError` of the master's active targets of a scrape pool.
async fn last_errors(http: &str, pool: &str) -> Result<Vec<String>, String> {
    let v: Value = reqwest::get(format!(
        "{http}/api/v1/targets?state=active&scrapePool={pool}"
    ))
    .await
    .map_err(|e| e.to_string())?
    .json()
    .await
    .map_err(|e| e.to_string())?;
    Ok(v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["lastError"].as_str().unwrap_or("").to_owned())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_kubelet_jobs_scrape_over_tls_with_a_rotating_token() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert, key) = pki();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca_pem).unwrap();
    // The worker's projected token, and the kubelet's (API server's) idea of the valid one.
    let worker_token = dir.path().join("token");
    let valid_token = dir.path().join("valid-token");
    std::fs::write(&worker_token, "token-1\n").unwrap();
    std::fs::write(&valid_token, "token-1\n").unwrap();
    let kubelet = KubeletDouble::start(cert, key, valid_token.clone()).await;
    let instance = kubelet.addr.to_string();

    let api = ApiServerDouble::start().await;
    api.apply(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": NODE}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.addr.port()}}
        }
    }));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();

    let chart = Chart::template(&[]).await;
    let rx = RecordingReceiver::start().await;
    let config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": kubelet_jobs(&chart.prometheus_yml(), &ca_file, &worker_token),
        "remote_write": [{"url": rx.url(), "queue_config": {"batch_send_deadline": "500ms"}}],
    });
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let master = Process::spawn(
        "master",
        &[
            "master",
            "--config",
            config_file.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--listen-grpc",
            "127.0.0.1:0",
            "--listen-http",
            "127.0.0.1:0",
            "--worker-grace-period",
            "2s",
        ],
    )
    .await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let targets: Vec<(&str, Labels)> = KUBELET_JOBS
        .iter()
        .map(|(job, path)| (*job, target_labels(&instance, path)))
        .collect();
    let no_token = with(
        target_labels(&instance, "/metrics/cadvisor"),
        &[("variant", "no-token")],
    );
    let all_up = |want: f64| {
        let targets = &targets;
        let rx = &rx;
        move || {
            let got: Vec<_> = targets
                .iter()
                .map(|(job, t)| (*job, last_up(rx, t)))
                .collect();
            let ok = got.iter().all(|(_, up)| *up == Some(want));
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(format!("last up per job: {got:?}"))
                }
            }
        }
    };

    // 1. The valid token: every kubelet path is up; the job without a token is not.
    eventually(WAIT, "up=1 on all four kubelet paths", all_up(1.0)).await;
    eventually(WAIT, "up=0 for the job without a token", || async {
        match last_up(&rx, &no_token) {
            Some(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually(WAIT, "the master explains the 401", || async {
        let errors = last_errors(&http, "kubelet-no-token").await?;
        (errors == ["server returned HTTP status 401 Unauthorized"])
            .then_some(())
            .ok_or(format!("{errors:?}"))
    })
    .await;
    assert!(
        kubelet
            .seen()
            .iter()
            .filter(|s| s.status == 401)
            .all(|s| s.authorization.is_none()),
        "only the job without a token was refused"
    );

    // The series carry kube-prometheus-stack's kubelet labels; the workload's own labels win
    // (honor_labels); the documented cAdvisor drops and the kubelet bucket drop apply.
    let cadvisor = target_labels(&instance, "/metrics/cadvisor");
    eventually(WAIT, "a sample of every kept series", || async {
        let missing: Vec<&str> = [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_network_receive_bytes_total",
            "kubelet_running_pods",
            "storage_operation_duration_seconds_count",
            "prober_probe_total",
            "node_cpu_usage_seconds_total",
        ]
        .into_iter()
        .filter(|name| rx.find(name, &[("job", "kubelet")]).is_empty())
        .collect();
        missing
            .is_empty()
            .then_some(())
            .ok_or(format!("missing {missing:?}"))
    })
    .await;
    let app = [
        ("container", "app"),
        ("id", "/kubepods/pod1/c1"),
        ("image", "img"),
        ("name", "c1"),
        ("namespace", "team-a"),
        ("pod", "web-0"),
    ];
    let cpu = with(
        cadvisor.clone(),
        &[
            app.as_slice(),
            &[
                ("__name__", "container_cpu_usage_seconds_total"),
                ("cpu", "total"),
            ],
        ]
        .concat(),
    );
    let names: BTreeSet<String> = rx
        .series()
        .iter()
        .filter(|l| l.get("metrics_path").map(String::as_str) == Some("/metrics/cadvisor"))
        .filter(|l| !l.contains_key("variant"))
        .map(|l| l["__name__"].clone())
        .collect();
    assert_eq!(
        names,
        [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_network_receive_bytes_total",
            "scrape_duration_seconds",
            "scrape_samples_post_metric_relabeling",
            "scrape_samples_scraped",
            "scrape_series_added",
            "up",
        ]
        .map(String::from)
        .into(),
        "cAdvisor series after the default drops"
    );
    let cpu_samples = rx.samples(&cpu);
    assert!(!cpu_samples.is_empty(), "{cpu:?} not received");
    let cadvisor_series: Vec<Labels> = rx
        .series()
        .into_iter()
        .filter(|l| l["__name__"].starts_with("container_"))
        .filter(|l| l.get("metrics_path").map(String::as_str) == Some("/metrics/cadvisor"))
        .filter(|l| !l.contains_key("variant"))
        .collect();
    assert_eq!(
        cadvisor_series,
        vec![
            cpu.clone(),
            with(
                cadvisor.clone(),
                &[
                    app.as_slice(),
                    &[("__name__", "container_memory_working_set_bytes")]
                ]
                .concat()
            ),
            with(
                cadvisor.clone(),
                &[
                    app.as_slice(),
                    &[
                        ("__name__", "container_network_receive_bytes_total"),
                        ("interface", "eth0")
                    ]
                ]
                .concat()
            ),
        ],
        "no system cgroup, no container_spec_*, no load average, no cali* interface"
    );
    // honor_timestamps: false: samples carry the scrape's time, never cAdvisor's (which would
    // go behind the stale markers of phase 2; see the chart's values.yaml).
    let stamps: BTreeSet<i64> = kubelet
        .stamps
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/metrics/cadvisor")
        .map(|(_, t)| *t)
        .collect();
    assert!(!stamps.is_empty());
    for (t, _) in &cpu_samples {
        assert!(
            !stamps.contains(t),
            "sample at {t} kept cAdvisor's timestamp"
        );
    }
    // The kubelet's own series get the target's namespace; the 0.25 bucket is dropped.
    let kubelet_target = target_labels(&instance, "/metrics");
    let running = with(
        kubelet_target.clone(),
        &[("__name__", "kubelet_running_pods")],
    );
    assert_eq!(rx.samples(&running).last().map(|s| s.1), Some(3.0));
    let buckets: BTreeSet<String> = rx
        .find(
            "storage_operation_duration_seconds_bucket",
            &[("metrics_path", "/metrics")],
        )
        .into_iter()
        .map(|(l, _)| l["le"].clone())
        .collect();
    assert_eq!(buckets, ["+Inf", "0.1"].map(String::from).into());
    let probes = with(
        target_labels(&instance, "/metrics/probes"),
        &[
            ("__name__", "prober_probe_total"),
            ("container", "app"),
            ("namespace", "team-a"),
            ("pod", "web-0"),
            ("probe_type", "Readiness"),
            ("result", "successful"),
        ],
    );
    assert_eq!(rx.samples(&probes).last().map(|s| s.1), Some(7.0));
    let node_cpu = with(
        target_labels(&instance, "/metrics/resource"),
        &[("__name__", "node_cpu_usage_seconds_total")],
    );
    assert!(!rx.samples(&node_cpu).is_empty(), "/metrics/resource");

    // 2. The token is rotated at the API server: the old one is refused, each kubelet path is
    //    down with an explicit error.
    rotate(&valid_token, "token-2\n");
    eventually(
        WAIT,
        "up=0 on all four paths with the old token",
        all_up(0.0),
    )
    .await;
    let refused: BTreeSet<String> = kubelet
        .seen()
        .into_iter()
        .filter(|s| s.status == 401 && s.authorization.as_deref() == Some("Bearer token-1"))
        .map(|s| s.path)
        .collect();
    assert_eq!(
        refused,
        KUBELET_JOBS.iter().map(|(_, p)| p.to_string()).collect(),
        "the old token was sent, and refused, on every path"
    );
    for (job, _) in KUBELET_JOBS {
        eventually(WAIT, &format!("{job}'s error on the master"), || async {
            let errors = last_errors(&http, job).await?;
            (errors == ["server returned HTTP status 401 Unauthorized"])
                .then_some(())
                .ok_or(format!("{errors:?}"))
        })
        .await;
    }

    // 3. The worker's projected token file is rotated too: picked up without a restart.
    let before = kubelet.seen().len();
    rotate(&worker_token, "token-2\n");
    eventually(WAIT, "up=1 again with the rotated token", all_up(1.0)).await;
    let after: Vec<Seen> = kubelet.seen().split_off(before);
    let paths: BTreeSet<&str> = after
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(
        paths,
        KUBELET_JOBS
            .iter()
            .map(|(_, p)| *p)
            .collect::<BTreeSet<_>>()
    );
    rx.assert_no_violations();
}
