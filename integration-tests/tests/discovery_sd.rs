//! HTTP, DNS and Consul service discovery end to end: a real master discovers simulated targets
//! through a double of each server, a real worker scrapes them, and the recording receiver gets
//! their samples with the labels relabeling made from the `__meta_*` labels.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use promshard_integration_tests::cluster::{api, metric, start_master, start_worker};
use promshard_integration_tests::eventually::eventually;
use promshard_integration_tests::receiver::RecordingReceiver;
use promshard_integration_tests::sd::{ConsulDouble, ConsulInstance, DnsDouble, HttpSdDouble};
use promshard_integration_tests::simulator::TargetSimulator;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &std::path::Path, jobs: &str, receiver: &RecordingReceiver) -> std::path::PathBuf {
    let text = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}\
         remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 200ms}}\n",
        receiver.url()
    );
    let p = dir.join("prometheus.yml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The active targets of the master: `__address__` → discoveredLabels.
async fn active(http: &str) -> Result<Vec<(String, Value)>, String> {
    let data = api(&format!("{http}/api/v1/targets?state=active")).await?;
    let mut out: Vec<(String, Value)> = data["activeTargets"]
        .as_array()
        .ok_or("no activeTargets")?
        .iter()
        .map(|t| {
            (
                t["discoveredLabels"]["__address__"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                t["discoveredLabels"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

async fn wait_addresses(http: &str, want: &[String]) -> Vec<(String, Value)> {
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    eventually(WAIT, &format!("targets {want:?}"), || async {
        let t = active(http).await?;
        let got: BTreeSet<&str> = t.iter().map(|(a, _)| a.as_str()).collect();
        (got == want).then_some(t.clone()).ok_or(format!("{got:?}"))
    })
    .await
}

/// Waits until the receiver has `up == 1` for `instance` with the given extra labels.
async fn wait_up(receiver: &RecordingReceiver, instance: &str, labels: &[(&str, &str)]) {
    eventually(WAIT, &format!("up == 1 for {instance}"), || async {
        let mut m: Vec<(&str, &str)> = vec![("instance", instance)];
        m.extend_from_slice(labels);
        let found = receiver.find("up", &m);
        found
            .iter()
            .any(|(_, s)| s.iter().any(|(_, v)| *v == 1.0))
            .then_some(())
            .ok_or(format!("{found:?}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_targets_are_scraped_with_auth_and_refreshed() {
    let sim = TargetSimulator::start(2).await;
    let receiver = RecordingReceiver::start().await;
    let sd = HttpSdDouble::start().await;
    let addrs = sim.addresses();
    sd.set_groups(json!([
        {"targets": [addrs[0]], "labels": {"team": "a"}},
        {"targets": [addrs[1]], "labels": {"team": "b", "__meta_zone": "z1"}},
    ]));
    let dir = tempfile::tempdir().unwrap();
    let jobs = format!(
        "  - job_name: httpsd\n    http_sd_configs:\n      - url: {}\n        refresh_interval: 1s\n        basic_auth: {{username: sd, password: s3cret}}\n\
         \x20   relabel_configs:\n      - {{source_labels: [__meta_zone], target_label: zone}}\n      - {{source_labels: [__meta_url], regex: '.*/(targets)', target_label: sd_path}}\n",
        sd.url()
    );
    let cfg = config(dir.path(), &jobs, &receiver);
    let master = start_master(&cfg, &[]).await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let t = wait_addresses(&http, &addrs).await;
    // `active` sorts by address as text: find the second target by its address, not its index
    // (its ephemeral port may sort before the first's).
    let second = &t
        .iter()
        .find(|(a, _)| *a == addrs[1])
        .expect("second target")
        .1;
    assert_eq!(second["__meta_url"], sd.url());
    assert_eq!(second["team"], "b");
    wait_up(
        &receiver,
        &addrs[0],
        &[("team", "a"), ("sd_path", "targets")],
    )
    .await;
    wait_up(&receiver, &addrs[1], &[("team", "b"), ("zone", "z1")]).await;

    // What the endpoint was asked, as Prometheus asks it.
    let req = sd.requests().pop().unwrap();
    let h = |n: &str| {
        req.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h("authorization"), "Basic c2Q6czNjcmV0");
    assert_eq!(h("accept"), "application/json");
    assert_eq!(h("x-prometheus-refresh-interval-seconds"), "1");

    // A failed refresh keeps the targets and is counted.
    sd.set_status(503);
    eventually(WAIT, "a counted failure", || async {
        let n = metric(
            &http,
            r#"promshard_master_sd_refreshes_total{mechanism="http",result="failure"}"#,
        )
        .await?;
        (n >= 2.0).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    wait_addresses(&http, &addrs).await;
    // So does an answer that is not JSON.
    sd.set_status(200);
    sd.set_content_type("text/plain");
    wait_addresses(&http, &addrs).await;

    // Refreshed: a target leaves.
    sd.set_content_type("application/json; charset=utf-8");
    sd.set_groups(json!([{"targets": [addrs[1]], "labels": {"team": "b"}}]));
    wait_addresses(&http, &addrs[1..]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_sd_srv_a_aaaa_and_mx_records_become_targets() {
    let sim = TargetSimulator::start(3).await;
    let receiver = RecordingReceiver::start().await;
    let dns = DnsDouble::start().await;
    let ports: Vec<u16> = sim.targets().iter().map(|t| t.addr().port()).collect();
    dns.set_srv(
        "_sim._tcp.test.",
        &[("localhost.", ports[0]), ("localhost.", ports[1])],
    );
    dns.set_a("a.test.", &[Ipv4Addr::LOCALHOST]);
    dns.set_aaaa("aaaa.test.", &[Ipv6Addr::LOCALHOST]);
    dns.set_mx("mail.test.", &["mx1.test."]);
    let dir = tempfile::tempdir().unwrap();
    let jobs = format!(
        "  - job_name: srv\n    dns_sd_configs: [{{names: ['_sim._tcp.test.', 'missing.test.'], refresh_interval: 1s}}]\n\
         \x20   relabel_configs: [{{source_labels: [__meta_dns_srv_record_target], target_label: srv_target}}]\n\
         \x20 - job_name: a\n    dns_sd_configs: [{{names: [a.test.], type: A, port: {}, refresh_interval: 1s}}]\n\
         \x20 - job_name: aaaa\n    dns_sd_configs: [{{names: [aaaa.test.], type: AAAA, port: 9100, refresh_interval: 1s}}]\n\
         \x20 - job_name: mx\n    dns_sd_configs: [{{names: [mail.test.], type: mx, port: 25, refresh_interval: 1s}}]\n",
        ports[2]
    );
    let cfg = config(dir.path(), &jobs, &receiver);
    let server = dns.addr().to_string();
    let master = start_master(&cfg, &["--discovery.dns-server", &server]).await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let srv = |p: u16| format!("localhost:{p}");
    let want = vec![
        "127.0.0.1:".to_string() + &ports[2].to_string(),
        "[::1]:9100".to_string(),
        srv(ports[0]),
        srv(ports[1]),
        "mx1.test:25".to_string(),
    ];
    let t = wait_addresses(&http, &want).await;
    let by_addr = |a: &str| t.iter().find(|(x, _)| x == a).unwrap().1.clone();
    let s = by_addr(&srv(ports[0]));
    assert_eq!(s["__meta_dns_name"], "_sim._tcp.test.");
    assert_eq!(s["__meta_dns_srv_record_target"], "localhost.");
    assert_eq!(s["__meta_dns_srv_record_port"], ports[0].to_string());
    assert_eq!(s["job"], "srv");
    assert_eq!(
        by_addr("mx1.test:25")["__meta_dns_mx_record_target"],
        "mx1.test."
    );
    assert_eq!(by_addr("[::1]:9100")["__meta_dns_name"], "aaaa.test.");

    // The SRV and A targets are real: scraped, with the SRV target relabeled into a label.
    wait_up(&receiver, &srv(ports[0]), &[("srv_target", "localhost.")]).await;
    wait_up(&receiver, &srv(ports[1]), &[("job", "srv")]).await;
    wait_up(
        &receiver,
        &format!("127.0.0.1:{}", ports[2]),
        &[("job", "a")],
    )
    .await;
    // The missing name was asked for, and had no targets.
    assert!(
        dns.questions().iter().any(|(n, _)| n == "missing.test."),
        "{:?}",
        dns.questions()
    );

    // A record goes away: so does its target.
    dns.set_srv("_sim._tcp.test.", &[("localhost.", ports[1])]);
    let mut want2: Vec<String> = want.into_iter().filter(|a| *a != srv(ports[0])).collect();
    want2.sort();
    wait_addresses(&http, &want2).await;
}

fn instance(id: &str, port: u16, tags: &[&str], status: &str) -> ConsulInstance {
    ConsulInstance {
        id: id.into(),
        node: format!("node-{id}"),
        node_address: "127.0.0.1".into(),
        service_address: String::new(),
        port,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        service_meta: [("version".to_string(), "1.2".to_string())].into(),
        node_meta: [("rack".to_string(), "r1".to_string())].into(),
        status: status.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_sd_follows_the_catalog_with_blocking_queries() {
    let sim = TargetSimulator::start(3).await;
    let receiver = RecordingReceiver::start().await;
    let consul = ConsulDouble::start("dc-test").await;
    let ports: Vec<u16> = sim.targets().iter().map(|t| t.addr().port()).collect();
    consul.set_service(
        "web",
        vec![
            instance("web-1", ports[0], &["prod", "v1"], "passing"),
            instance("web-2", ports[1], &["prod"], "warning"),
        ],
    );
    consul.set_service("db", vec![instance("db-1", ports[2], &["dev"], "passing")]);
    let dir = tempfile::tempdir().unwrap();
    let jobs = format!(
        "  - job_name: consul\n    consul_sd_configs:\n      - server: '{}'\n        token: consul-token\n        tags: [prod]\n        node_meta: {{rack: r1}}\n        refresh_interval: 1s\n\
         \x20   relabel_configs:\n      - {{source_labels: [__meta_consul_service], target_label: service}}\n      - {{source_labels: [__meta_consul_health], target_label: health}}\n",
        consul.server()
    );
    let cfg = config(dir.path(), &jobs, &receiver);
    let master = start_master(&cfg, &[]).await;
    let http = master.url("http");
    let _worker = start_worker("w1", &master.url("grpc"), dir.path(), &[]).await;

    let addr = |p: u16| format!("127.0.0.1:{p}");
    // Only the services with every configured tag: web, not db.
    let t = wait_addresses(&http, &[addr(ports[0]), addr(ports[1])]).await;
    let web1 = t
        .iter()
        .find(|(a, _)| *a == addr(ports[0]))
        .map(|(_, labels)| labels.clone())
        .unwrap();
    let want = json!({
        "__address__": addr(ports[0]),
        "__meta_consul_address": "127.0.0.1",
        "__meta_consul_dc": "dc-test",
        "__meta_consul_health": "passing",
        "__meta_consul_metadata_rack": "r1",
        "__meta_consul_node": "node-web-1",
        "__meta_consul_service": "web",
        "__meta_consul_service_id": "web-1",
        "__meta_consul_service_metadata_version": "1.2",
        "__meta_consul_service_port": ports[0].to_string(),
        "__meta_consul_tagged_address_lan": "127.0.0.1",
        "__meta_consul_tags": ",prod,v1,",
        "__metrics_path__": "/metrics",
        "__scheme__": "http",
        "__scrape_interval__": "1s",
        "__scrape_timeout__": "1s",
        "job": "consul",
    });
    assert_eq!(web1, want);
    wait_up(
        &receiver,
        &addr(ports[0]),
        &[("service", "web"), ("health", "passing")],
    )
    .await;
    wait_up(
        &receiver,
        &addr(ports[1]),
        &[("service", "web"), ("health", "warning")],
    )
    .await;

    // How it asked: the token, the datacenter learned from the agent, the tag and node-meta
    // filters, and blocking queries from the last index.
    let reqs = consul.requests();
    assert!(
        reqs.iter()
            .all(|r| r.token.as_deref() == Some("consul-token"))
    );
    assert!(reqs.iter().any(|r| r.path == "/v1/agent/self"));
    let health: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/v1/health/service/web")
        .collect();
    let has = |r: &&promshard_integration_tests::sd::consul::ConsulRequest, k: &str, v: &str| {
        r.query.iter().any(|(a, b)| a == k && b == v)
    };
    assert!(
        health.iter().all(|r| has(r, "tag", "prod")
            && has(r, "dc", "dc-test")
            && has(r, "node-meta", "rack:r1")),
        "{health:?}"
    );
    assert!(health.iter().all(|r| has(r, "wait", "120000ms")));
    assert!(
        !reqs.iter().any(|r| r.path == "/v1/health/service/db"),
        "db has no prod tag"
    );

    // An instance leaves, then the whole service.
    consul.set_service(
        "web",
        vec![instance("web-2", ports[1], &["prod"], "passing")],
    );
    wait_addresses(&http, &[addr(ports[1])]).await;
    consul.remove_service("web");
    wait_addresses(&http, &[]).await;
}
