"""Where a transfer run's numbers come from: compute time summed from the cache, and library and device
versions recorded with every measurement."""

from __future__ import annotations

import json
import platform
from typing import TYPE_CHECKING

import numpy as np

from zoo_tupate.core.cachefiles import read_json

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TransferConfig


def timings(config: TransferConfig) -> dict[str, float]:
    """Compute time summed from the cache (seconds), so a resumed run still reports its full cost."""
    totals = {"source_train_s": 0.0, "target_train_s": 0.0, "target_eval_s": 0.0}
    folder = config.transfer_dir()
    for path in sorted((folder / "models").glob("source-*.json")):
        totals["source_train_s"] += float((read_json(path) or {}).get("train_s", 0.0))
    for path in sorted((folder / "pairs").glob("*.json")):
        data = read_json(path) or {}
        totals["target_train_s"] += float(data.get("train_s", 0.0))
        totals["target_eval_s"] += float(data.get("eval_s", 0.0))
    probe_log = read_json(config.probe_dir() / "timings.json") or {}  # written by older versions
    probe_wall = float(probe_log.get("probe_wall_s", 0.0))
    for path in sorted((config.probe_dir() / "probes").glob("*/init*/*/probe_wall.json")):
        probe_wall += float((read_json(path) or {}).get("wall_s", 0.0))
    totals["probe_wall_s"] = probe_wall
    return {k: round(v, 1) for k, v in totals.items()}


_MEASURING: dict[str, dict[str, str]] = {}


def measuring_versions(device: str) -> dict[str, str]:
    """:func:`versions` plus the device's name, recorded in every measurement (computed once per process)."""
    if device not in _MEASURING:
        import torch

        name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
        _MEASURING[device] = {**versions(), "device": name}
    return _MEASURING[device]


def measured_versions(config: TransferConfig) -> list[dict[str, str]]:
    """The distinct :func:`measuring_versions` of the run's measurements (empty for caches from before they
    were recorded)."""
    seen: dict[str, dict[str, str]] = {}
    for path in sorted((config.transfer_dir() / "pairs").glob("*.json")):
        recorded = (read_json(path) or {}).get("versions")
        if recorded:
            seen[json.dumps(recorded, sort_keys=True)] = recorded
    return list(seen.values())


def versions() -> dict[str, str]:
    """Versions of the libraries the numbers depend on."""
    import torch
    import transformers

    from zoo_tupate.core.version import __version__

    out = {"zoo_tupate": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "numpy": np.__version__}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:  # pragma: no cover - peft is a dependency
        pass
    return out
