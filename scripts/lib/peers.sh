# shellcheck shell=bash
# Test peers that are programs of their own: the OIDC authorization server in tests/peers/oidc
# (npm oidc-provider, run with Node.js by the Rust tests themselves), the browser, and
# schemathesis (run against the API by crates/cli/tests/conformance).
# Sourced by scripts/test (after services.sh, whose svc_apt_install it uses when present).

PEERS_OIDC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/peers/oidc"

peers_log() { printf '%s\n' "$*" >&2; }
peers_die() { printf 'scripts/test: %s\n' "$*" >&2; exit 1; }

# Make sure `node` (20 or newer) and `npm` exist and the OIDC peer's npm packages are installed:
# installs Debian's nodejs and npm when they are missing, and runs `npm ci` when node_modules is
# missing or older than package-lock.json.
ensure_oidc_peer() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    peers_log "oidc peer: installing Node.js and npm (Debian packages nodejs npm) ..."
    if declare -F svc_apt_install >/dev/null; then
      svc_apt_install nodejs npm
    else
      command -v apt-get >/dev/null 2>&1 \
        || peers_die "Node.js 20+ and npm are needed for the OIDC test peer; install them"
      local sudo=()
      if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
      "${sudo[@]}" apt-get update -qq >&2 || peers_die "apt-get update failed"
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends nodejs npm >&2 \
        || peers_die "apt-get install nodejs npm failed"
    fi
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "${major:-0}" -lt 20 ]; then
    peers_die "the OIDC test peer (oidc-provider 9) needs Node.js 20 or newer; found $(node --version 2>/dev/null || echo none). Install a newer Node.js (e.g. from nodejs.org or NodeSource)"
  fi

  local marker="$PEERS_OIDC_DIR/node_modules/.package-lock.json"
  if [ ! -e "$marker" ] || [ "$PEERS_OIDC_DIR/package-lock.json" -nt "$marker" ]; then
    peers_log "oidc peer: npm ci --prefix tests/peers/oidc ..."
    npm ci --prefix "$PEERS_OIDC_DIR" --no-audit --no-fund --loglevel=error >&2 \
      || peers_die "npm ci in tests/peers/oidc failed"
  else
    peers_log "oidc peer: npm packages up to date (node $(node --version))"
  fi
}

# The browser of the web UI's browser test (crates/cli/tests/browser.rs): Debian's Chromium
# and its WebDriver, chromedriver, installed when missing.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return 0
  fi
  svc_apt_install chromium chromium-driver
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
    || peers_die "chromium and chromedriver are still missing after apt-get install"
}

# schemathesis (PyPI), the property-based API tester that crates/cli/tests/conformance runs
# against the OpenAPI document: installed with pip into its own virtual environment under
# ~/.cache/lockstep (Debian's python3-venv when venv is missing), reinstalled when the pinned
# version changes. Exports LOCKSTEP_TEST_SCHEMATHESIS, the program's path.
SCHEMATHESIS_VERSION="4.32.5"
ensure_schemathesis() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/lockstep/schemathesis-venv"
  local program="$venv/bin/schemathesis"
  if [ -x "$program" ] && "$program" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    export LOCKSTEP_TEST_SCHEMATHESIS="$program"
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    svc_apt_install python3
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    svc_apt_install python3-venv
  fi
  peers_log "schemathesis: installing $SCHEMATHESIS_VERSION into $venv ..."
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || peers_die "python3 -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
    || peers_die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
  "$program" --version >/dev/null 2>&1 || peers_die "schemathesis does not start after installing it"
  export LOCKSTEP_TEST_SCHEMATHESIS="$program"
}
