//! The web UI: three static files compiled into the binary (`include_str!`), so running the UI
//! needs no build step, no Node and no files next to the binary. The page calls the same JSON
//! API as any client (`/api/v1/workers`, `/api/v1/targets`, `/api/v1/targets/explain`,
//! `/api/v1/status/config`), so the UI can never show something the API does not.
//!
//! The files are served without auth: they hold no data. With `--web.read-token-file`, the page
//! asks for the token and sends it as a bearer token (kept in the tab's `sessionStorage`).

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
}

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
