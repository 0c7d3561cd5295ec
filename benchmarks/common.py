"""Helpers shared by the benchmark scripts: timing, peak RSS, tables, synthetic LoRA files and zoos."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

#: BERT-base LoRA (r=8, query+value): per layer A (8×768) and B (768×8) for two modules.
BERT_LAYERS, BERT_HIDDEN, LORA_R = 12, 768, 8
BERT_LORA_DIM = 4 * LORA_R * BERT_HIDDEN  # 24,576


def median(values: list[float]) -> float:
    """The median (noisy shared machine: report medians of repeats)."""
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def timed(fn: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    """Median wall time of ``fn`` over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return median(times), result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (printed by the scripts, pasted into docs/benchmarks.md)."""
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def emit(text: str, results: Path | None = None) -> None:
    """Print a table and append it to the results file when one is given."""
    print(text, flush=True)
    if results is not None:
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def write_bert_lora(folder: Path, seed: int, with_heads: bool = False) -> Path:
    """A real-format PEFT LoRA checkpoint of BERT-base (r=8, query+value), written with safetensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    prefix = "base_model.model.bert.encoder.layer"
    for layer in range(BERT_LAYERS):
        for module in ("query", "value"):
            key = f"{prefix}.{layer}.attention.self.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((LORA_R, BERT_HIDDEN), np.float32) * 0.02
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((BERT_HIDDEN, LORA_R), np.float32) * 0.01
    if with_heads:
        tensors["base_model.model.classifier.modules_to_save.default.weight"] = rng.standard_normal(
            (2, BERT_HIDDEN), np.float32)
        tensors["base_model.model.classifier.modules_to_save.default.bias"] = np.zeros(2, np.float32)
        tensors["base_model.model.classifier.original_module.weight"] = rng.standard_normal(
            (2, BERT_HIDDEN), np.float32)
        tensors["base_model.model.classifier.original_module.bias"] = np.zeros(2, np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "SEQ_CLS", "r": LORA_R, "lora_alpha": 16,
              "target_modules": ["query", "value"], "base_model_name_or_path": "bert-base-uncased",
              "modules_to_save": ["classifier"] if with_heads else None}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def synthetic_batch(batch: int, size: int, dim: int, seed: int = 0, rank: int = 32) -> np.ndarray:
    """Rows of a synthetic zoo, batch ``batch`` of ``size`` rows: a shared component (common LoRA init),
    low-rank task structure (``rank`` latent task factors) and isotropic noise. Deterministic per batch."""
    basis = _basis(dim, seed, rank)
    rng = np.random.default_rng([seed, batch])
    z = rng.standard_normal((size, rank), dtype=np.float32)
    out = rng.standard_normal((size, dim), dtype=np.float32)
    out *= 0.5
    out += basis[0] * np.float32(np.sqrt(rank))
    out += z @ basis[1:]
    return out


def synthetic_target(index: int, dim: int, seed: int = 0, rank: int = 32) -> np.ndarray:
    """A target task related to the zoo: its own latent factors, close to (but not equal to) some entries."""
    basis = _basis(dim, seed, rank)
    rng = np.random.default_rng([seed, 10**6 + index])
    z = rng.standard_normal(rank, dtype=np.float32)
    vector = basis[0] * np.float32(np.sqrt(rank)) + z @ basis[1:] + 0.5 * rng.standard_normal(dim, dtype=np.float32)
    return vector.astype(np.float32)


_BASIS: dict[tuple[int, int, int], np.ndarray] = {}


def _basis(dim: int, seed: int, rank: int) -> np.ndarray:
    key = (dim, seed, rank)
    if key not in _BASIS:
        rng = np.random.default_rng([seed, 999_983])
        _BASIS[key] = rng.standard_normal((rank + 1, dim), dtype=np.float32) / np.float32(np.sqrt(rank))
    return _BASIS[key]


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``python -c code args`` in a new process; (wall seconds, stdout)."""
    start = time.perf_counter()
    out = subprocess.run([PYTHON, "-c", code, *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2", **(env or {})}, cwd=REPO)
    return time.perf_counter() - start, out.stdout
