//! The one HTTP client of promshard's outgoing requests: scrapes and remote write (worker),
//! HTTP and Consul service discovery and Kubernetes API servers given by URL (master). It
//! implements Prometheus's common client settings (`prometheus/common` `config/http_config.go`)
//! once, so every section of a prometheus.yml that takes them behaves the same.
//!
//! Tested where it is used, against real servers: the worker's scrape tests
//! (`worker/src/scrape/scraper_tests.rs`: TLS, credentials, OAuth2, proxies, headers, HTTP/2)
//! and the master's discovery tests.

mod client;
mod direct;
mod oauth2;

pub use client::{ClientOptions, HttpClient};
pub use direct::{DirectConnection, DirectError, DirectResponse};
