"""The hostile files of issue 23 (items 6-15, one generated case per class), added to ``malformed_cases.generate``.

Crashes before the fix: LoRA tensors of shape ``[]`` (safetensors and 0-dim ``torch.save``), zero-size factors
with a 2**64 dimension, a lone surrogate in ``base_model_name_or_path``, meta-device and sparse tensors in a
``.bin``, an embedding card whose metadata nests 100,000 deep. Wrong answers before the fix: ``lora_alpha``
1e-300 and weights of 1e-45 (an all-zero ΔW that ranked first), a negative ``lora_alpha`` (ΔW negated),
config values of the wrong type (``"16"``, ``{}``, ``true``, ``null``, ``-4``) silently replaced by a default,
BOOL / I64 / complex / fp8 LoRA tensors accepted, a 1 MB base model name quoted whole in the error line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Nesting depth of the hostile card metadata (the issue's figure).
CARD_DEPTH = 100_000
#: Length of the hostile base model name (1 MB).
LONG_NAME = 1_000_000


def torch_bin(tensors: dict) -> bytes:
    """``torch.save`` of a state dict (torch tensors), as bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


def lora_keys(mc, layers: int = 2) -> list[tuple[str, str]]:
    """(key, part) of the LoRA tensors of ``mc.lora_tensors`` (A before B)."""
    keys = []
    for layer in range(layers):
        for module in mc.MODULES:
            for part in ("lora_A", "lora_B"):
                keys.append((f"{mc.PREFIX}.{layer}.attention.self.{module}.{part}.weight", part))
    return keys


def deep_card(folder: Path, depth: int = CARD_DEPTH) -> Path:
    """An embedding-card folder whose metadata document is a list nested ``depth`` deep."""
    from safetensors.numpy import save

    folder.mkdir(parents=True, exist_ok=True)
    doc = "[" * depth + "]" * depth
    blob = save({"x": np.ones(4, np.float32)}, metadata={"zoo_tupate": doc})
    (folder / "task_embedding.safetensors").write_bytes(blob)
    return folder


def generate(root: Path, mc, add: Callable[[str, str, Path, str], None]) -> None:
    """Write the issue-23 cases under ``root`` (``mc``: the malformed_cases module, for its builders)."""
    import torch

    rng = np.random.default_rng(23)
    tensors = mc.lora_tensors(rng)
    good = mc.st_bytes(tensors)

    case = mc.case_writer(root, "h23", add)

    # 6. scalars where LoRA factors belong
    case("lora-shape-scalar", mc.st_bytes({k: np.float32(0.5).reshape(()) for k in tensors}))
    case("torch-0dim", torch_bin({k: torch.tensor(0.5) for k in tensors}), weights_name="adapter_model.bin")
    # 7. zero-size factors with a 2**64 dimension
    header = {}
    for key, part in lora_keys(mc):
        shape = [0, 2**64] if part == "lora_A" else [2**64, 0]
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
    case("zero-by-2^64", mc.raw_st(header))
    # 8. a lone surrogate in the base model name (JSON escape: valid JSON, not encodable text)
    case("base-model-lone-surrogate", good,
         json.dumps({**mc.CONFIG, "base_model_name_or_path": "@@"}).replace("@@", "\\ud800x").encode())
    # 9. tensors that are not dense CPU tensors
    case("bin-meta", torch_bin({k: torch.empty(v.shape, device="meta") for k, v in tensors.items()}),
         weights_name="adapter_model.bin")
    case("bin-sparse", torch_bin({k: torch.from_numpy(v).to_sparse() for k, v in tensors.items()}),
         weights_name="adapter_model.bin")
    # 10. an embedding card whose metadata nests 100,000 deep
    deep = deep_card(root / "h23-card-deep-metadata")
    add("h23", "card-deep-metadata", deep, "fail")
    # 12. an all-zero delta: a vanishing alpha, or weights at the float32 denormal floor
    case("lora-alpha-1e-300", good, {**mc.CONFIG, "lora_alpha": 1e-300}, expect="degenerate")
    tiny = {k: np.full(v.shape, 1e-45, np.float32) for k, v in tensors.items()}
    case("weights-1e-45", mc.st_bytes(tiny), expect="degenerate")
    # 13. a negative alpha
    case("lora-alpha-negative", good, {**mc.CONFIG, "lora_alpha": -8})
    # 14. config values of the wrong type, and LoRA tensors that are not floating point
    for field, value, label in (("lora_alpha", "16", "alpha-string"), ("lora_alpha", {}, "alpha-object"),
                                ("r", "8", "r-string"), ("r", True, "r-true"), ("r", -4, "r-negative"),
                                ("r", None, "r-null")):
        case(f"config-{label}", good, {**mc.CONFIG, field: value})
    case("dtype-bool", mc.st_bytes({k: v > 0 for k, v in tensors.items()}))
    case("dtype-i64", mc.st_bytes({k: (v * 100).astype(np.int64) for k, v in tensors.items()}))
    case("bin-complex", torch_bin({k: torch.from_numpy(v).to(torch.complex64) for k, v in tensors.items()}),
         weights_name="adapter_model.bin")
    case("bin-fp8", torch_bin({k: torch.from_numpy(v).to(torch.float8_e4m3fn) for k, v in tensors.items()}),
         weights_name="adapter_model.bin")
    # 15. a 1 MB base model name (the error line must not quote it whole)
    case("base-model-1MB", good, {**mc.CONFIG, "base_model_name_or_path": "b" * LONG_NAME})
