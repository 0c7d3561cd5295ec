#!/usr/bin/env bash
# Issue 13's fresh, pre-registered matrix (docs/prediction-quality-v2-prereg.md §5, primary design) on a lent GPU:
# the committed design of docs/results/cr11-minilm-full-probelr.json with nothing random shared with it —
# seeds 10-14 and a new seeded sample of target, source and probe rows (--data-seed 1) — under the `full`
# protocol, then the `adapter` protocol on the same seeds, probes and rows. No calibration: the committed
# rates (full 1e-4, adapter 2e-3, probes lora/bitfit 2e-3, prefix 1e-2). Inputs: .gpu/ from
# benchmarks/gpu_inputs.sh. Outputs in $OUT: fresh-full.json, fresh-adapter.json (result files for
# `zoo-tupate eval --matrix`), run logs and the cache archives of gpu_transfer.sh.
# One call, timeout_s 600:  OUT=$OUT bash benchmarks/gpu_fresh_matrix.sh
# Score it once, as pre-registered:  python benchmarks/fresh_matrix_report.py $OUT/fresh-full.json $OUT/fresh-adapter.json
set -uo pipefail
cd "$(dirname "$0")/.."
export SEEDS=10,11,12,13,14 DATA_SEED=1 LR=1e-4 ADAPTER_LR=2e-3 BASELINES=0 WORKERS=${WORKERS:-12}
export PROBE_LRS="lora=2e-3 bitfit=2e-3 prefix=1e-2" CACHE=${CACHE:-.bench-cache}
PROTOCOL=full BUDGET=${FULL_BUDGET:-360} RESULT=fresh-full.json bash benchmarks/gpu_transfer.sh
PROTOCOL=adapter BUDGET=${ADAPTER_BUDGET:-200} RESULT=fresh-adapter.json bash benchmarks/gpu_transfer.sh
