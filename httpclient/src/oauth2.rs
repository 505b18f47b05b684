//! `oauth2`: the client-credentials grant (RFC 6749 §4.4), as Go's
//! `golang.org/x/oauth2/clientcredentials` does it for Prometheus: a form POST to `token_url`
//! with `grant_type=client_credentials`, the `scopes` and `endpoint_params`, the client id and
//! secret in basic auth (each URL-encoded first). The token is cached and reused until 10 s
//! before it expires (Go's `expiryDelta`), and fetched again at once when
//! `client_secret_file` changes, as Prometheus's round tripper does.
//!
//! The `oauth2` crate (5.0) was not used: its reqwest integration is for reqwest 0.12 (a second
//! HTTP stack next to our 0.13), and it brings chrono, rand, sha2 and the authorization-code
//! flows for what is one form POST and a JSON answer on the client we already have.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use promshard_model::http_config::OAuth2;
use serde::Deserialize;

use crate::client::{TlsMaterial, rustls_config, secret, with_proxy};

/// Tokens are renewed this long before they expire, so none expires in flight.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);

pub(crate) struct TokenSource {
    cfg: OAuth2,
    /// The token endpoint's own client (its `tls_config` and proxy settings).
    client: reqwest::Client,
    /// The last token, and the client secret it was fetched with. An async mutex on purpose:
    /// concurrent requests wait for the one token request in flight instead of each sending
    /// their own.
    cached: tokio::sync::Mutex<Option<(Token, String)>>,
}

#[derive(Clone)]
struct Token {
    /// `Bearer <access_token>`.
    header: String,
    /// `None`: no `expires_in` in the answer, valid until the secret changes.
    expires_at: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    pub(crate) fn new(cfg: &OAuth2) -> anyhow::Result<TokenSource> {
        let material = TlsMaterial::load(cfg.tls_config.as_ref())?;
        let tls = rustls_config(cfg.tls_config.as_ref(), &material)?;
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(30));
        let client = with_proxy(builder, &cfg.proxy())?.build()?;
        Ok(TokenSource {
            cfg: cfg.clone(),
            client,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The `Authorization` value: a cached token while it is valid, else a fresh one.
    pub(crate) async fn authorization(&self) -> anyhow::Result<String> {
        let client_secret = secret(
            &self.cfg.client_secret,
            &self.cfg.client_secret_file,
            "oauth2 client secret",
        )?;
        let mut cached = self.cached.lock().await;
        if let Some((token, used_secret)) = cached.as_ref()
            && *used_secret == client_secret
            && token
                .expires_at
                .is_none_or(|at| Instant::now() + EXPIRY_DELTA < at)
        {
            return Ok(token.header.clone());
        }
        let token = self
            .fetch(&client_secret)
            .await
            .context("oauth2: cannot fetch token")?;
        let header = token.header.clone();
        *cached = Some((token, client_secret));
        Ok(header)
    }

    async fn fetch(&self, client_secret: &str) -> anyhow::Result<Token> {
        // Built before any await: the serializer is not Send.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !self.cfg.scopes.is_empty() {
                form.append_pair("scope", &self.cfg.scopes.join(" "));
            }
            for (k, v) in &self.cfg.endpoint_params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let escape = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let started = Instant::now();
        let resp = self
            .client
            .post(&self.cfg.token_url)
            .basic_auth(escape(&self.cfg.client_id), Some(escape(client_secret)))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!(
                "{} answered {status}: {}",
                self.cfg.token_url,
                String::from_utf8_lossy(&body).trim()
            );
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            anyhow!(
                "{} answered something else than a token: {e}",
                self.cfg.token_url
            )
        })?;
        if t.access_token.is_empty() {
            bail!("{} answered an empty access_token", self.cfg.token_url);
        }
        let kind = match t.token_type.as_str() {
            "" => "Bearer",
            k if k.eq_ignore_ascii_case("bearer") => "Bearer",
            k => k,
        };
        Ok(Token {
            header: format!("{kind} {}", t.access_token),
            expires_at: t
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| started + Duration::from_secs(s)),
        })
    }
}
