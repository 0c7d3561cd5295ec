"""No silent zero: a signal is known for every candidate of a ranking, or dropped for it and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo_tupate.ranking.ranker.combined import score
from zoo_tupate.ranking.ranker.signals import SIGNALS, matrix_signals, missing_report, usable

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
WEIGHTS = dict.fromkeys(SIGNALS, 1.0)


def _matrix() -> dict:
    """Two targets; source ``c`` is never a target, so its majority rate is not recorded."""
    def entry(sources: dict[str, float], majority: float) -> dict:
        return {"majority_rate": majority, "metric": "accuracy", "problem": "classification",
                "sources": {s: {"mean": v, "per_seed": {"0": v}} for s, v in sources.items()}}
    return {
        "measured": {"a": entry({"b": 0.7, "c": 0.6}, 0.5), "b": entry({"a": 0.8, "c": 0.7}, 0.6)},
        "predictions": {"datasize": {"a": {"b": 100.0, "c": 1000.0}, "b": {"a": 10.0, "c": 1000.0}}},
        "probe_quality": {"init0/lora": {t: {"early": 0.7} for t in "abc"}},
    }


def test_a_signal_missing_for_one_source_is_dropped_for_the_ranking_and_reported() -> None:
    document = _matrix()
    signals = matrix_signals(document)
    assert signals["a"]["b"]["quality"] == pytest.approx(0.1)  # b's majority rate is recorded as a target
    assert signals["a"]["c"]["quality"] is None  # c's is not: None, never 0
    ranked = score(signals["a"], WEIGHTS)
    assert all("quality" not in r.parts and r.dropped == ["quality"] for r in ranked)
    assert missing_report(document) == {"a": {"quality": ["c"]}, "b": {"quality": ["c"]}}


def test_a_recorded_majority_or_regression_gives_every_source_the_signal() -> None:
    document = _matrix()
    document["probe_quality"]["init0/lora"]["c"]["majority"] = 0.5
    assert missing_report(document) == {}
    assert matrix_signals(document)["a"]["c"]["quality"] == pytest.approx(0.2)


@pytest.mark.parametrize("rows", [
    {"x": {"lora": 0.1, "size": 3.0}, "y": {"lora": 0.5, "size": None}, "z": {"lora": 0.9, "size": 5.0}},
    {"x": {"lora": None, "size": 3.0}, "y": {"lora": 0.5, "size": 4.0}},
])
def test_no_part_is_ever_computed_from_a_partially_missing_signal(rows: dict) -> None:
    kept, dropped = usable(rows)
    for name in SIGNALS:
        known = [v.get(name) is not None for v in rows.values()]
        assert (name in dropped) == (any(known) and not all(known))
        assert all(kept[s].get(name) is None for s in rows) or all(known)
    for row in score(rows, WEIGHTS):
        assert set(row.parts) <= {k for k in SIGNALS if all(v.get(k) is not None for v in rows.values())}
        assert row.dropped == dropped


@pytest.mark.parametrize("name", ["cr11-minilm-full.json", "cr11-minilm-full-probelr.json", "fresh-cpu-full.json"])
def test_every_committed_matrix_ranks_with_known_signals_or_says_which_it_dropped(name: str) -> None:
    document = json.loads((RESULTS / name).read_text(encoding="utf-8"))
    report = missing_report(document)
    for target, rows in matrix_signals(document).items():
        rows = {s: v for s, v in rows.items() if s != target}
        for signal in SIGNALS:
            missing = sorted(s for s, v in rows.items() if v.get(signal) is None)
            if missing and len(missing) < len(rows):
                assert report[target][signal] == missing  # reported, never silent


def test_explain_gain_is_bounded_calibrated_and_never_certain() -> None:
    from zoo_tupate.ranking.ranker.combined import packaged
    from zoo_tupate.ranking.ranker.gain import P_BOUNDS, GainModel

    model = GainModel.from_json(packaged()["gain"])
    assert model.half80 and packaged()["gain"]["calibration"]["loo_coverage80_nested"] == pytest.approx(0.8, abs=0.1)
    far = {"lora": 0.9, "prefix": 1.5, "size": 6.0, "quality": 0.5, "family": 1.0, "target_quality": -1.0}
    gain, p = model.predict(far)  # a probe far outside the fitted range (the +45.7 points, P 1.00 case)
    assert P_BOUNDS[0] <= p <= P_BOUNDS[1] and f"{p:.2f}" != "1.00"
    assert abs(gain) < 30  # clipped features: no linear extrapolation to tens of points
    low, high = model.interval(gain)
    assert high - low == pytest.approx(2 * model.half80)
