//! Prometheus's common HTTP client settings (`prometheus/common` `config/http_config.go`,
//! `HTTPClientConfig`), inlined into scrape jobs, remote-write endpoints and the HTTP-based
//! service discoveries: `basic_auth`, `authorization`, `oauth2`, `bearer_token(_file)`,
//! `tls_config`, `follow_redirects`, `enable_http2`, the proxy settings and `http_headers`.
//!
//! Go inlines one struct (`yaml:",inline"`) into every section that talks HTTP. serde's
//! `flatten` cannot be combined with `deny_unknown_fields` and loses the path of errors inside
//! the flattened part, so [`inline_http_client_config!`] writes the same fields into each
//! struct instead; [`HttpClientConfig`] gathers them for validation and for building a client.
//!
//! Secrets are plain strings here because the worker needs the real values (the master ships
//! the config to workers); the master's API masks them as `<secret>` when it *displays* a
//! config, as Prometheus does. `*_file` paths are read by the worker when it builds a client (model does no I/O), so
//! a Kubernetes secret mounted on the worker pods works as it does for Prometheus.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub username: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub username_file: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub password: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub password_file: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme; Prometheus's default is `Bearer`.
    #[serde(rename = "type", deserialize_with = "crate::yaml::string")]
    pub kind: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub credentials: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
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
    /// `TLS12` or `TLS13`; empty: the newest rustls speaks.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_version: String,
}

/// `oauth2`: a token from `token_url` with the client-credentials grant, sent as
/// `Authorization: Bearer` (Go's `golang.org/x/oauth2/clientcredentials`). The JWT-bearer grant
/// of newer Prometheus versions is refused by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2 {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub client_id: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub client_secret: String,
    /// Read by the worker whenever it asks for a token.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub client_secret_file: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "crate::yaml::string"
    )]
    pub token_url: String,
    /// Extra form parameters of the token request.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::yaml::string_map"
    )]
    pub endpoint_params: BTreeMap<String, String>,
    /// `client_credentials` (the default) only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub grant_type: String,
    /// TLS towards the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Proxy towards the token endpoint (Prometheus's inlined `ProxyConfig`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
}

impl OAuth2 {
    pub fn proxy(&self) -> ProxyConfig {
        ProxyConfig {
            proxy_url: self.proxy_url.clone(),
            no_proxy: self.no_proxy.clone(),
            proxy_from_environment: self.proxy_from_environment,
            proxy_connect_header: self.proxy_connect_header.clone(),
        }
    }
}

/// One `http_headers` entry: values sent as they are, secrets (masked when displayed), and files
/// read by the worker at each request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpHeader {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::yaml::string_vec"
    )]
    pub values: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::yaml::string_vec"
    )]
    pub secrets: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::yaml::string_vec"
    )]
    pub files: Vec<String>,
}

/// Prometheus's `ProxyConfig`: one proxy URL (with `no_proxy` exceptions) or the standard
/// `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` environment variables, and headers for `CONNECT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    pub proxy_url: String,
    /// Comma-separated hosts, domains, IPs and CIDRs that bypass `proxy_url`.
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    /// Sent on the proxy `CONNECT` of HTTPS requests (secrets, as in Prometheus).
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
}

impl ProxyConfig {
    pub fn is_set(&self) -> bool {
        !self.proxy_url.is_empty() || self.proxy_from_environment
    }

