#!/usr/bin/env bash
# Data policies at 1,000,000 records: a data set's pages with row filters and redaction on and
# off, and a full refresh with and without redaction transforms. See bench/policies.py; figures
# in BENCHMARKS.md.
#
#   bench/policies.sh                  # 3 rounds
#   RUNS=1 PAGES=20 bench/policies.sh  # a quick look
#
# Knobs (environment): RUNS, PAGES, SKIP_BUILD, LOCKSTEP_BIN, CARGO_TARGET_DIR, and
# bench/datasets.sh's database knobs.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked)
fi
exec "${PYTHON:-python3}" "$BENCH/policies.py"
