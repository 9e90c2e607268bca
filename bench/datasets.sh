#!/usr/bin/env bash
# Data sets at 1,000,000 records: pipeline runs (full refresh, upsert), a data set's pull and
# compare, pages of records at the API, and a submit of 100,000 ticked records against the upsert
# of the same records by a pipeline run. See bench/README.md; figures in BENCHMARKS.md.
#
#   bench/datasets.sh                        # 3 rounds
#   RUNS=1 ROWS=100000 SUBMIT_ROWS=10000 bench/datasets.sh   # a quick look on a scaled copy
#
# Knobs (environment): RUNS, ROWS, SUBMIT_ROWS, PAGES, DS_DST_DB, QUIET_WAIT, SKIP_BUILD,
# LOCKSTEP_BIN, CARGO_TARGET_DIR, and bench/run.sh's database knobs (PGHOST, PGPORT, PGUSER,
# SRC_DB, PARTS_SQL).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked)
fi
exec "${PYTHON:-python3}" "$BENCH/datasets.py"
