//! The service discoveries beyond Kubernetes, files and static targets: `http_sd_configs`,
//! `dns_sd_configs` and `consul_sd_configs`, with Prometheus's defaults and load-time rules
//! (`discovery/http/http.go`, `discovery/dns/dns.go`, `discovery/consul/consul.go`). They run in
//! the master only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::At;
use super::ConfigError;
use crate::duration::PromDuration;
use crate::http_config::inline_http_client_config;

fn secs(n: u64) -> PromDuration {
    PromDuration::from_secs(n)
}

fn default_60s() -> PromDuration {
    secs(60)
}

fn default_30s() -> PromDuration {
    secs(30)
}

inline_http_client_config! {
    /// `http_sd_configs[]`: GET `url` every `refresh_interval`; the answer is a JSON list of
    /// target groups (`[{"targets": [...], "labels": {...}}]`).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpSdConfig {
        #[serde(default, deserialize_with = "crate::yaml::string")]
        pub url: String,
        #[serde(default = "default_60s")]
        pub refresh_interval: PromDuration,
    }
}

impl HttpSdConfig {
    pub(super) fn validate(&self, at: &At) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            return Err(at.key("url").err("URL is missing"));
        }
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Err(at.key("url").err("URL scheme must be 'http' or 'https'"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(at.key("url").err("URL scheme must be 'http' or 'https'"));
        }
        if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
            return Err(at.key("url").err("host is missing in URL"));
        }
        if self.refresh_interval.0.is_zero() {
            return Err(at
                .key("refresh_interval")
                .err("refresh_interval must be greater than 0"));
        }
        self.http_client_config()
            .validate()
            .map_err(|e| at.key(&e.field).err(e.message))
    }
}

/// A DNS record type `dns_sd_configs` can query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DnsRecordType {
    /// Targets are the SRV records' targets and ports.
    #[default]
    Srv,
    A,
    Aaaa,
    /// Targets are the mail exchangers, with the configured port.
    Mx,
    /// Targets are the name servers, with the configured port.
    Ns,
}

impl DnsRecordType {
    pub fn as_str(&self) -> &'static str {
        match self {
            DnsRecordType::Srv => "SRV",
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
        }
    }
}

impl TryFrom<String> for DnsRecordType {
    type Error = String;
    /// Any letter case, as Prometheus upper-cases the type.
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "SRV" => Ok(DnsRecordType::Srv),
            "A" => Ok(DnsRecordType::A),
            "AAAA" => Ok(DnsRecordType::Aaaa),
            "MX" => Ok(DnsRecordType::Mx),
            "NS" => Ok(DnsRecordType::Ns),
            _ => Err(format!("invalid DNS-SD records type {s}")),
        }
    }
}

impl From<DnsRecordType> for String {
    fn from(t: DnsRecordType) -> String {
        t.as_str().to_string()
    }
}

/// `dns_sd_configs[]`: resolve `names` every `refresh_interval` with the system resolver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    #[serde(default, deserialize_with = "crate::yaml::string_vec")]
    pub names: Vec<String>,
    #[serde(default = "default_30s")]
    pub refresh_interval: PromDuration,
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// The port of A, AAAA, MX and NS targets (SRV records carry their own).
    #[serde(default)]
    pub port: u16,
}

impl DnsSdConfig {
    pub(super) fn validate(&self, at: &At) -> Result<(), ConfigError> {
        if self.names.is_empty() {
            return Err(at
                .key("names")
                .err("DNS-SD config must contain at least one SRV record name"));
        }
        if self.record_type != DnsRecordType::Srv && self.port == 0 {
            return Err(at
                .key("port")
                .err("a port is required in DNS-SD configs for all record types except SRV"));
        }
        if self.refresh_interval.0.is_zero() {
            return Err(at
                .key("refresh_interval")
                .err("refresh_interval must be greater than 0"));
        }
        Ok(())
    }
}

fn default_consul_server() -> String {
    "localhost:8500".into()
}

fn default_tag_separator() -> String {
    ",".into()
}

fn default_consul_scheme() -> String {
    "http".into()
}

inline_http_client_config! {
    /// `consul_sd_configs[]`: the services of a Consul catalog (`/v1/catalog/services`, then
    /// `/v1/health/service/<name>` per service), refreshed with Consul's blocking queries.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ConsulSdConfig {
        /// `host:port` of the Consul agent or server.
        #[serde(default = "default_consul_server", deserialize_with = "crate::yaml::string")]
        pub server: String,
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub path_prefix: String,
        /// ACL token (`X-Consul-Token`); a secret.
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub token: String,
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub datacenter: String,
        #[serde(default = "default_tag_separator", deserialize_with = "crate::yaml::string")]
        pub tag_separator: String,
        #[serde(default = "default_consul_scheme", deserialize_with = "crate::yaml::string")]
        pub scheme: String,
        /// Deprecated basic auth of Prometheus (use `basic_auth`).
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub username: String,
        #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::yaml::string")]
        pub password: String,
        /// Let any Consul server answer (`?stale`), not only the leader.
        #[serde(default = "crate::yaml::default_true")]
        pub allow_stale: bool,
        /// How long a blocking query waits for a change before it is repeated.
        #[serde(default = "default_30s")]
        pub refresh_interval: PromDuration,
        /// Services to watch; empty: all.
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::string_vec")]
        pub services: Vec<String>,
        /// Only service instances with all of these tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::yaml::string_vec")]
        pub tags: Vec<String>,
        /// Only nodes with these metadata values.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "crate::yaml::string_map")]
        pub node_meta: BTreeMap<String, String>,
    }
}

impl ConsulSdConfig {
    pub(super) fn validate(&self, at: &At) -> Result<(), ConfigError> {
        if self.server.trim().is_empty() {
            return Err(at
                .key("server")
                .err("consul SD configuration requires a server address"));
        }
        if (!self.username.is_empty() || !self.password.is_empty()) && self.basic_auth.is_some() {
            return Err(at.err(
                "at most one of consul SD configuration username and password and basic auth can be configured",
            ));
        }
        if !self.token.is_empty() && (self.authorization.is_some() || self.oauth2.is_some()) {
            return Err(at.err(
                "at most one of consul SD token, authorization, or oauth2 can be configured",
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(at
                .key("scheme")
                .err(format!("scheme {:?} must be http or https", self.scheme)));
        }
        if self.refresh_interval.0.is_zero() {
            return Err(at
                .key("refresh_interval")
                .err("refresh_interval must be greater than 0"));
        }
        self.http_client_config()
            .validate()
            .map_err(|e| at.key(&e.field).err(e.message))
    }

    /// The HTTP client settings with the deprecated `username`/`password` folded into
    /// `basic_auth`, as Prometheus does.
    pub fn effective_http_client_config(&self) -> crate::http_config::HttpClientConfig {
        let mut http = self.http_client_config();
        if http.basic_auth.is_none() && (!self.username.is_empty() || !self.password.is_empty()) {
            http.basic_auth = Some(crate::http_config::BasicAuth {
                username: self.username.clone(),
                password: self.password.clone(),
                ..Default::default()
            });
        }
        http
    }
}
