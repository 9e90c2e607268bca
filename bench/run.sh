#!/usr/bin/env bash
# Lockstep's benchmark: PostgreSQL -> PostgreSQL, PostgreSQL -> MariaDB and CSV -> PostgreSQL
# copies of the 1,000,000-row `parts` table through the hub, against the raw COPY pipe and the
# peers (ingestr, dlt, sling). See bench/README.md; the figures go to bench/results/.
#
#   bench/run.sh                       # everything, 5 interleaved runs per tool
#   RUNS=3 CASES=pg_pg TOOLS="pipe lockstep" bench/run.sh
#
# Knobs (environment): RUNS, CASES, TOOLS, CHECKSUM, SKIP_INSTALL, SKIP_BUILD, PARTS_SQL,
# SRC_DB, DST_DB, PGHOST, PGPORT, PGUSER, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD,
# LOCKSTEP_BIN, CARGO_TARGET_DIR, RUN_TIMEOUT.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
PYTHON="${PYTHON:-python3}"

say() { printf '[bench] %s\n' "$*" >&2; }

# 1. The peers, each in its own virtual environment, at the versions that work offline
#    (../shared/bench/PEERS.md): newer ingestr and `sling` download binaries at first use.
#    install_peer TOOL CHECK PACKAGE...: installs unless CHECK (run in the venv) already passes.
install_peer() {
    local tool="$1" check="$2"; shift 2
    local venv="$BENCH/.venv-$tool"
    if [[ -x "$venv/bin/python" ]] && (cd "$venv" && eval "$check") >/dev/null 2>&1; then
        return 0
    fi
    say "installing $tool into $venv: $*"
    rm -rf "$venv"
    if "$PYTHON" -m venv "$venv" && "$venv/bin/pip" install --quiet "$@" >"$BENCH/.install-$tool.log" 2>&1 \
        && (cd "$venv" && eval "$check") >>"$BENCH/.install-$tool.log" 2>&1; then
        rm -f "$BENCH/.install-$tool.log"
    else
        say "$tool could not be installed (see bench/.install-$tool.log): it is skipped"
        rm -rf "$venv"
    fi
}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    install_peer ingestr "bin/ingestr --version" "ingestr==1.1.22"
    # sql-database: SQLAlchemy, which dlt's sql_table source needs even with connectorx.
    install_peer dlt "bin/python -c 'import dlt, sqlalchemy, connectorx, pyarrow, adbc_driver_postgresql, psycopg2'" \
        "dlt[postgres,sql-database]==1.31.0" psycopg2-binary pyarrow connectorx adbc-driver-postgresql
    install_peer sling "lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-amd64 --version" \
        "sling-linux-amd64==1.4.11"
fi

# 2. The hub, built as users build it. Others may be editing the crates: retry a failed build.
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    attempt=1
    until (cd "$ROOT" && cargo build --release --locked); do
        if (( attempt >= ${BUILD_ATTEMPTS:-4} )); then
            say "the release build failed $attempt times"
            exit 1
        fi
        say "the release build failed; retrying in ${BUILD_RETRY_SECONDS:-180} s"
        sleep "${BUILD_RETRY_SECONDS:-180}"
        attempt=$((attempt + 1))
    done
fi

# 3. The runs.
exec "$PYTHON" "$BENCH/bench.py"
