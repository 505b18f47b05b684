//! `dns_sd_configs`: resolve each name every `refresh_interval` (Prometheus's
//! `discovery/dns/dns.go`) with hickory's resolver: the system's `/etc/resolv.conf` (search
//! domains and `ndots` included), or the master's `--discovery.dns-server` when given.
//!
//! Targets: SRV records give `<target>:<port>` (the trailing dot trimmed), A and AAAA records
//! the address with the configured port, MX and NS records the host with the configured port.
//! Labels are Prometheus's: `__meta_dns_name`, `__meta_dns_srv_record_target` and `_port`,
//! `__meta_dns_mx_record_target`, `__meta_dns_ns_record_target` (record targets as the server
//! sent them, trailing dot included). A name that does not exist has no targets; a name whose
//! lookup fails keeps its previous targets, as in Prometheus, where the other names' groups
//! are still sent. Answers are not cached between refreshes (Prometheus asks every time).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use promshard_model::Labels;
use promshard_model::config::{DnsRecordType, DnsSdConfig};
use promshard_model::labels::ADDRESS;

use super::TargetGroup;
use super::refresh::Refresh;

const NAME_LABEL: &str = "__meta_dns_name";
const SRV_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
const SRV_PORT_LABEL: &str = "__meta_dns_srv_record_port";
const MX_TARGET_LABEL: &str = "__meta_dns_mx_record_target";
const NS_TARGET_LABEL: &str = "__meta_dns_ns_record_target";

#[derive(Debug, thiserror::Error)]
pub(super) enum DnsSdError {
    #[error("building the DNS resolver: {0}")]
    Resolver(Box<NetError>),
    #[error("looking up {name} ({kind}): {source}")]
    Lookup {
        name: String,
        kind: &'static str,
        source: Box<NetError>,
    },
}

/// Builds the resolver: the system's configuration, or `servers` (UDP and TCP) when given.
pub(super) fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, DnsSdError> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| DnsSdError::Resolver(Box::new(e)))?
    } else {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder.options_mut().timeout = Duration::from_secs(5);
    builder
        .build()
        .map_err(|e| DnsSdError::Resolver(Box::new(e)))
}

pub(super) struct DnsSd {
    cfg: DnsSdConfig,
    resolver: TokioResolver,
    /// The last group of each name that resolved, kept while its lookups fail.
    groups: BTreeMap<String, TargetGroup>,
}

impl DnsSd {
    pub(super) fn new(cfg: &DnsSdConfig, servers: &[SocketAddr]) -> Result<DnsSd, DnsSdError> {
        Ok(DnsSd {
            cfg: cfg.clone(),
            resolver: resolver(servers)?,
            groups: BTreeMap::new(),
        })
    }

    async fn lookup(&self, name: &str) -> Result<TargetGroup, DnsSdError> {
        let kind = self.cfg.record_type;
        let rtype = match kind {
            DnsRecordType::Srv => RecordType::SRV,
            DnsRecordType::A => RecordType::A,
            DnsRecordType::Aaaa => RecordType::AAAA,
            DnsRecordType::Mx => RecordType::MX,
            DnsRecordType::Ns => RecordType::NS,
        };
        let answers = match self.resolver.lookup(name, rtype).await {
            Ok(lookup) => lookup.answers().to_vec(),
            // NXDOMAIN or no such records: the name has no targets now.
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(source) => {
                return Err(DnsSdError::Lookup {
                    name: name.to_string(),
                    kind: kind.as_str(),
                    source: Box::new(source),
                });
            }
        };
        let port = self.cfg.port;
        let host_port = |host: &str, port: u16| match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let mut targets = Vec::with_capacity(answers.len());
        for record in &answers {
            let mut labels = vec![(NAME_LABEL, name.to_string())];
            let address = match &record.data {
                RData::SRV(srv) => {
                    let target = srv.target.to_utf8();
                    labels.push((SRV_TARGET_LABEL, target.clone()));
                    labels.push((SRV_PORT_LABEL, srv.port.to_string()));
                    host_port(target.trim_end_matches('.'), srv.port)
                }
                RData::MX(mx) => {
                    let target = mx.exchange.to_utf8();
                    labels.push((MX_TARGET_LABEL, target.clone()));
                    host_port(target.trim_end_matches('.'), port)
                }
                RData::NS(ns) => {
                    let target = ns.0.to_utf8();
                    labels.push((NS_TARGET_LABEL, target.clone()));
                    host_port(target.trim_end_matches('.'), port)
                }
                RData::A(a) => host_port(&a.0.to_string(), port),
                RData::AAAA(aaaa) => host_port(&aaaa.0.to_string(), port),
                // A CNAME comes with the records of what it points at; skip it itself.
                RData::CNAME(_) => continue,
                other => {
                    tracing::warn!(%name, record = ?other, "dns_sd: ignoring a record of another type");
                    continue;
                }
            };
            labels.push((ADDRESS, address));
            targets.push(Labels::from_pairs(labels));
        }
        Ok(TargetGroup {
            targets,
            labels: Labels::empty(),
            source: name.to_string(),
        })
    }
}

impl Refresh for DnsSd {
    type Error = DnsSdError;
    const MECHANISM: &'static str = "dns";

    async fn refresh(&mut self) -> Result<Vec<TargetGroup>, DnsSdError> {
        // Prometheus asks the servers every time; so do we.
        self.resolver.clear_cache();
        let names = self.cfg.names.clone();
        let this: &DnsSd = self;
        let results = futures::future::join_all(
            names
                .iter()
                .map(|n| async move { (n, this.lookup(n).await) }),
        )
        .await;
        let mut first_error = None;
        let mut any_ok = false;
        for (name, result) in results {
            match result {
                Ok(group) => {
                    any_ok = true;
                    self.groups.insert(name.clone(), group);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dns_sd: lookup failed; keeping the name's previous targets");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !any_ok => Err(e),
            _ => Ok(self.groups.values().cloned().collect()),
        }
    }
}
