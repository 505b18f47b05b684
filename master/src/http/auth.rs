//! Bearer tokens on the HTTP API.
//!
//! - Mutating endpoints (`PUT /api/v1/config`, `POST /-/reload`) need the admin token
//!   (`--web.admin-token-file`). Without that flag they are disabled (403), as Prometheus keeps
//!   `/-/reload` off unless `--web.enable-lifecycle`: a master reachable by a whole cluster must
//!   not take a new config from anyone who can reach it. SIGHUP still reloads.
//! - Read endpoints (`/api/v1/*` GETs) are open unless `--web.read-token-file` is set; then they
//!   need the read token or the admin token. The UI's static files, `/metrics` and the probes
//!   stay open: they carry no target or config data, and kubelets and Prometheus scrape them.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::tls::{constant_time_eq, read_token};

/// `promshard master` flags for HTTP auth.
#[derive(Clone, Debug, Default)]
pub struct WebAuthFiles {
    pub admin_token_file: Option<PathBuf>,
    pub read_token_file: Option<PathBuf>,
}

/// The tokens, read once at startup.
#[derive(Clone, Debug, Default)]
pub struct WebAuth {
    admin: Option<String>,
    read: Option<String>,
}

impl WebAuth {
    pub fn load(files: &WebAuthFiles) -> anyhow::Result<WebAuth> {
        Ok(WebAuth {
            admin: files
                .admin_token_file
                .as_ref()
                .map(read_token)
                .transpose()?,
            read: files.read_token_file.as_ref().map(read_token).transpose()?,
        })
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin.is_some()
    }

    pub fn read_open(&self) -> bool {
        self.read.is_none()
    }

    fn check(want: Option<&str>, headers: &HeaderMap) -> bool {
        let Some(want) = want else { return false };
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        constant_time_eq(got.trim().as_bytes(), want.as_bytes())
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut resp = super::error(StatusCode::UNAUTHORIZED, "unauthorized", msg);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"promshard\""),
    );
    resp
}

/// Middleware for mutating endpoints.
pub async fn require_admin(State(auth): State<Arc<WebAuth>>, req: Request, next: Next) -> Response {
    if !auth.admin_enabled() {
        return super::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "changing the configuration over HTTP is disabled: start the master with \
             --web.admin-token-file",
        );
    }
    if !WebAuth::check(auth.admin.as_deref(), req.headers()) {
        return unauthorized("this endpoint needs the admin bearer token");
    }
    next.run(req).await
}

/// Middleware for read endpoints.
pub async fn require_read(State(auth): State<Arc<WebAuth>>, req: Request, next: Next) -> Response {
    if auth.read_open()
        || WebAuth::check(auth.read.as_deref(), req.headers())
        || WebAuth::check(auth.admin.as_deref(), req.headers())
    {
        return next.run(req).await;
    }
    unauthorized("this endpoint needs the read (or admin) bearer token").into_response()
}
