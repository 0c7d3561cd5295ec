"""suggest's default order is the pre-registered rule's winner, recorded in zoo_tupate/ranking/ranker/default.json."""

from __future__ import annotations

import math

from zoo_tupate.ranking.ranker.default import (
    DEFAULT_FILE,
    DEFAULT_SCORE_LABEL,
    LABELS,
    decision,
    default_method,
    default_notes,
    default_order,
)
from zoo_tupate.ranking.result import Ranking, Suggestion

CANDIDATES = ("datasize", "prior", "embedding", "prior+embedding", "size+embedding")


def _rule(measured: dict) -> str:
    """docs/prediction-quality-v3-prereg.md §4, re-applied to the measurement the file records."""
    primary, secondary = measured["primary"], measured["secondary"]
    qualified = [n for n in CANDIDATES if n != "datasize" and primary["beats_datasize"].get(n)
                 and secondary["means"][n]["rho"] <= secondary["means"]["datasize"]["rho"]
                 and secondary["means"][n]["ndcg"] >= secondary["means"]["datasize"]["ndcg"]]
    return max(qualified, key=lambda n: primary["means"][n]["ndcg"]) if qualified else "datasize"


def test_the_code_default_is_the_recorded_winner_of_the_rule() -> None:
    record = decision()
    assert DEFAULT_FILE.name == "default.json" and record["prereg"].endswith("prediction-quality-v3-prereg.md")
    assert default_method() == record["winner"] == _rule(record["measured"])
    assert DEFAULT_SCORE_LABEL == LABELS[record["winner"]]
    for part in ("primary", "secondary"):
        assert {"datasize", record["winner"]} <= set(record["measured"][part]["means"])


def _row(name: str, value: float, metadata: dict | None = None) -> Suggestion:
    return Suggestion(rank=1, name=name, score=value, method="lora", space="m/lora/delta/lm/x", repr="delta",
                      source="test", methods=["lora"], metadata=metadata or {})


def test_default_order_keys_on_the_winner_then_similarity_and_says_what_it_could_not_place() -> None:
    ranking = Ranking(rows=[_row("glue/wnli", 0.9), _row("nli/snli", 0.1), _row("glue/rte", 0.5),
                            _row("my-own", 0.95), _row("my-other", 0.2)])
    order = default_order(ranking, target_name="glue/mrpc")
    names = [n for n, _ in order]
    assert set(names) == {"glue/wnli", "nli/snli", "glue/rte", "my-own", "my-other"}
    if default_method() == "datasize":
        assert names == ["nli/snli", "glue/rte", "glue/wnli", "my-own", "my-other"]  # 570k > 2.5k > 634 rows
        assert all(math.isnan(s) for n, s in order if n.startswith("my-"))
        assert "my-other, my-own" in default_notes(ranking)[0]
    assert default_notes(Ranking(rows=ranking.rows[:3])) == []
