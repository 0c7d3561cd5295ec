"""The combined ranker (every signal, a handful of weights) and the help/hurt estimate.

One interface: :func:`combined_predictions` scores a ``bench transfer`` result file (for ``eval``);
:func:`zoo_tupate.ranking.ranker.product.explain` scores a ``suggest`` ranking. Modules: ``signals`` (what is
measured per pair), ``combined`` (weights, scoring, the shipped ``weights.json``), ``gain`` (predicted gain
and P(helps)), ``loo`` (leave-one-target-out fitting and scoring), ``product`` (``suggest``'s rows),
``layout`` (LoRA ΔW and bias vectors compared on shared modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PACKAGED_NAME = "combined/packaged"


def combined_predictions(document: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"combined/loo": scores, "combined/packaged": scores}`` for a result file.

    ``combined/loo`` refits the weights without each held-out target (see :mod:`.loo`); ``combined/packaged``
    uses the shipped weights as they are (held out only on a matrix they were not fitted on).
    """
    from zoo_tupate.ranking.ranker.loo import LOO_NAME, loo_rankings

    loo, _ = loo_rankings(document)
    return {LOO_NAME: loo, PACKAGED_NAME: packaged_predictions(document)}


def packaged_predictions(document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{target: {source: score}}`` of the combined ranker with the shipped weights (no refit)."""
    from zoo_tupate.ranking.ranker.combined import packaged_weights, score
    from zoo_tupate.ranking.ranker.signals import matrix_signals

    weights = packaged_weights()
    return {t: {r.name: r.score for r in score({s: v for s, v in rows.items() if s != t}, weights)}
            for t, rows in matrix_signals(document).items()}
