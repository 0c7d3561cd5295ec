"""Where the transfer run keeps a measured pair and a trained model in its cache (see bench.transfer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TransferConfig


def pair_path(config: TransferConfig, source: str, target: str, seed: int) -> Path:
    """One measured transfer (``source`` ``-`` for the target-only score)."""
    return config.transfer_dir() / "pairs" / f"{source}__{target}__s{seed}.json"


def model_path(config: TransferConfig, role: str, task: str, seed: int) -> Path:
    """A saved model: ``role`` ``source`` (transferable weights) or ``target`` (the target-only model)."""
    return config.transfer_dir() / "models" / f"{role}-{task}-s{seed}.pt"
