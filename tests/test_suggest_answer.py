"""``suggest``'s answer as a user sees it: one list, one row per source, one sentence of advice, readable at 80
columns in a pipe; catalog names checked before the Hub (the typo gets "did you mean")."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo_tupate.answer.single_list import Effect, SourceRow, advice, close_to_first
from zoo_tupate.cli import main
from zoo_tupate.store.starter import STARTER_TASKS

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "COLUMNS": "80"}


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], env=OFFLINE, terminal_width=80)


def piped(home: Path, *args: str) -> str:
    """The command's stdout and stderr as a pager or a file gets them (neither is a terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", str(home), *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    return done.stdout


def test_suggest_prints_one_list_one_row_per_source_with_advice_and_footer(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "suggest", "--target", "glue/rte")
    assert done.exit_code == 0, done.stderr
    text = done.stderr
    assert text.count("Train on ") == 1 and "How sure:" in text  # one sentence of advice, above the table
    assert text.index("Train on ") < text.index("┏")
    rows = [line for line in text.splitlines() if line.startswith("│")]
    names = [re.split(r"\s*│\s*", line)[2] for line in rows]
    assert len(names) == 10 and len(set(names)) == 10  # one row per source, not one per (source, space)
    assert set(names) <= set(STARTER_TASKS.values()) and "glue/rte" not in names
    for header in ("score", "prefix", "rows", "effect [80%]"):
        assert header in text
    assert "score: source size (log10 training rows)" in text  # the footer says what the (default) score is
    assert max(len(line) for line in text.splitlines()) <= 80


def test_json_carries_the_advice_each_source_and_the_per_space_rows(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "suggest", "--target", "glue/rte", "--json")
    assert done.exit_code == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["advice"].startswith("Train on ") and out["footer"].startswith("score:")
    sources = out["sources"]
    assert [s["rank"] for s in sources] == list(range(1, 11)) and len({s["name"] for s in sources}) == 10
    assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)
    first = sources[0]
    assert out["advice"].startswith(f"Train on {first['name']} first")
    for s in sources:
        assert set(s["similarity"]) == {"lora/delta", "prefix/raw"} and s["size"] > 0
        assert s["effect"]["low"] < s["effect"]["gain"] < s["effect"]["high"] and "points" in s["effect"]["units"]
        # the default order is the recorded decision (ranking/ranker/default.json): size, then similarity
        assert s["score"] == pytest.approx(math.log10(s["size"])) and s["score_space"] == ""
    assert {(r["method"], r["repr"]) for r in out["rows"]} == {("lora", "delta"), ("prefix", "raw")}


def test_by_space_keeps_one_table_per_space(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "suggest", "--target", "glue/rte", "--by-space")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("│ glue/mnli") == 2 and "Train on" not in done.stderr
    listed = json.loads(cli(tmp_path / "home", "suggest", "--target", "glue/rte", "--by-space", "--json").stdout)
    assert isinstance(listed, list) and len(listed) == 20


def test_explain_is_one_block_per_source_within_80_columns(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "suggest", "--target", "glue/rte", "--explain")
    assert done.exit_code == 0, done.stderr
    text = done.stderr
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    heads = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(heads) == 10
    for word in ("similarity: LoRA ΔW", "prefix", "effect:", "80%", "helps with probability", "combined ranker:"):
        assert text.count(word) >= 10, word


@pytest.mark.parametrize("args", [
    ("suggest", "--target", "glue/rte"),
    ("suggest", "--target", "glue/rte", "--explain"),
    ("suggest", "--target", "glue/rte", "--by-space", "--explain"),
    ("suggest", "--target", "glue/rte", "--by-space", "--wide"),
    ("eval", "--matrix", "docs/results/cr11-minilm-full.json", "--all", "--bootstrap", "20", "--combined"),
    ("index", "ls"),
])
def test_every_table_is_readable_at_80_columns_in_a_pipe(tmp_path: Path, args: tuple[str, ...]) -> None:
    text = piped(tmp_path / "home", *args)
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "…" not in text  # no number (nor name) cut short
    if args[0] == "eval":  # every interval whole: "4.73 [3.57, 6.39]", never one character per line
        intervals = re.findall(r"[-+]?\d+\.\d+ \[[-+]?\d+\.\d+, [-+]?\d+\.\d+\]", text)
        results = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
        assert len(intervals) >= 4 * len(results)
    if args[0] == "suggest" and "--by-space" not in args:
        out = json.loads(CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *args, "--json"],
                                            env=OFFLINE).stdout)
        for s in out["sources"]:
            assert f"{s['score']:.{4 if '--explain' in args else 3}f}" in text


@pytest.mark.parametrize(("target", "said"), [
    ("glue/rtee", "unknown task glue/rtee; did you mean glue/rte"),
    ("rtee", "unknown task rtee; did you mean glue/rte?"),
    ("glue/no-such-task", "unknown task glue/no-such-task"),
    ("qa/squad", "zoo-tupate pull qa/squad"),
])
def test_a_catalog_typo_gets_did_you_mean_not_a_hub_error(tmp_path: Path, target: str, said: str) -> None:
    done = cli(tmp_path / "home", "suggest", "--target", target)
    assert done.exit_code != 0 and said in done.stderr
    assert "HF_HUB_OFFLINE" not in done.stderr and "Traceback" not in done.stderr


def test_a_bare_catalog_name_is_taken_as_its_task(tmp_path: Path) -> None:
    bare = cli(tmp_path / "home", "suggest", "--target", "rte", "--json")
    full = cli(tmp_path / "home", "suggest", "--target", "glue/rte", "--json")
    assert bare.exit_code == 0 and "taken as the catalog task glue/rte" in bare.stderr
    assert json.loads(bare.stdout)["sources"] == json.loads(full.stdout)["sources"]


def _row(rank: int, name: str, score: float, p: float = 0.7) -> SourceRow:
    return SourceRow(rank=rank, name=name, score=score, score_space="lora/delta", size=1000,
                     similarity={"lora/delta": score}, effect=Effect(3.0 * (p - 0.5), -10.0, 12.0, p),
                     zoo="user", source="")


def test_advice_names_the_close_sources_and_says_why_it_is_sure_or_not() -> None:
    rows = [_row(1, "a", 0.50), _row(2, "b", 0.49), _row(3, "c", 0.30), _row(4, "d", 0.10)]
    assert [r.name for r in close_to_first(rows)] == ["b"]
    said = advice(rows, fitted=True)
    assert said.startswith("Train on a first; b is close. How sure: somewhat, because")
    assert "80% interval" in said and "spans 0" in said
    unhelpful = [_row(1, "a", 0.5, p=0.4), _row(2, "b", 0.1, p=0.3)]
    assert advice(unhelpful, fitted=True).startswith("Train on the target alone: no source is likely to help")
    assert "unmeasured" in advice(rows, fitted=False)