    /// Prometheus's `ProxyConfig.Validate`, with its messages.
    fn validate(&self) -> Result<(), InvalidSetting> {
        let url_set = !self.proxy_url.is_empty();
        if !self.proxy_connect_header.is_empty() && !self.proxy_from_environment && !url_set {
            return Err(InvalidSetting::new(
                "proxy_connect_header",
                "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
            ));
        }
        if self.proxy_from_environment && url_set {
            return Err(InvalidSetting::new(
                "proxy_url",
                "if proxy_from_environment is configured, proxy_url must not be configured",
            ));
        }
        if self.proxy_from_environment && !self.no_proxy.is_empty() {
            return Err(InvalidSetting::new(
                "no_proxy",
                "if proxy_from_environment is configured, no_proxy must not be configured",
            ));
        }
        if !url_set && !self.no_proxy.is_empty() {
            return Err(InvalidSetting::new(
                "no_proxy",
                "if no_proxy is configured, proxy_url must also be configured",
            ));
        }
        if url_set {
            let scheme = self.proxy_url.split_once("://").map(|(s, _)| s);
            match scheme {
                Some("http" | "https") => {}
                Some(s) if !s.is_empty() => {
                    return Err(InvalidSetting::new(
                        "proxy_url",
                        format!(
                            "{s}:// proxies are not implemented by promshard (http and https only)"
                        ),
                    ));
                }
                _ => {
                    return Err(InvalidSetting::new(
                        "proxy_url",
                        format!("{:?} is not a proxy URL", self.proxy_url),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A setting that breaks one of Prometheus's rules. `field` says where, relative to the section
/// holding the settings (`tls_config.min_version`; empty: the section as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSetting {
    pub field: String,
    pub message: String,
}

impl InvalidSetting {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidSetting {
            field: field.into(),
            message: message.into(),
        }
    }

    fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Headers that `http_headers` may not set (`prometheus/common` `config/headers.go`), compared
/// case-insensitively.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-prometheus-scrape-timeout-seconds",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The HTTP client part of a scrape job, remote-write endpoint or service discovery, gathered
/// for validation and for building a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: Option<TlsConfig>,
    /// Follow up to 10 redirects (Prometheus's default: true).
    pub follow_redirects: bool,
    /// Offer HTTP/2 over TLS (ALPN); Prometheus's default: true.
    pub enable_http2: bool,
    pub proxy: ProxyConfig,
    pub http_headers: BTreeMap<String, HttpHeader>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: String::new(),
            bearer_token_file: String::new(),
            tls_config: None,
            follow_redirects: true,
            enable_http2: true,
            proxy: ProxyConfig::default(),
            http_headers: BTreeMap::new(),
        }
    }
}

impl HttpClientConfig {
    /// True when nothing differs from Prometheus's defaults (`DefaultHTTPClientConfig`).
    pub fn is_default(&self) -> bool {
        *self == HttpClientConfig::default()
    }

    /// Prometheus's `HTTPClientConfig.Validate` rules, with its messages, plus what promshard
    /// cannot do (TLS below 1.2, SOCKS proxies, the JWT-bearer OAuth2 grant), said as such.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err(InvalidSetting::new(
                "",
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && bearer {
            return Err(InvalidSetting::new(
                "",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ));
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return Err(InvalidSetting::new(
                    "basic_auth",
                    "at most one of basic_auth username & username_file must be configured",
                ));
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return Err(InvalidSetting::new(
                    "basic_auth",
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err(InvalidSetting::new(
                    "authorization",
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return Err(InvalidSetting::new(
                    "authorization",
                    "at most one of authorization credentials & credentials_file must be configured",
                ));
            }
            if a.kind.trim().eq_ignore_ascii_case("basic") {
                return Err(InvalidSetting::new(
                    "authorization.type",
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                ));
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(InvalidSetting::new(
                    "",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(InvalidSetting::new(
                    "",
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            if o.client_id.is_empty() {
                return Err(InvalidSetting::new(
                    "oauth2.client_id",
                    "oauth2 client_id must be configured",
                ));
            }
            if o.token_url.is_empty() {
                return Err(InvalidSetting::new(
                    "oauth2.token_url",
                    "oauth2 token_url must be configured",
                ));
            }
            match o.grant_type.as_str() {
                "" | "client_credentials" => {}
                other => {
                    return Err(InvalidSetting::new(
                        "oauth2.grant_type",
                        format!(
                            "grant type {other:?} is not implemented by promshard (client_credentials only)"
                        ),
                    ));
                }
            }
            if !o.client_secret.is_empty() && !o.client_secret_file.is_empty() {
                return Err(InvalidSetting::new(
                    "oauth2",
                    "at most one of oauth2 client_secret & client_secret_file must be configured using grant-type=client_credentials",
                ));
            }
            if let Some(t) = &o.tls_config {
                validate_tls(t).map_err(|e| e.under("oauth2.tls_config"))?;
            }
            o.proxy().validate().map_err(|e| e.under("oauth2"))?;
        }
        if let Some(t) = &self.tls_config {
            validate_tls(t).map_err(|e| e.under("tls_config"))?;
        }
        self.proxy.validate()?;
        for name in self.http_headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(InvalidSetting::new(
                    format!("http_headers.{name}"),
                    format!("setting header {name:?} is not allowed"),
                ));
            }
        }
        Ok(())
    }
}

/// A TLS version as Prometheus spells it, ordered; `None` for an unknown name.
fn tls_version(name: &str) -> Option<u8> {
    match name {
        "TLS10" => Some(10),
        "TLS11" => Some(11),
        "TLS12" => Some(12),
        "TLS13" => Some(13),
        _ => None,
    }
}

fn validate_tls(t: &TlsConfig) -> Result<(), InvalidSetting> {
    if !t.ca.is_empty() && !t.ca_file.is_empty() {
        return Err(InvalidSetting::new(
            "",
            "at most one of ca and ca_file must be configured",
        ));
    }
    if !t.cert.is_empty() && !t.cert_file.is_empty() {
        return Err(InvalidSetting::new(
            "",
            "at most one of cert and cert_file must be configured",
        ));
    }
    if !t.key.is_empty() && !t.key_file.is_empty() {
        return Err(InvalidSetting::new(
            "",
            "at most one of key and key_file must be configured",
        ));
    }
    let has_cert = !t.cert.is_empty() || !t.cert_file.is_empty();
    let has_key = !t.key.is_empty() || !t.key_file.is_empty();
    if has_cert != has_key {
        return Err(InvalidSetting::new(
            "",
            "exactly one of key or key_file must be configured when a client certificate is configured",
        ));
    }
    let mut versions = [None, None];
    for (i, (field, v)) in [
        ("min_version", &t.min_version),
        ("max_version", &t.max_version),
    ]
    .into_iter()
    .enumerate()
    {
        if v.is_empty() {
            continue;
        }
        match tls_version(v) {
            None => {
                return Err(InvalidSetting::new(
                    field,
                    format!("unknown TLS version: {v}"),
                ));
            }
            // rustls speaks TLS 1.2 and 1.3 only.
            Some(10 | 11) => {
                return Err(InvalidSetting::new(
                    field,
                    format!("{v} is not implemented by promshard (TLS12 and TLS13 only)"),
                ));
            }
            Some(n) => versions[i] = Some(n),
        }
    }
    if let [Some(min), Some(max)] = versions
        && max < min
    {
        return Err(InvalidSetting::new(
            "max_version",
            "tls_config.max_version must be greater than or equal to tls_config.min_version",
        ));
    }
    Ok(())
}

/// Declares a config struct with Prometheus's HTTP client settings inlined after its own
/// fields (see the module docs), and its `http_client_config()`. The struct's own fields must
/// end with a comma.
macro_rules! inline_http_client_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($body:tt)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($body)*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            $vis basic_auth: Option<$crate::http_config::BasicAuth>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            $vis authorization: Option<$crate::http_config::Authorization>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            $vis oauth2: Option<$crate::http_config::OAuth2>,
            #[serde(
                default,
                skip_serializing_if = "String::is_empty",
                deserialize_with = "crate::yaml::string"
            )]
            $vis bearer_token: String,
            /// Read by the worker at each request (a path on the worker, as for Prometheus).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            $vis bearer_token_file: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            $vis tls_config: Option<$crate::http_config::TlsConfig>,
            #[serde(
                default = "crate::yaml::default_true",
                skip_serializing_if = "crate::yaml::is_true"
            )]
            $vis follow_redirects: bool,
            #[serde(
                default = "crate::yaml::default_true",
                skip_serializing_if = "crate::yaml::is_true"
            )]
            $vis enable_http2: bool,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            $vis proxy_url: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            $vis no_proxy: String,
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            $vis proxy_from_environment: bool,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            $vis proxy_connect_header: std::collections::BTreeMap<String, Vec<String>>,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            $vis http_headers:
                std::collections::BTreeMap<String, $crate::http_config::HttpHeader>,
        }

