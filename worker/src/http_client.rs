//! The scrape and remote-write HTTP client lives in `promshard-httpclient`, shared with the
//! master's HTTP-based service discoveries.

pub use promshard_httpclient::{ClientOptions, HttpClient};
