# syntax=docker/dockerfile:1
# The one promshard image: `promshard master`, `promshard worker`, `promshard check config`.
#
#   docker build -t promshard:0.1.0 .
#
# Sources are copied by name (no .dockerignore needed): target/ and local tooling stay out.

FROM rust:1.95 AS builder
WORKDIR /build
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY proto proto
COPY model model
COPY httpclient httpclient
COPY master master
COPY worker worker
COPY integration-tests integration-tests
COPY bench bench
COPY testdata testdata
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin promshard \
    && cp target/release/promshard /promshard

# glibc + libgcc + CA certificates, no shell; runs as uid/gid 65532 (the chart's default).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /promshard /usr/local/bin/promshard
USER 65532:65532
EXPOSE 9400 9401 9402
ENTRYPOINT ["/usr/local/bin/promshard"]
CMD ["--help"]
