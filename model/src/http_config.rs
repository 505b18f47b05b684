//! Prometheus's common HTTP client settings (`common/config.HTTPClientConfig`) that promshard
//! supports, shared by `scrape_configs` and `remote_write`: `basic_auth`, `authorization`,
//! `bearer_token(_file)` and `tls_config`.
//!
//! Secrets are plain strings here because the worker needs the real values (the master ships
//! the config to workers); the master's API masks them as `<secret>` when it *displays* a
//! config, as Prometheus does. `*_file` paths are read by the worker when it builds a client (model does no I/O), so
//! a Kubernetes secret mounted on the worker pods works as it does for Prometheus.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password_file: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme; Prometheus's default is `Bearer`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            kind: "Bearer".into(),
            credentials: String::new(),
            credentials_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM text of the CA, or `ca_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// `TLS12` or `TLS13` (Prometheus also accepts TLS10/11, which rustls does not speak).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_version: String,
}

/// The auth and TLS part of a scrape or remote-write config, gathered for validation and for
/// building a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: Option<TlsConfig>,
}

impl HttpClientConfig {
    /// Prometheus's `HTTPClientConfig.Validate` rules, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        let bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if let Some(b) = &self.basic_auth {
            if bearer {
                return Err("at most one of basic_auth, bearer_token & bearer_token_file must be configured".into());
            }
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return Err(
                    "at most one of basic_auth username & username_file must be configured".into(),
                );
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return Err(
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return Err("at most one of authorization credentials & credentials_file must be configured".into());
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
        }
        if let Some(t) = &self.tls_config {
            if !t.ca.is_empty() && !t.ca_file.is_empty() {
                return Err("at most one of ca and ca_file must be configured".into());
            }
            if !t.cert.is_empty() && !t.cert_file.is_empty() {
                return Err("at most one of cert and cert_file must be configured".into());
            }
            if !t.key.is_empty() && !t.key_file.is_empty() {
                return Err("at most one of key and key_file must be configured".into());
            }
            let has_cert = !t.cert.is_empty() || !t.cert_file.is_empty();
            let has_key = !t.key.is_empty() || !t.key_file.is_empty();
            if has_cert != has_key {
                return Err("exactly one of key or key_file must be configured when a client certificate is configured".into());
            }
            if !matches!(t.min_version.as_str(), "" | "TLS12" | "TLS13") {
                return Err(format!(
                    "unsupported min_version {:?} (TLS12 or TLS13)",
                    t.min_version
                ));
            }
        }
        Ok(())
    }
}