        impl $name {
            /// The inlined HTTP client settings, for validation and for building a client.
            $vis fn http_client_config(&self) -> $crate::http_config::HttpClientConfig {
                $crate::http_config::HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    oauth2: self.oauth2.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    tls_config: self.tls_config.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    proxy: $crate::http_config::ProxyConfig {
                        proxy_url: self.proxy_url.clone(),
                        no_proxy: self.no_proxy.clone(),
                        proxy_from_environment: self.proxy_from_environment,
                        proxy_connect_header: self.proxy_connect_header.clone(),
                    },
                    http_headers: self.http_headers.clone(),
                }
            }
        }
    };
}
pub(crate) use inline_http_client_config;

/// The names of the inlined fields, for telling "not for this section" from "unknown".
pub const HTTP_CLIENT_FIELDS: &[&str] = &[
    "basic_auth",
    "authorization",
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "follow_redirects",
    "enable_http2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &HttpClientConfig) -> Result<(), (String, String)> {
        c.validate().map_err(|e| (e.field, e.message))
    }

    #[test]
    fn prometheus_rules_with_the_field_named() {
        let base = HttpClientConfig::default();
        assert!(base.is_default());
        assert_eq!(check(&base), Ok(()));

        let c = HttpClientConfig {
            oauth2: Some(OAuth2 {
                token_url: "http://t".into(),
                ..Default::default()
            }),
            ..base.clone()
        };
        assert_eq!(
            check(&c),
            Err((
                "oauth2.client_id".into(),
                "oauth2 client_id must be configured".into()
            ))
        );

        let c = HttpClientConfig {
            oauth2: Some(OAuth2 {
                client_id: "a".into(),
                token_url: "http://t".into(),
                ..Default::default()
            }),
            bearer_token: "x".into(),
            ..base.clone()
        };
        assert!(
            check(&c)
                .unwrap_err()
                .1
                .contains("at most one of basic_auth, oauth2")
        );

        let c = HttpClientConfig {
            proxy: ProxyConfig {
                no_proxy: "a.example".into(),
                ..Default::default()
            },
            ..base.clone()
        };
        assert_eq!(
            check(&c),
            Err((
                "no_proxy".into(),
                "if no_proxy is configured, proxy_url must also be configured".into()
            ))
        );
        let c = HttpClientConfig {
            proxy: ProxyConfig {
                proxy_url: "socks5://p:1080".into(),
                ..Default::default()
            },
            ..base.clone()
        };
        assert!(
            check(&c)
                .unwrap_err()
                .1
                .contains("not implemented by promshard")
        );

        let mut headers = BTreeMap::new();
        headers.insert("User-Agent".to_string(), HttpHeader::default());
        let c = HttpClientConfig {
            http_headers: headers,
            ..base.clone()
        };
        assert_eq!(
            check(&c),
            Err((
                "http_headers.User-Agent".into(),
                r#"setting header "User-Agent" is not allowed"#.into()
            ))
        );

        let tls = |min: &str, max: &str| HttpClientConfig {
            tls_config: Some(TlsConfig {
                min_version: min.into(),
                max_version: max.into(),
                ..Default::default()
            }),
            ..base.clone()
        };
        assert_eq!(check(&tls("TLS12", "TLS13")), Ok(()));
        assert_eq!(
            check(&tls("TLS13", "TLS12")).unwrap_err().0,
            "tls_config.max_version"
        );
        let (field, msg) = check(&tls("TLS10", "")).unwrap_err();
        assert_eq!(field, "tls_config.min_version");
        assert!(msg.contains("not implemented by promshard"), "{msg}");
        let (field, msg) = check(&tls("", "TLS14")).unwrap_err();
        assert_eq!(
            (field.as_str(), msg.as_str()),
            ("tls_config.max_version", "unknown TLS version: TLS14")
        );
    }
}
