#!/usr/bin/env bash
# Reading BOM exports: lockstep_bom::read on a generated 100,000-line SOLIDWORKS-style indented
# BOM, once as a UTF-8 CSV and once as an XLSX with shared strings, then the tree and the part
# totals of what was read. Prints a Markdown table and writes it to bench/results/bom-<date>.md.
# See bench/README.md; figures in BENCHMARKS.md. The goal: each read under 2 s.
#
#   bench/bom.sh                      # 5 reads per file
#   RUNS=9 bench/bom.sh
#   LINES=20000 RUNS=3 bench/bom.sh   # a quick look
#
# With API=1, the same two files are then uploaded as data sets to a hub started for it (a
# pipeline into the Tryton test peer, started with scripts/lib/peers.sh), and the upload, the
# tree's first page, one node's children and the part totals are timed at the API
# (bench/bom_api.py; needs the release `lockstep` binary, built unless SKIP_BUILD=1).
#
# Knobs (environment): RUNS (5), LINES (100000), BOM_BENCH_DIR (unset: where to also write the
# two generated files, e.g. to profile one read with perf), API (0), PAGES (30), SKIP_BUILD (0),
# CARGO_TARGET_DIR.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
# Absolute, so the build below (run from the root) and the binary agree on where it is.
export CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p lockstep-bom --example bom_bench)
    if [[ "${API:-0}" == 1 ]]; then
        (cd "$ROOT" && cargo build --release --locked -p lockstep-cli)
    fi
fi
if [[ "${API:-0}" == 1 && -z "${BOM_BENCH_DIR:-}" ]]; then
    BOM_BENCH_DIR="$(mktemp -d)"
    export BOM_BENCH_DIR
fi
mkdir -p "$BENCH/results"
out="$BENCH/results/bom-$(date -u +%Y%m%dT%H%M%SZ).md"
"$CARGO_TARGET_DIR/release/examples/bom_bench" | tee "$out"
printf '[bench] written to %s\n' "$out" >&2

if [[ "${API:-0}" == 1 ]]; then
    # shellcheck source=/dev/null
    source "$ROOT/scripts/lib/services.sh"
    # shellcheck source=/dev/null
    source "$ROOT/scripts/lib/peers.sh"
    trap services_cleanup EXIT
    ensure_tryton
    LOCKSTEP_BIN="$CARGO_TARGET_DIR/release/lockstep" RUNS="${API_RUNS:-3}" \
        "${PYTHON:-python3}" "$BENCH/bom_api.py" | tee -a "$out"
fi
