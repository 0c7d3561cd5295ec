"""The Hub commands as a user runs them: pull / push / card publish / suggest --target org/name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures_hub import publish_adapter
from hub_server import HubServer

from zoo_tupate.cli import main
from zoo_tupate.hub import publish_card, pull
from zoo_tupate.store.index import Index


def run(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


def _retrained(folder: Path, dest: Path) -> Path:
    """A copy of an adapter with slightly different weights (the same task, trained again)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    shutil.copytree(folder, dest)
    tensors = load_file(dest / "adapter_model.safetensors")
    rng = np.random.default_rng(0)
    save_file({k: v + rng.normal(0, 1e-3, v.shape).astype(v.dtype) for k, v in tensors.items()},
              dest / "adapter_model.safetensors")
    return dest


@pytest.fixture
def zoo_on_hub(hub_server: HubServer, tiny_zoo) -> HubServer:
    for task in ("sst2", "imdb", "mnli"):
        publish_adapter(hub_server, f"org/{task}", tiny_zoo[task], base_model=tiny_zoo.base_model)
    return hub_server


def test_pull_prints_a_summary_and_exits_1_when_a_repo_fails(zoo_on_hub: HubServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(home, "pull", "org/sst2", "org/imdb", "org/ghost")
    assert result.exit_code == 1
    for text in ("org/sst2", "org/imdb", "indexed", "org/ghost", "failed", "repo not found", "1 of 3 repos failed"):
        assert text in result.stderr
    assert result.stdout == ""

    again = run(home, "pull", "org/sst2", "org/mnli", "--json")
    assert again.exit_code == 0
    rows = json.loads(again.stdout)
    assert [(r["repo"], r["outcome"]) for r in rows] == [("org/sst2", "unchanged"), ("org/mnli", "indexed")]
    assert rows[1]["source"] == f"org/mnli@{zoo_on_hub.head('org/mnli')}"


def test_pull_revision_option_and_methods_choice(zoo_on_hub: HubServer, tmp_path: Path) -> None:
    sha = zoo_on_hub.head("org/sst2")
    result = run(tmp_path / "home", "pull", "org/sst2", "--revision", sha[:10], "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["sha"] == sha
    assert run(tmp_path / "home", "pull", "org/sst2", "--methods", "nonsense").exit_code == 2


def test_suggest_accepts_a_hub_adapter_repo_and_a_card_repo_as_target(
    zoo_on_hub: HubServer, tiny_zoo, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert run(home, "pull", "org/sst2", "org/imdb", "org/mnli").exit_code == 0
    publish_adapter(zoo_on_hub, "other/sst2-again", _retrained(tiny_zoo["sst2"], tmp_path / "sst2-again"))
    result = run(home, "suggest", "--target", "other/sst2-again", "--json", "--by-space")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["name"] == "org/sst2" and rows[0]["score"] > 0.99 > rows[1]["score"]
    downloaded = {r.path.rsplit("/", 1)[-1] for r in zoo_on_hub.downloads("other/sst2-again")}
    assert "model.safetensors" not in downloaded and "adapter_model.safetensors" in downloaded

    itself = json.loads(run(home, "suggest", "--target", f"org/imdb@{zoo_on_hub.head('org/imdb')}", "--json", "--by-space").stdout)
    assert "org/imdb" not in {r["name"] for r in itself}  # the target is never ranked

    publish_card(_retrained(tiny_zoo["mnli"], tmp_path / "mnli-again"), "cards/mnli", Index(tmp_path / "elsewhere"))
    by_card = json.loads(run(home, "suggest", "--target", "hub:cards/mnli", "--json", "--by-space").stdout)
    assert by_card[0]["name"] == "org/mnli" and by_card[0]["score"] > 0.99 > by_card[1]["score"]
    assert not zoo_on_hub.downloads("cards/mnli", "adapter_model.safetensors")


def test_suggest_with_a_missing_hub_target_is_one_error_line(zoo_on_hub: HubServer, tmp_path: Path) -> None:
    run(tmp_path / "home", "pull", "org/sst2")
    result = run(tmp_path / "home", "suggest", "--target", "org/ghost")
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "org/ghost" in result.stderr


def test_push_and_card_publish_commands(zoo_on_hub: HubServer, tiny_zoo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    pushed = run(home, "push", str(tiny_zoo["qnli"]), "--repo", "me/qnli", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads(pushed.stdout)["created"] is True
    refused = run(home, "push", str(tiny_zoo["qnli"]), "--repo", "org/sst2")
    assert refused.exit_code == 1 and "not created by zoo-tupate" in refused.stderr

    run(home, "pull", "org/mnli")
    card = run(home, "card", "publish", "org/mnli", "--repo", "me/mnli-card", "--task", "glue/mnli")
    assert card.exit_code == 0, card.stderr
    assert "me/mnli-card" in card.stderr
    assert "glue/mnli" in zoo_on_hub.repo_files("me/mnli-card")["task_embedding.safetensors"].decode("latin-1")


def test_the_token_never_appears_in_output_or_files(zoo_on_hub: HubServer, tiny_zoo, tmp_path: Path) -> None:
    token = zoo_on_hub.token  # type: ignore[attr-defined]
    home = tmp_path / "home"
    zoo_on_hub.echo_auth(r"^/api/models/org/imdb$", 400)  # a server that puts the token in its errors
    zoo_on_hub.echo_auth(r"/commit/", 403, times=1)
    outputs = []
    for args in (["pull", "org/sst2", "org/imdb", "org/ghost", "--json"], ["pull", "org/imdb"],
                 ["push", str(tiny_zoo["qnli"]), "--repo", "me/qnli"],
                 ["push", str(tiny_zoo["qnli"]), "--repo", "me/qnli"],
                 ["card", "publish", "org/sst2", "--repo", "me/sst2-card"],
                 ["suggest", "--target", "org/imdb"]):
        result = run(home, *args)
        outputs.append(result.stdout + result.stderr)
    assert "rejected request with Authorization" in outputs[0]  # the leak was there to catch
    assert any(r.authorized for r in zoo_on_hub.requests if "/commit/" in r.path)  # the token was used
    # and a fresh process (the installed entry point), which reads the token from the environment
    proc = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", str(home), "pull", "org/imdb", "org/mnli"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert proc.returncode == 1 and "org/mnli" in proc.stderr
    outputs.append(proc.stdout + proc.stderr)
    for text in outputs:
        assert token not in text and token[3:] not in text
    for root in (tmp_path, zoo_on_hub.store.root):
        for file in Path(root).rglob("*"):
            if file.is_file():
                assert token.encode() not in file.read_bytes(), file


def test_pull_search_shows_what_it_found_first(hub_server: HubServer, tiny_zoo, tmp_path: Path) -> None:
    publish_adapter(hub_server, "alice/tiny-sst2-lora", tiny_zoo["sst2"])
    result = run(tmp_path / "home", "pull", "sst2", "--base-model", "zoo-tests/tiny-bert", "--search")
    assert result.exit_code == 0, result.stderr
    found_at = result.stderr.index("found 1 PEFT adapter repo")
    assert result.stderr.index("pulled 1 repo") > found_at
    assert [e.name for e in Index(tmp_path / "home").entries()][:1] == ["alice/tiny-sst2-lora"]
    assert pull(["alice/tiny-sst2-lora"], Index(tmp_path / "home"), progress=False)[0].outcome == "unchanged"
