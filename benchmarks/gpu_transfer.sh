#!/usr/bin/env bash
# The full-design prediction-quality run (docs/prediction-quality.md) as one script for a lent GPU machine:
# 11 CR tasks, all-MiniLM-L6-v2, LIMITED->LIMITED, protocol full: 2,000-row sources x 2 epochs, 1,000-row
# targets x 3 epochs, validation capped at a fixed 2,000-row sample, seeds 0,1,2; learning rate chosen by
# `bench calibrate` first. Every stage is `zoo-tupate` itself, sharing the resumable cache .bench-cache/.
#
# Inputs, carried beside the checkout in .gpu/ (made by benchmarks/gpu_inputs.sh):
#   .gpu/minilm-fp16/  the model in fp16 (45 MB; upcast to float32 here into .gpu/minilm)
#   .gpu/cr.tar.xz     ../shared/data/cr (unpacked here into .gpu/cr)
#   .gpu/whl/          wheels the GPU image lacks (peft 0.21.2, platformdirs)
# Outputs in $OUT (refreshed every 20 s, so a run cut short still returns what finished): calibrate.json,
# run.log, small.tgz (measured pairs, logs, baseline vectors), probes-{0,1,2}.tgz (probe checkpoints), and at
# the end result.json (what `zoo-tupate eval` reads). Unpacked into .bench-cache/ on another machine, the
# archives let the report stage run there too (the committed result was made that way):
#   zoo-tupate bench transfer <the same options> --seeds 0,1,2,3,4 --lr <chosen> --stage report --out FILE
# Environment: BUDGET (seconds for the whole script), WORKERS, DEVICE, SEEDS, LRS, TRAIN_ROWS, SOURCE_ROWS,
# VAL_ROWS, TASKS, PY (small values give a quick dry run on a CPU); for a fresh, pre-registered matrix
# (benchmarks/gpu_fresh_matrix.sh): LR (a fixed rate: no calibration), DATA_SEED, PROTOCOL, ADAPTER_LR,
# PROBE_LRS ("lora=2e-3 prefix=1e-2"), BASELINES=0 (skip TaskEmb/TextEmb), RESULT (the result file's name).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${BUDGET:-560}
OUT=${OUT:-/tmp/gpu-transfer-out}; mkdir -p "$OUT"
PY=${PY:-python3}; WORKERS=${WORKERS:-10}; THREADS=${THREADS:-1}; DEVICE=${DEVICE:-cuda}; SEEDS=${SEEDS:-0,1,2}
LRS=${LRS:-5e-5,1e-4,2e-4}; CACHE=${CACHE:-.bench-cache}
TASKS=${TASKS:-cola,mnli,snli,qqp,stsb,sst2,qnli,mrpc,rte,scitail,wnli}
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
  TOKENIZERS_PARALLELISM=false
stamp() { echo "[$(( $(date +%s) - START ))s] $*"; }

$PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD"  # the carried peft (the version the project is tested with) first
$PY - <<'EOF' || exit 1
import shutil, tarfile
from pathlib import Path
from safetensors.torch import load_file, save_file
if not Path(".gpu/cr").is_dir():
    with tarfile.open(".gpu/cr.tar.xz") as archive:
        archive.extractall(".gpu", filter="data")
src, dst = Path(".gpu/minilm-fp16"), Path(".gpu/minilm")
dst.mkdir(exist_ok=True)
for f in src.iterdir():
    if f.name != "model.safetensors":
        shutil.copy(f, dst / f.name)
sd = load_file(src / "model.safetensors")
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
          dst / "model.safetensors", metadata={"format": "pt"})
EOF
$PY -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "| transformers", transformers.__version__,
"| peft", peft.__version__)'
nproc
ZT=($PY -m zoo_tupate bench)
COMMON=(--tasks-dir .gpu/cr --tasks "$TASKS" --base-model .gpu/minilm
        --base-model-id sentence-transformers/all-MiniLM-L6-v2 --protocol "${PROTOCOL:-full}"
        --train-rows "${TRAIN_ROWS:-1000}" --source-rows "${SOURCE_ROWS:-2000}" --source-epochs 2 --target-epochs 3
        --val-rows "${VAL_ROWS:-2000}" --max-length 128 --batch-size 32 --probe-epochs 3 --probe-early-epochs 2
        --probe-val-rows 200 --device "$DEVICE" --workers "$WORKERS" --threads "$THREADS" --cache "$CACHE"
        --data-seed "${DATA_SEED:-0}" --adapter-lr "${ADAPTER_LR:-2e-3}")
for pl in ${PROBE_LRS:-}; do COMMON+=(--probe-lr "$pl"); done
IFS=, read -ra TASK_LIST <<< "$TASKS"; PER=$(( (${#TASK_LIST[@]} + 2) / 3 ))
shopt -s nullglob
pack() {  # atomically replaced archives: the small part of the cache (no weights) and the probes in thirds
  tar -czf "$OUT/.small.tmp" --exclude='*.pt' --exclude='*/probes/*' "$CACHE" 2>/dev/null \
    && mv "$OUT/.small.tmp" "$OUT/small.tgz"
  for part in 0 1 2; do
    local dirs=()
    for t in "${TASK_LIST[@]:$((part * PER)):$PER}"; do dirs+=("$CACHE"/probes-*/probes/"$t"); done
    [ ${#dirs[@]} -gt 0 ] && tar -czf "$OUT/.probes.tmp" "${dirs[@]}" 2>/dev/null \
      && mv "$OUT/.probes.tmp" "$OUT/probes-$part.tgz"
  done
}
gpu_load() { command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=utilization.gpu,memory.used \
  --format=csv,noheader | sed "s/^/[$(( $(date +%s) - START ))s] gpu /"; }
( while sleep 20; do pack; gpu_load; done ) & PACKER=$!

if [ -z "${LR:-}" ]; then
  stamp "calibrate ($LRS)"
  "${ZT[@]}" calibrate "${COMMON[@]}" --seeds 0 --lrs "$LRS" --json > "$OUT/calibrate.json" || exit 1
  LR=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["chosen_lr"])' "$OUT/calibrate.json")
fi
FIRST=${SEEDS%%,*}
stamp "lr $LR; probes and seed $FIRST"
"${ZT[@]}" transfer "${COMMON[@]}" --lr "$LR" --seeds "$FIRST" --stage probes --stage transfer
pack
if [ "${BASELINES:-1}" != 0 ]; then
  stamp "baselines"
  "${ZT[@]}" transfer "${COMMON[@]}" --lr "$LR" --seeds "$FIRST" --stage baselines
fi
LEFT=$(( BUDGET - ($(date +%s) - START) - 25 ))
stamp "seeds $SEEDS (at most ${LEFT}s)"
[ "$LEFT" -gt 10 ] && timeout -k 5 "$LEFT" "${ZT[@]}" transfer "${COMMON[@]}" --lr "$LR" --seeds "$SEEDS" --stage transfer
pkill -f "multiprocessing.spawn" 2>/dev/null  # workers left by a timed-out stage
"${ZT[@]}" transfer "${COMMON[@]}" --lr "$LR" --seeds "$SEEDS" --workers 1 --stage report --out "$OUT/${RESULT:-result.json}"
kill "$PACKER" 2>/dev/null
pack
stamp "done: $(find "$CACHE" -path '*/pairs/*.json' | wc -l) measured pairs, lr $LR"
