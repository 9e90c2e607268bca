# shellcheck shell=bash
# Test peers that are programs of their own: the OIDC authorization server in tests/peers/oidc
# (npm oidc-provider, run with Node.js by the Rust tests themselves), the SAML identity provider
# in tests/peers/saml (PyPI pysaml2 with Debian's xmlsec1, also run by the Rust tests), the
# browser, and schemathesis (run against the API by crates/cli/tests/conformance); and the
# system libraries the SAML crate links (ensure_saml_build_deps).
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

# ------------------------------------------------------------------ SAML

# The system libraries that crates/sso's SAML support (samael with xmlsec) builds and links
# against: libxmlsec1 and libxml2 (XML signatures), OpenSSL, pkg-config to find them and
# libclang for bindgen; and the xmlsec1 program the SAML test IdP signs with. Debian packages,
# installed only when one is missing (dpkg-query), before cargo runs.
SAML_BUILD_PACKAGES=(libclang-dev libxmlsec1-dev libxml2-dev libssl-dev pkg-config xmlsec1)
ensure_saml_build_deps() {
  local missing=() package
  if command -v dpkg-query >/dev/null 2>&1; then
    for package in "${SAML_BUILD_PACKAGES[@]}"; do
      if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
      fi
    done
  elif pkg-config --exists xmlsec1 libxml-2.0 openssl 2>/dev/null && command -v xmlsec1 >/dev/null 2>&1; then
    return 0
  else
    peers_die "SAML needs libxmlsec1, libxml2 and OpenSSL development files, libclang, pkg-config and xmlsec1 (Debian: apt-get install ${SAML_BUILD_PACKAGES[*]})"
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    svc_apt_install "${missing[@]}"
  fi
}

