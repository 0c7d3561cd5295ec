"""``suggest --explain`` and the help verdict, through the CLI on tiny real PEFT checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import make_checkpoint

from zoo_tupate.cli import main


def run(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args])


def test_suggest_explain_shows_the_parts_and_the_gain(tmp_path: Path, home: Path) -> None:
    names = ["rte", "mnli", "cola", "mine"]
    paths = [make_checkpoint(tmp_path / name, perturb_seed=i + 1) for i, name in enumerate(names)]
    assert run(home, "index", "add", *map(str, paths), "--repr", "both").exit_code == 0
    plain = run(home, "suggest", "--target", "rte", "--json", "--by-space")
    assert plain.exit_code == 0, plain.stderr
    explained = run(home, "suggest", "--target", "rte", "--json", "--explain", "--by-space")
    assert explained.exit_code == 0, explained.stderr
    rows = {r["name"]: r for r in json.loads(explained.stdout)}
    assert set(rows) == {r["name"] for r in json.loads(plain.stdout)} == {"mnli", "cola", "mine"}
    for row in rows.values():
        assert row["score"] == sum(row["parts"].values())
        assert row["gain_low"] < row["gain"] < row["gain_high"] and 0 <= row["p_helps"] <= 1
        assert row["rows"] == ["lora/delta"]
    assert rows["mnli"]["signals"]["family"] == 1.0 and rows["cola"]["signals"]["family"] == 0.0
    assert rows["mnli"]["signals"]["size"] > rows["cola"]["signals"]["size"]  # catalog train sizes
    assert "family" not in rows["mine"]["parts"] and "size" not in rows["mine"]["parts"]  # unknown task
    table = run(home, "suggest", "--target", "rte", "--explain", "--by-space")
    assert table.exit_code == 0 and "combined ranker" in table.stderr and "n/a" in table.stderr
    # the one list: the same parts per source; no effect, the gain model knows nothing of this base model
    answer = json.loads(run(home, "suggest", "--target", "rte", "--json", "--explain").stdout)
    assert {s["name"]: s["parts"] for s in answer["sources"]} == {n: r["parts"] for n, r in rows.items()}
    assert all(s["effect"] is None for s in answer["sources"]) and "unmeasured" in answer["advice"]
    blocks = run(home, "suggest", "--target", "rte", "--explain")
    assert "effect: not predicted" in blocks.stderr and "combined ranker:" in blocks.stderr
