"""Probe recipes: the settings a probe is tuned with, chosen from measurements.

A probe (the short tuning run that turns a dataset into a task embedding) is only comparable with zoo
entries tuned the same way, so the settings travel with every checkpoint ``tune`` writes (the
``zoo_tupate`` block of ``adapter_config.json`` and the embedding card) and a dataset target's probe
takes them from the zoo entries it will be compared with. Where the zoo records nothing, the learning
rate comes from :data:`CALIBRATED_RATES` (per base model, each value with its measurement), else from a
short search judged by the probe's own validation score (:data:`SEARCH_RATES`), never by a ranking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Training rows a probe keeps (a seeded sample; fewer when the dataset is smaller).
PROBE_ROWS = 1000
#: Epochs of a probe: its checkpoint is the early (2-epoch) one, which ranks as well as the best one.
PROBE_EPOCHS = 2
#: Validation rows a probe is scored on (its own quality, used by the rate search and ``--ensemble``).
PROBE_EVAL_ROWS = 200
MAX_LENGTH = 128
BATCH_SIZE = 32
INIT_SEED = 0
SEED = 0


@dataclass(frozen=True)
class Rate:
    """A learning rate and the measurement it comes from."""

    lr: float
    evidence: str


_MINILM_EVIDENCE = ("mean best validation score of 3-epoch probes on 1,000 rows of SST-2, SciTail, MNLI and "
                    "QNLI ({}); docs/prediction-quality.md, 'Probes at calibrated learning rates'")

#: Per base model (its normalised identity, as in space names) and method: the calibrated probe learning rate.
CALIBRATED_RATES: dict[str, dict[str, Rate]] = {
    "sentence-transformers/all-minilm-l6-v2": {
        "lora": Rate(2e-3, _MINILM_EVIDENCE.format("66.9 at 2e-3 vs 60.6 at 5e-4")),
        "bitfit": Rate(2e-3, _MINILM_EVIDENCE.format("62.25 at 2e-3 vs 51.0 at 4e-4 and 59.75 at 1e-2")),
        "prefix": Rate(1e-2, _MINILM_EVIDENCE.format("1e-2, the paper's first rate, learned; 1e-3 was not tried")),
    },
}

#: Candidate rates of the automatic search for a base model without a calibrated rate (the paper's grid
#: plus the rate calibrated on MiniLM, low to high).
SEARCH_RATES: dict[str, tuple[float, ...]] = {
    "lora": (5e-4, 2e-3),
    "bitfit": (4e-4, 2e-3),
    "prefix": (1e-3, 1e-2),
    "bottleneck": (1e-4, 1e-3),  # AdapterHub's pf adapters were trained at 1e-4 (Poth et al., 2021)
}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a probe's embedding besides its data (recorded in every card ``tune`` writes)."""

    lr: float | None  # None: search SEARCH_RATES by the probe's own validation score
    lr_source: str  # "zoo", "calibrated", "search", or "given"
    max_train: int | None = PROBE_ROWS
    max_eval: int | None = PROBE_EVAL_ROWS
    epochs: int = PROBE_EPOCHS
    max_length: int = MAX_LENGTH
    batch_size: int = BATCH_SIZE
    init_seed: int = INIT_SEED
    seed: int = SEED

    def to_json(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return asdict(self)


#: Keys of a checkpoint's ``zoo_tupate`` metadata that a probe copies (the recipe minus the rate's origin).
RECORDED_KEYS: tuple[str, ...] = ("lr", "max_train", "max_eval", "epochs", "max_length", "batch_size",
                                  "init_seed", "seed")


def calibrated_rate(base_model_id: str, method: str) -> Rate | None:
    """The calibrated learning rate of ``method`` on ``base_model_id``, if one was measured."""
    return CALIBRATED_RATES.get(base_model_id, {}).get(method)


def default_recipe(base_model_id: str, method: str) -> Recipe:
    """The recipe of a probe when the zoo records none: calibrated rate, else a search."""
    rate = calibrated_rate(base_model_id, method)
    if rate is not None:
        return Recipe(lr=rate.lr, lr_source="calibrated")
    return Recipe(lr=None, lr_source="search")


def search_rates(method: str) -> tuple[float, ...]:
    """The candidate rates of the automatic search for ``method``."""
    return SEARCH_RATES[method]
