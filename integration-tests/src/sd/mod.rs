//! Doubles of the servers the master's HTTP, DNS and Consul service discoveries talk to, each
//! recording what it was asked so tests can check the requests as well as the targets.

pub mod consul;
pub mod dns;
pub mod http;

pub use consul::{ConsulDouble, ConsulInstance};
pub use dns::DnsDouble;
pub use http::HttpSdDouble;

/// The query string of a URI as (key, value) pairs, in order (a key alone has an empty value).
fn query_pairs(uri: &hyper::Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
