"""Tuning: LoRA, BitFit (PEFT BEFT) and P-Tuning v2 deep prefixes, the training loop, and early probes.

* :mod:`zoo_tupate.tuning.data`: datasets (Hub or local) → texts and labels, columns detected;
* :mod:`zoo_tupate.tuning.prefix`: deep prefixes through a registered attention function;
* :mod:`zoo_tupate.tuning.methods`: building, saving and loading the tunable models;
* :mod:`zoo_tupate.tuning.encoding`: tokeniser, tokenised splits, padded and length-bucketed batches;
* :mod:`zoo_tupate.tuning.scoring`: the loss and the validation metrics;
* :mod:`zoo_tupate.tuning.device`: ``--device`` → a torch device, and its autocast;
* :mod:`zoo_tupate.tuning.config`: ``TuneConfig`` and the results a run gives back;
* :mod:`zoo_tupate.tuning.train`: ``tune(TuneConfig)`` → early/best adapters (the training loop);
* :mod:`zoo_tupate.tuning.records`: what a run writes beside them (``train_log.json``, embedding cards);
* :mod:`zoo_tupate.tuning.probe`: ``plan_probes`` / ``ensure_probes`` for ``suggest --target DATASET``.

Names are imported lazily: ``import zoo_tupate.tuning`` does not import torch.

Layer 7, beside ``hub`` (neither imports the other). May import every layer up to ``ranking``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "load_task": "data", "TaskData": "data",
    "MethodOptions": "methods", "build": "methods", "load_tuned": "loading", "LR_GRIDS": "methods",
    "METHOD_NAMES": "methods",
    "TuneConfig": "config", "TuneResult": "config", "tune": "train",
    "ProbePlan": "probe", "plan_probes": "probe", "ensure_probes": "probe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"zoo_tupate.tuning.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'zoo_tupate.tuning' has no attribute {name!r}")
