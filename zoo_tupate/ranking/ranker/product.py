"""The combined ranker and the gain model applied to a ``suggest`` ranking (per-source parts, help estimate).

``suggest`` stacks one row per (source, space); here the rows are grouped by source and each source gets
its signals: the LoRA and prefix cosines from its rows, its size (the catalog's ``train_size`` when the
name is a catalog task, else the rows its card records), its probe quality (when its card records a
``probe_margin``) and the family match with the target (when both are known tasks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from zoo_tupate.ranking.ranker.combined import packaged, score
from zoo_tupate.ranking.ranker.gain import GainModel, pair_features
from zoo_tupate.ranking.ranker.signals import Signals, same_family, task_key
from zoo_tupate.ranking.result import Ranking, Suggestion

#: P(helps) below which a source is not "likely to help".
LIKELY = 0.5
#: The base model whose probes the weights and the gain model were fitted on (docs/results/cr11-minilm-*).
FITTED_BASE = "sentence-transformers/all-minilm-l6-v2"


def fitted_for(ranking: Ranking) -> bool:
    """Whether the ranking compares probes of the base model and methods the gain model was fitted on."""
    from zoo_tupate.embedding.space import parse_space

    rows = list(ranking)
    return bool(rows) and all(parse_space(r.space)["base_model"] == FITTED_BASE and r.method in ("lora", "prefix")
                              for r in rows)


@dataclass
class Explained:
    """One source: combined score, its parts, the signals behind them and the gain estimate (points: 100 × the
    target's validation metric, as in the transfer matrix and ``--verify``; ``gain_low``/``gain_high``: the
    80% interval)."""

    name: str
    score: float
    parts: dict[str, float]
    signals: Signals
    gain: float
    gain_low: float
    gain_high: float
    p_helps: float
    rows: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # signals dropped for this ranking: not known for every source

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@lru_cache(maxsize=1)
def _catalog_sizes() -> dict[str, int]:
    from zoo_tupate.cards.catalog import load_catalog

    try:
        return {task_key(card.name): int(card.train_size) for card in load_catalog().values()}
    except Exception:  # noqa: BLE001 - a broken catalog only removes the size signal
        return {}


def source_size(name: str, metadata: Mapping[str, Any]) -> int | None:
    """The catalog's ``train_size`` for a catalog task name, else the rows the card records."""
    size = _catalog_sizes().get(task_key(name))
    if size:
        return size
    config = metadata.get("config") if isinstance(metadata.get("config"), Mapping) else {}
    rows = metadata.get("train_size", config.get("train_size"))
    return int(rows) if isinstance(rows, int | float) and rows > 0 else None


def signals_of(rows: list[Suggestion], target_name: str | None) -> Signals:
    """A source's signals from its ``suggest`` rows (one per space)."""
    import math

    by_method = {(r.method, r.repr or "raw"): r.score for r in rows}
    lora = by_method.get(("lora", "delta"), by_method.get(("lora", "raw")))
    size = source_size(rows[0].name, rows[0].metadata)
    quality = rows[0].metadata.get("probe_margin")
    return {"lora": lora, "prefix": by_method.get(("prefix", "raw")),
            "size": math.log10(size) if size else None,
            "quality": float(quality) if isinstance(quality, int | float) else None,
            "family": same_family(target_name, rows[0].name) if target_name else None}


def explain(ranking: Ranking, target_name: str | None = None,
            target_quality: float | None = None) -> list[Explained]:
    """Every source of ``ranking`` with its combined score, parts and gain estimate, best first."""
    grouped: dict[str, list[Suggestion]] = {}
    for row in ranking:
        grouped.setdefault(row.name, []).append(row)
    shipped = packaged()
    weights = shipped["ranking"]["weights"]
    model = GainModel.from_json(shipped["gain"])
    signals = {name: signals_of(rows, target_name) for name, rows in grouped.items()}
    out = []
    for scored in score(signals, weights):
        gain, p = model.predict(pair_features(scored.signals, target_quality))
        low, high = model.interval(gain)
        out.append(Explained(name=scored.name, score=scored.score, parts=scored.parts, signals=scored.signals,
                             gain=gain, gain_low=low, gain_high=high,
                             p_helps=p, rows=[f"{r.method}/{r.repr or 'raw'}" for r in grouped[scored.name]],
                             dropped=scored.dropped))
    return out


def verdict(explained: list[Explained]) -> str | None:
    """A plain sentence when no source is likely to help, else ``None``."""
    if explained and all(e.p_helps < LIKELY for e in explained):
        best = max(explained, key=lambda e: e.p_helps)
        return (f"no candidate is likely to help: the best, {best.name}, helps with probability "
                f"{best.p_helps:.2f} (predicted {best.gain:+.1f} points, 80% [{best.gain_low:+.1f}, "
                f"{best.gain_high:+.1f}]); training on the target alone is the safer choice")
    return None
