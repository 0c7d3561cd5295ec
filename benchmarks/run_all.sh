#!/usr/bin/env bash
# Every zoo-tupate benchmark, one command. Tables go to stdout and to benchmarks/results/latest.md;
# raw index results to benchmarks/results/index-<N>.json; the scaling plot to docs/benchmarks-scaling.png
# (RESULTS=dir and PLOT=file override those two).
#
#   benchmarks/run_all.sh          N = 1,000 and 10,000 (about 3 minutes on 2 cores)
#   benchmarks/run_all.sh --big    adds N = 100,000 (about 11 GB free disk under $TMPDIR; ~15 minutes)
#
# The machine should be otherwise idle; on a shared machine repeat and compare medians.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RESULTS=${RESULTS:-benchmarks/results}
OUT=$RESULTS/latest.md
SIZES=1000,10000
if [[ "${1:-}" == "--big" ]]; then SIZES=1000,10000,100000; fi
mkdir -p "$RESULTS"
{ echo "# zoo-tupate benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"; echo; } > "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
$PY benchmarks/bench_embed.py -n 200 --repeats 5 --results "$OUT"
$PY benchmarks/bench_manifest.py --repeats 3 --results "$OUT"
$PY benchmarks/bench_index.py --sizes "$SIZES" --queries 20 --cold 5 --adds 5 --results "$OUT" --json-dir "$RESULTS"
$PY benchmarks/bench_pull.py -n 50 --repeats 3 --results "$OUT"
$PY benchmarks/bench_tune.py --rows 128 --results "$OUT"
$PY benchmarks/plot_scaling.py "$RESULTS" --out "${PLOT:-docs/benchmarks-scaling.png}" || true
echo "results: $OUT"
