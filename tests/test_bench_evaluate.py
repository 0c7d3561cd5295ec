"""Leave-one-out evaluation of rankers against measured transfer, checked against hand-computed values."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from click.testing import CliRunner

from zoo_tupate.ranking.evaluate import bootstrap_ci, evaluate, expected_random, target_metrics


def _doc() -> dict:
    def entry(sources: dict[str, float]) -> dict:
        return {"sources": {s: {"mean": v, "std": 0.0, "n_seeds": 1, "per_seed": {"0": v}}
                            for s, v in sources.items()}}

    return {
        "seeds": [0],
        "measured": {
            "a": entry({"b": 0.8, "c": 0.6, "d": 0.7}),
            "b": entry({"a": 0.5, "c": 0.9, "d": 0.4}),
        },
        "predictions": {
            # ranks a's sources c, d, b; ranks b's sources c first; scores every target itself highest
            "x": {"a": {"a": 9.0, "b": 0.1, "c": 0.9, "d": 0.5}, "b": {"b": 9.0, "a": 0.2, "c": 0.8, "d": 0.1}},
            "perfect": {"a": {"b": 3.0, "c": 1.0, "d": 2.0}, "b": {"a": 2.0, "c": 3.0, "d": 1.0}},
        },
    }


def test_metrics_match_hand_computed_values_and_ignore_the_target_itself():
    results = evaluate(_doc(), n_boot=50)
    a = results["x"]["per_target"]["a"]
    # order c (0.6), d (0.7), b (0.8): the best source is third
    assert a["rho"] == 3
    rel_dcg = 0.0 / 1 + 0.1 / math.log2(3) + 0.2 / 2
    ideal = 0.2 / 1 + 0.1 / math.log2(3) + 0.0 / 2
    assert a["ndcg"] == pytest.approx(100 * rel_dcg / ideal)
    assert a["regret@1"] == pytest.approx(100 * (0.8 - 0.6) / 0.8)
    assert a["regret@3"] == pytest.approx(0.0)
    assert "a" not in a["top3"] and a["n_sources"] == 3
    b = results["x"]["per_target"]["b"]
    assert b["rho"] == 1 and b["regret@1"] == 0.0
    assert results["x"]["rho"] == pytest.approx(2.0)
    assert results["x"]["regret@1"] == pytest.approx((25.0 + 0.0) / 2)
    assert results["perfect"]["ndcg"] == pytest.approx(100.0)
    assert results["perfect"]["rho"] == 1.0
    # random expects rho (3 + 1) / 2 = 2 on both targets: the perfect ranking is 1 better, x is 0 better
    assert results["perfect"]["vs_random"]["rho"]["diff"] == pytest.approx(-1.0)
    assert results["x"]["vs_random"]["rho"]["diff"] == pytest.approx(0.0)


def test_random_is_the_exact_expectation_over_all_orders():
    measured = {"b": 0.8, "c": 0.6, "d": 0.7, "e": 0.7}
    orders = list(itertools.permutations(measured))
    brute = {k: sum(target_metrics(measured, list(o))[k] for o in orders) / len(orders)
             for k in ("rho", "ndcg", "regret@1", "regret@3")}
    exact = expected_random(measured)
    for key, value in brute.items():
        assert exact[key] == pytest.approx(value), key
    assert expected_random({"b": 0.8, "c": 0.6, "d": 0.7})["rho"] == 2.0


def test_bootstrap_interval_brackets_the_mean_and_collapses_for_constant_values():
    low, high = bootstrap_ci([1.0, 2.0, 3.0, 10.0], n_boot=500)
    assert low <= 4.0 <= high and low < high
    assert bootstrap_ci([2.0, 2.0, 2.0]) == [2.0, 2.0]


def test_eval_command_prints_json_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from zoo_tupate.cli import main

    matrix = tmp_path / "m.json"
    matrix.write_text(json.dumps(_doc()), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--matrix", str(matrix), "--json", "--methods", "x", "-m", "random"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"x", "random"}
    assert set(data["x"]) >= {"rho", "ndcg", "regret@1", "regret@3", "ci", "per_target"}
    assert data["random"]["rho"] == pytest.approx(2.0)
    plot = tmp_path / "p.png"
    result = runner.invoke(main, ["eval", "--matrix", str(matrix), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "perfect" in result.stderr and plot.read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    result = runner.invoke(main, ["eval", "--matrix", str(bad)])
    assert result.exit_code != 0 and "not a transfer matrix" in result.stderr


def test_targets_whose_sources_all_measure_the_same_are_left_out_unless_kept():
    doc = _doc()
    doc["measured"]["c"] = {"sources": {s: {"mean": 0.65, "std": 0.0, "n_seeds": 1, "per_seed": {"0": 0.65}}
                                        for s in ("a", "b", "d")}}
    doc["predictions"]["perfect"]["c"] = {"a": 1.0, "b": 2.0, "d": 3.0}
    skipped = evaluate(doc, methods=["perfect"], n_boot=20)["perfect"]
    assert skipped["n_targets"] == 2 and skipped["skipped_constant"] == ["c"]
    kept = evaluate(doc, methods=["perfect"], n_boot=20, skip_constant=False)["perfect"]
    assert kept["n_targets"] == 3 and kept["per_target"]["c"]["ndcg"] == 100.0
