#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian machine, then runs every
# check and test. `.ci/run` calls exactly this.
#
#   ./scripts/test.sh            # everything
#   SKIP_INSTALL=1 ./scripts/test.sh   # skip the apt step (already installed)
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental state, and it costs disk (it is what filled the CI
# machine's disk next to the test binaries).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -z "${SKIP_INSTALL:-}" ]; then
  need=()
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
  # The web UI test loads the master's page in headless Chromium (operator_ui.rs).
  command -v chromium >/dev/null || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]} (Debian packages)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # The Debian package starts a system Prometheus on :9090 and node exporter on :9100; tests
  # use their own ephemeral ports, but stop the services so nothing else competes for CPU.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    as_root systemctl stop prometheus prometheus-node-exporter || true
  fi
fi

echo "==> prometheus: $(prometheus --version 2>&1 | head -1)"
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo build (the binary the multi-process tests launch)"
cargo build --workspace --bins
echo "==> helm chart: lint, render, Kubernetes schemas, assertions, promshard check config"
./scripts/test-helm.sh
echo "==> cargo test"
cargo test --workspace --no-fail-fast
