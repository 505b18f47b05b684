//! The real expositions tests and benchmarks read (`cadvisor_110pods.prom`, `node_exporter.prom`,
//! `prometheus.prom`), shipped gzipped in the repository's `testdata/` so a fresh clone tests
//! green on its own. The benchmarks include this file by path.

use std::io::Read as _;
use std::path::Path;

/// The named fixture, inflated.
pub(crate) fn testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(format!("{name}.gz"));
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    body
}