# The SAML test identity provider (tests/peers/saml/server.py): pysaml2 and its dependencies,
# pinned in tests/peers/saml/requirements.txt, installed with pip into their own virtual
# environment under ~/.cache/lockstep (reinstalled when that file changes); signatures come
# from Debian's xmlsec1 (ensure_saml_build_deps installs it). The Rust tests start one server
# per test (lockstep_sso::testing::SamlPeer). Exports LOCKSTEP_TEST_SAML_PYTHON.
PEERS_SAML_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/peers/saml"
ensure_saml_peer() {
  local venv="${XDG_CACHE_HOME:-$HOME/.cache}/lockstep/saml-peer-venv" started
  if ! command -v xmlsec1 >/dev/null 2>&1; then
    svc_apt_install xmlsec1
  fi
  if [ -x "$venv/bin/python" ] \
    && cmp -s "$venv/.lockstep-requirements.txt" "$PEERS_SAML_DIR/requirements.txt"; then
    export LOCKSTEP_TEST_SAML_PYTHON="$venv/bin/python"
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    svc_apt_install python3
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    svc_apt_install python3-venv
  fi
  started=$(date +%s)
  peers_log "saml peer: installing pysaml2 (tests/peers/saml/requirements.txt) into $venv ..."
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || peers_die "python3 -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$PEERS_SAML_DIR/requirements.txt" >&2 \
    || peers_die "pip install -r tests/peers/saml/requirements.txt failed"
  "$venv/bin/python" -W ignore -c 'import saml2.server' >&2 \
    || peers_die "pysaml2 does not import after installing it"
  cp "$PEERS_SAML_DIR/requirements.txt" "$venv/.lockstep-requirements.txt"
  peers_log "saml peer: installed in $(($(date +%s) - started)) s"
  export LOCKSTEP_TEST_SAML_PYTHON="$venv/bin/python"
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

# ------------------------------------------------------------------ Tryton

# A real Tryton ERP server (trytond 8.2 with the production module, PyPI) for the `tryton`
# connector's tests (crates/connectors/tests/connectors/tryton.rs).
#
# Once: a virtual environment under ~/.cache/lockstep/tryton-venv with the exact versions of
# tests/peers/tryton/requirements.txt (reinstalled when that file changes), and a template
# database (SQLite) with the production module activated and `admin` in the product and
# production groups (tests/peers/tryton/prepare.py), cached under a key of the requirements and
# the prepare script (building it takes about 30 s; copying it takes nothing).
#
# Each run: a throwaway directory with a trytond.conf and a copy of the template, a new random
# admin password, trytond on a free loopback port; stopped and deleted by peers_cleanup (called
# by services_cleanup on exit, also on failure or Ctrl-C). Exports LOCKSTEP_TEST_TRYTON_URL,
# LOCKSTEP_TEST_TRYTON_DATABASE, LOCKSTEP_TEST_TRYTON_USER and LOCKSTEP_TEST_TRYTON_PASSWORD.
# LOCKSTEP_TEST_SKIP_TRYTON=1 skips all of it (the tests that need Tryton then say so and pass).
PEERS_TRYTON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/peers/tryton"
PEERS_TRYTON_PID=""   # pid of the throwaway trytond
PEERS_TRYTON_RUN=""   # its temp dir

# A random printable password (letters and digits only, so it needs no quoting anywhere).
tryton_random_password() {
  local password=""
  while [ "${#password}" -lt 24 ]; do
    password+=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  done
  printf '%s\n' "${password:0:24}"
}

# A TCP port nothing listens on, chosen by the kernel (a tiny race, but only against ourselves).
tryton_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Write the trytond configuration for data dir $1 listening on port $2 into $1/trytond.conf.
tryton_write_conf() {
  cat >"$1/trytond.conf" <<CONF
[database]
uri = sqlite://
path = $1

[web]
listen = 127.0.0.1:$2

[session]
# The tests log in and out many times; keep Tryton's brute-force delay out of their way
# for the right password (the wrong one is tried once per test).
max_attempt = 100
max_attempt_ip_network = 1000
CONF
}

tryton_venv_ok() {
  local venv=$1
  [ -x "$venv/bin/trytond" ] && [ -x "$venv/bin/trytond-admin" ] \
    && cmp -s "$venv/.lockstep-requirements.txt" "$PEERS_TRYTON_DIR/requirements.txt"
}

# Build the template database into $1 (a directory) with venv $2.
tryton_build_template() {
  local out=$1 venv=$2 build started
  started=$(date +%s)
  build=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-tryton-template.XXXXXX")
  tryton_write_conf "$build" 0
  tryton_random_password >"$build/password"
  : >"$build/lockstep.sqlite"
  peers_log "tryton: building the template database (about 30 s, once) ..."
  if ! (cd "$build" && TRYTONPASSFILE="$build/password" "$venv/bin/trytond-admin" \
      -c "$build/trytond.conf" -d lockstep --all --activate-dependencies -u production \
      --email admin@example.invalid >"$build/admin.log" 2>&1); then
    tail -n 30 "$build/admin.log" >&2 || true
    rm -rf "$build"
    peers_die "trytond-admin could not create the Tryton template database"
  fi
  if ! (cd "$build" && "$venv/bin/python" "$PEERS_TRYTON_DIR/prepare.py" \
      "$build/trytond.conf" lockstep >"$build/prepare.log" 2>&1); then
    tail -n 30 "$build/prepare.log" >&2 || true
    rm -rf "$build"
    peers_die "tests/peers/tryton/prepare.py failed on the template database"
  fi
  mkdir -p "$out.tmp.$$"
  cp "$build/lockstep.sqlite" "$out.tmp.$$/lockstep.sqlite"
  rm -rf "$build" "$out"
  mv "$out.tmp.$$" "$out"
  peers_log "tryton: template database built in $(($(date +%s) - started)) s"
}

ensure_tryton() {
  if [ "${LOCKSTEP_TEST_SKIP_TRYTON:-}" = 1 ]; then
    peers_log "tryton: skipped (LOCKSTEP_TEST_SKIP_TRYTON=1)"
    return 0
  fi
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/lockstep"
  local venv="$cache/tryton-venv" key template dir port password i started
  started=$(date +%s)
  if ! tryton_venv_ok "$venv"; then
    if ! command -v python3 >/dev/null 2>&1; then
      svc_apt_install python3
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      svc_apt_install python3-venv
    fi
    peers_log "tryton: installing trytond and trytond-production (tests/peers/tryton/requirements.txt) into $venv ..."
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || peers_die "python3 -m venv $venv failed"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      -r "$PEERS_TRYTON_DIR/requirements.txt" >&2 \
      || peers_die "pip install -r tests/peers/tryton/requirements.txt failed"
    cp "$PEERS_TRYTON_DIR/requirements.txt" "$venv/.lockstep-requirements.txt"
    peers_log "tryton: installed in $(($(date +%s) - started)) s"
  fi

  key=$(cat "$PEERS_TRYTON_DIR/requirements.txt" "$PEERS_TRYTON_DIR/prepare.py" \
    | sha256sum | cut -c1-16)
  template="$cache/tryton-template-$key"
  if [ ! -s "$template/lockstep.sqlite" ]; then
    tryton_build_template "$template" "$venv"
  fi

  started=$(date +%s)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-tryton.XXXXXX")
  PEERS_TRYTON_RUN=$dir
  port=$(tryton_free_port) || peers_die "no free port for Tryton"
  password=$(tryton_random_password)
  tryton_write_conf "$dir" "$port"
  cp "$template/lockstep.sqlite" "$dir/lockstep.sqlite"
  printf '%s\n' "$password" >"$dir/password"
  chmod 600 "$dir/password"
  if ! (cd "$dir" && TRYTONPASSFILE="$dir/password" "$venv/bin/trytond-admin" \
      -c "$dir/trytond.conf" -d lockstep -p >"$dir/admin.log" 2>&1); then
    tail -n 30 "$dir/admin.log" >&2 || true
    peers_die "trytond-admin could not set the Tryton admin password"
  fi
  rm -f "$dir/password"
  # `-d lockstep` loads the database's modules at start: Tryton 8.2 does not load them for a
  # database first named by a request (that login then fails with KeyError 'res.user').
  (cd "$dir" && exec "$venv/bin/trytond" -c "$dir/trytond.conf" -d lockstep \
    </dev/null >"$dir/trytond.log" 2>&1) &
  PEERS_TRYTON_PID=$!
  for ((i = 0; i < 300; i++)); do
    if python3 - "$port" <<'PY' 2>/dev/null; then
import json, sys, urllib.request
request = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/rpc/",
    data=json.dumps({"id": 0, "method": "common.server.version", "params": []}).encode(),
    headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=2) as answer:
    sys.exit(0 if "result" in json.load(answer) else 1)
PY
      break
    fi
    if ! kill -0 "$PEERS_TRYTON_PID" 2>/dev/null; then
      tail -n 30 "$dir/trytond.log" >&2 || true
      peers_die "trytond exited during start-up"
    fi
    sleep 0.2
  done
  [ "$i" -lt 300 ] || { tail -n 30 "$dir/trytond.log" >&2 || true; peers_die "trytond did not answer within 60 s"; }
  export LOCKSTEP_TEST_TRYTON_URL="http://127.0.0.1:$port/"
  export LOCKSTEP_TEST_TRYTON_DATABASE=lockstep
  export LOCKSTEP_TEST_TRYTON_USER=admin
  export LOCKSTEP_TEST_TRYTON_PASSWORD="$password"
  peers_log "tryton: trytond $("$venv/bin/trytond" --version 2>/dev/null | awk '{print $NF}') at $LOCKSTEP_TEST_TRYTON_URL, database lockstep, started in $(($(date +%s) - started)) s (data in $dir)"
}

tryton_stop() {
  local i
  if [ -n "$PEERS_TRYTON_PID" ]; then
    kill -TERM "$PEERS_TRYTON_PID" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      kill -0 "$PEERS_TRYTON_PID" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$PEERS_TRYTON_PID" 2>/dev/null || true
    wait "$PEERS_TRYTON_PID" 2>/dev/null || true
    PEERS_TRYTON_PID=""
  fi
  if [ -n "$PEERS_TRYTON_RUN" ]; then
    rm -rf "$PEERS_TRYTON_RUN"
    PEERS_TRYTON_RUN=""
  fi
}

# Stop and delete whatever the peers started (called by services_cleanup). Safe to call twice.
peers_cleanup() {
  tryton_stop
}
