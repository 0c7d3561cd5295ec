"""The combined ranker, the gain model and their leave-one-target-out evaluation (zoo_tupate.ranking.ranker)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo_tupate.cli import main
from zoo_tupate.ranking.ranker.combined import packaged, score
from zoo_tupate.ranking.ranker.gain import p_helps
from zoo_tupate.ranking.ranker.loo import auc, full_fit, loo_gains, loo_rankings
from zoo_tupate.ranking.ranker.product import explain, verdict
from zoo_tupate.ranking.ranker.signals import same_family, zscores
from zoo_tupate.ranking.result import Ranking, Suggestion

MATRIX = Path(__file__).resolve().parents[1] / "docs" / "results" / "cr11-minilm-full-probelr.json"


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(MATRIX.read_text(encoding="utf-8"))


def test_zscores_and_parts_sum_to_the_score() -> None:
    rows = {"a": {"lora": 0.9, "size": 5.0, "family": 1.0}, "b": {"lora": 0.1, "size": 3.0, "family": None},
            "c": {"lora": 0.5, "size": 4.0, "family": 0.0}}
    z = zscores(rows)
    assert z["b"]["family"] == 0.0 and z["a"]["prefix"] == 0.0  # missing -> no contribution
    assert z["a"]["lora"] == pytest.approx(-z["b"]["lora"])
    ranked = score(rows, {"lora": 1.0, "size": 0.5, "family": 2.0})
    assert [r.name for r in ranked] == ["a", "c", "b"]  # family is not known for b: dropped for everyone
    for row in ranked:
        assert row.score == pytest.approx(sum(row.parts.values()))
        assert "family" not in row.parts and row.dropped == ["family"]


def test_families_are_fixed_and_unknown_tasks_have_none() -> None:
    assert same_family("glue/mnli", "nli/snli") == 1.0
    assert same_family("mrpc", "sst2") == 0.0
    assert same_family("my-task", "mnli") is None


def test_loo_never_sees_the_held_out_target(document: dict) -> None:
    before, _ = loo_rankings(document)
    changed = copy.deepcopy(document)
    for value in changed["measured"]["rte"]["sources"].values():  # scramble rte's own row
        value["mean"] = -value["mean"]
    after, weights = loo_rankings(changed)
    assert after["rte"] == before["rte"]
    assert after["mnli"] != before["mnli"]  # other folds do learn from rte's row
    assert set(weights) == set(document["measured"])


def test_shipped_weights_are_the_full_fit_of_the_committed_matrix(document: dict) -> None:
    weights, model = full_fit(document)
    shipped = packaged()
    assert shipped["matrix"] == MATRIX.name
    assert shipped["ranking"]["weights"] == pytest.approx(weights)
    assert shipped["gain"]["coef"] == pytest.approx(model.coef)
    assert len(weights) == 5


def test_auc_and_p_helps() -> None:
    assert auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auc([0.1, 0.2, 0.9], [True, True, False]) == 0.0
    assert auc([0.5, 0.5], [True, False]) == 0.5
    assert p_helps(0.0, 1.0) == pytest.approx(0.5)
    assert p_helps(-2.0, 1.0) < 0.05 < 0.95 < p_helps(2.0, 1.0)


def test_loo_gains_cover_every_pair(document: dict) -> None:
    pairs = loo_gains(document)
    assert len(pairs) == 110
    assert all(0.0 <= p["p_helps"] <= 1.0 and p["sigma"] > 0 for p in pairs)
    assert sum(p["gain"] > 0 for p in pairs) == 32


def test_eval_scores_the_combined_ranker(document: dict) -> None:
    result = CliRunner().invoke(main, ["eval", "--matrix", str(MATRIX), "--combined", "--json",
                                       "-m", "combined/*", "-m", "random", "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert set(scored) == {"combined/loo", "combined/packaged", "random"}
    assert scored["combined/loo"]["n_targets"] == 11
    assert scored["random"]["rho"] == pytest.approx(5.333, abs=1e-3)  # the documented tie rule


def _row(name: str, method: str, repr_: str, value: float) -> Suggestion:
    return Suggestion(rank=1, name=name, score=value, method=method, space=f"m/{method}/{repr_}/lm/x",
                      repr=repr_, source="test", methods=[method], metadata={})


def test_explain_groups_rows_by_source_and_gives_parts_and_gain() -> None:
    ranking = Ranking(rows=[_row("glue/mnli", "lora", "delta", 0.9), _row("glue/mnli", "prefix", "raw", 0.8),
                            _row("glue/cola", "lora", "delta", 0.1), _row("glue/cola", "prefix", "raw", 0.2),
                            _row("my-own", "lora", "delta", 0.5)])
    rows = explain(ranking, target_name="glue/rte")
    assert [r.name for r in rows][0] == "glue/mnli"
    mnli = rows[0]
    # my-own has no prefix row, no size, no family: those are dropped for the whole ranking, and said
    assert set(mnli.parts) == {"lora"} and mnli.dropped == ["prefix", "size", "family"]
    assert mnli.signals["family"] == 1.0 and mnli.rows == ["lora/delta", "prefix/raw"]
    assert mnli.gain_low < mnli.gain < mnli.gain_high
    own = next(r for r in rows if r.name == "my-own")
    assert set(own.parts) == {"lora"} and own.dropped == mnli.dropped
    known = explain(Ranking(rows=ranking.rows[:4]), target_name="glue/rte")
    assert set(known[0].parts) == {"lora", "prefix", "size", "family"} and known[0].dropped == []


def test_verdict_says_plainly_when_nothing_is_likely_to_help() -> None:
    ranking = Ranking(rows=[_row("glue/cola", "lora", "delta", 0.1), _row("glue/wnli", "lora", "delta", 0.0)])
    rows = explain(ranking, target_name="glue/stsb")
    for row in rows:
        row.p_helps = 0.2
    assert "no candidate is likely to help" in verdict(rows)
    rows[0].p_helps = 0.7
    assert verdict(rows) is None
