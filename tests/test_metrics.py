"""Metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from zoo_tupate.ranking.metrics import dcg, ndcg, regret_at, rho

MEASURED = {"a": 70.0, "b": 80.0, "c": 60.0, "d": 75.0}


def test_rho_is_position_of_best_source() -> None:
    assert rho(MEASURED, ["b", "a", "c", "d"]) == 1
    assert rho(MEASURED, ["a", "d", "c", "b"]) == 4
    assert rho(MEASURED, ["d", "b", "a", "c"]) == 2


def test_ndcg_hand_computed() -> None:
    # relevances = measured - 60: a 10, b 20, c 0, d 15
    predicted = ["a", "b", "c", "d"]
    got = dcg([10, 20, 0, 15])
    expected_dcg = 10 / math.log2(2) + 20 / math.log2(3) + 0 / math.log2(4) + 15 / math.log2(5)
    assert got == pytest.approx(expected_dcg)
    ideal = 20 / math.log2(2) + 15 / math.log2(3) + 10 / math.log2(4) + 0
    assert ndcg(MEASURED, predicted) == pytest.approx(100 * expected_dcg / ideal)
    assert ndcg(MEASURED, ["b", "d", "a", "c"]) == pytest.approx(100.0)


def test_regret_hand_computed() -> None:
    predicted = ["a", "d", "b", "c"]
    assert regret_at(MEASURED, predicted, 1) == pytest.approx(100 * (80 - 70) / 80)
    assert regret_at(MEASURED, predicted, 2) == pytest.approx(100 * (80 - 75) / 80)
    assert regret_at(MEASURED, predicted, 3) == 0.0


def test_bad_rankings_are_rejected() -> None:
    with pytest.raises(ValueError):
        rho(MEASURED, [])
    with pytest.raises(ValueError):
        ndcg(MEASURED, ["a", "zzz"])
    with pytest.raises(ValueError):
        regret_at(MEASURED, ["a", "a"], 1)
