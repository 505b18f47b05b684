//! Compiles the `.proto` files with protox (pure Rust), so building needs no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/promshard/v1/control.proto",
        "proto/prometheus/types.proto",
        "proto/prometheus/remote.proto",
        "proto/prometheus/write_v2.proto",
        "proto/io/prometheus/client/metrics.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
