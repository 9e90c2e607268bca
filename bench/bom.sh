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
# Knobs (environment): RUNS (5), LINES (100000), BOM_BENCH_DIR (unset: where to also write the
# two generated files, e.g. to profile one read with perf), SKIP_BUILD (0), CARGO_TARGET_DIR.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
# Absolute, so the build below (run from the root) and the binary agree on where it is.
export CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p lockstep-bom --example bom_bench)
fi
mkdir -p "$BENCH/results"
out="$BENCH/results/bom-$(date -u +%Y%m%dT%H%M%SZ).md"
"$CARGO_TARGET_DIR/release/examples/bom_bench" | tee "$out"
printf '[bench] written to %s\n' "$out" >&2
