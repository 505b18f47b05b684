//! An `http_sd_configs` endpoint: serves whatever JSON (status, content type) the test sets,
//! and records each request's headers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::HeaderMap;

use crate::server::{Handler, Server, lock, response};

struct State {
    status: u16,
    content_type: String,
    body: String,
    requests: Vec<HeaderMap>,
}

pub struct HttpSdDouble {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl HttpSdDouble {
    /// Serves `[]` as `application/json` until told otherwise.
    pub async fn start() -> HttpSdDouble {
        let state = Arc::new(Mutex::new(State {
            status: 200,
            content_type: "application/json".into(),
            body: "[]".into(),
            requests: Vec::new(),
        }));
        let s = state.clone();
        let handler: Handler = Arc::new(move |request, _peer| {
            let s = s.clone();
            Box::pin(async move {
                let mut st = lock(&s);
                st.requests.push(request.headers().clone());
                response(st.status, &st.content_type, st.body.clone())
            })
        });
        let server = Server::bind(([127, 0, 0, 1], 0).into(), handler)
            .await
            .expect("binding the HTTP SD double on 127.0.0.1:0");
        HttpSdDouble { server, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The URL to put in `http_sd_configs`.
    pub fn url(&self) -> String {
        format!("http://{}/targets", self.addr())
    }

    /// The target groups to serve, e.g. `json!([{"targets": [...], "labels": {...}}])`.
    pub fn set_groups(&self, groups: serde_json::Value) {
        lock(&self.state).body = groups.to_string();
    }

    pub fn set_status(&self, status: u16) {
        lock(&self.state).status = status;
    }

    pub fn set_content_type(&self, content_type: &str) {
        lock(&self.state).content_type = content_type.into();
    }

    /// Every request's headers so far, oldest first.
    pub fn requests(&self) -> Vec<HeaderMap> {
        lock(&self.state).requests.clone()
    }
}
