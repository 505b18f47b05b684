#!/usr/bin/env bash
# Tests of the Helm chart (charts/promshard), run by scripts/test.sh after the cargo build.
#
#   ./scripts/test-helm.sh            # installs helm + the Python test deps (.tools/), runs all
#   ./scripts/test-helm.sh -k rbac    # extra arguments go to pytest
#
# What runs: `helm lint --strict` and `helm template` for the default values and every
# charts/promshard/ci/*.yaml; strict validation of every rendered object against the Kubernetes
# OpenAPI schemas bundled in PyPI's kubernetes-validate (offline; 1.25 and the newest), the
# ServiceMonitor/PrometheusRule against the prometheus-operator CRD models; assertions on the
# rendered objects (tests/helm/test_chart.py); and the rendered prometheus.yml through
# `promshard check config`. promtool (Debian's prometheus package) checks the alert rules when
# present.
#
# Environment: PROMSHARD_BIN (default target/debug/promshard, built if missing or older than
# the sources), PROMTOOL, SKIP_INSTALL=1 (use what .tools/ already has).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/venv
py="$venv/bin/python"
# Pinned: the schemas and CRD models are part of what the tests assert.
pydeps=(pytest==9.2.0 pyyaml==6.0.3 kubernetes-validate==1.37.0
        cloudcoil-models-prometheus-operator==0.80.1.0)

echo "==> helm"
HELM="$(./scripts/install-helm.sh)"
export HELM
"$HELM" version --short

if [ -z "${SKIP_INSTALL:-}" ] || [ ! -x "$py" ]; then
  if [ ! -x "$py" ]; then
    echo "==> python venv for the chart tests ($venv)"
    python3 -m venv "$venv"
  fi
  if ! "$py" - "${pydeps[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PY
  then
    echo "==> pip install ${pydeps[*]}"
    "$py" -m pip install --quiet --disable-pip-version-check "${pydeps[@]}"
  fi
fi

bin="${PROMSHARD_BIN:-target/debug/promshard}"
if [ -z "${PROMSHARD_BIN:-}" ]; then
  # A stale binary would judge the config by yesterday's rules: rebuild if any source is newer.
  if [ ! -x "$bin" ] || [ -n "$(find Cargo.toml Cargo.lock src model master worker proto \
      -newer "$bin" -type f \( -name '*.rs' -o -name '*.toml' -o -name '*.proto' -o -name Cargo.lock \) \
      -print -quit 2>/dev/null)" ]; then
    echo "==> cargo build --bin promshard (for promshard check config)"
    cargo build --quiet --bin promshard
  fi
fi
PROMSHARD_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export PROMSHARD_BIN
"$PROMSHARD_BIN" --version

echo "==> chart tests (tests/helm)"
# No plugins from the venv (cloudcoil ships one that needs extra packages), no caches in the tree.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest tests/helm -q -p no:cacheprovider "$@"
