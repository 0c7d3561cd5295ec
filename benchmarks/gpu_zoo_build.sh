#!/usr/bin/env bash
# Issue 14's GPU measurement (benchmarks/gpu_zoo_build.py) on a lent GPU machine: the inputs of
# benchmarks/gpu_inputs.sh in .gpu/ (MiniLM in fp16, CR data, wheels), result in $OUT/gpu_zoo_build.json.
# About 5 minutes on an H200; run with timeout_s 600.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-zoo-out}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
  TOKENIZERS_PARALLELISM=false OUT
if [ -d .gpu/whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
$PY - <<'PY'
import tarfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

if Path(".gpu/cr.tar.xz").exists() and not Path(".gpu/cr").exists():
    with tarfile.open(".gpu/cr.tar.xz") as archive:
        archive.extractall(".gpu")
src, dst = Path(".gpu/minilm-fp16"), Path(".gpu/minilm")
if src.exists() and not dst.exists():  # upcast to float32, as the project loads it
    dst.mkdir()
    for f in src.iterdir():
        if f.name != "model.safetensors":
            (dst / f.name).write_bytes(f.read_bytes())
    state = load_file(src / "model.safetensors")
    save_file({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}, dst / "model.safetensors",
              metadata={"format": "pt"})
PY
$PY benchmarks/gpu_zoo_build.py --out "$OUT/gpu_zoo_build.json" "$@" 2>&1 | tee "$OUT/run.log"
