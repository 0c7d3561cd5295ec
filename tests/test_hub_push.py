"""``push`` and ``publish_card`` against the local Hub server, and pulling back what they uploaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer
from huggingface_hub import ModelCard

from zoo_tupate import Index, embed
from zoo_tupate.cards.cardfile import read_card
from zoo_tupate.core.errors import HubError
from zoo_tupate.hub import publish_card, pull, push


def _adapter_with_clutter(zoo, task: str, tmp_path: Path) -> Path:
    """A tuned folder as a user has it: adapter files plus base weights and training leftovers."""
    folder = tmp_path / f"{task}-run"
    shutil.copytree(zoo[task], folder)
    shutil.copyfile(zoo.base_model / "model.safetensors", folder / "model.safetensors")
    (folder / "optimizer.pt").write_bytes(b"\x00" * 64)
    return folder


def test_push_then_pull_round_trip(hub_server: HubServer, tiny_zoo, tmp_path: Path) -> None:
    folder = _adapter_with_clutter(tiny_zoo, "imdb", tmp_path)
    result = push(folder, "me/imdb-lora")
    assert result.created
    files = hub_server.repo_files("me/imdb-lora")
    assert set(files) == {".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors",
                          "task_embedding.safetensors", "zoo_tupate.json"}
    assert files["adapter_model.safetensors"] == (tiny_zoo["imdb"] / "adapter_model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert "zoo-tupate" in card.data.tags and card.data.library_name == "peft"
    assert json.loads(files["zoo_tupate.json"])["created_by"] == "zoo-tupate"
    assert result.commit == hub_server.head("me/imdb-lora")

    index = Index(hub_server.zoo_home)  # type: ignore[attr-defined]
    [pulled] = pull(["me/imdb-lora"], index, progress=False)
    assert (pulled.outcome, pulled.kind, pulled.sha) == ("indexed", "adapter", result.commit)
    entry = next(e for e in index.get("me/imdb-lora") if e.repr == "raw")
    np.testing.assert_allclose(index.vectors([entry])[0], embed(tiny_zoo["imdb"]).vector, rtol=1e-6)


def test_push_again_to_its_own_repo_updates_it(hub_server: HubServer, tiny_zoo, tmp_path: Path) -> None:
    push(tiny_zoo["sst2"], "me/task")
    second = push(tiny_zoo["mnli"], "me/task")
    assert not second.created
    assert (hub_server.repo_files("me/task")["adapter_model.safetensors"]
            == (tiny_zoo["mnli"] / "adapter_model.safetensors").read_bytes())


def test_push_never_overwrites_a_repo_it_did_not_create(hub_server: HubServer, tiny_zoo) -> None:
    hub_server.commit_files("someone/model", {"README.md": "their card", "adapter_config.json": "{}"})
    before = hub_server.head("someone/model")
    with pytest.raises(HubError, match="not created by zoo-tupate.*README.md, adapter_config.json"):
        push(tiny_zoo["sst2"], "someone/model")
    assert hub_server.head("someone/model") == before

    proposal = push(tiny_zoo["sst2"], "someone/model", create_pr=True)
    assert proposal.pr_url and proposal.pr_url.endswith("/discussions/1")
    assert hub_server.head("someone/model") == before  # main untouched; the PR holds the files
    assert "task_embedding.safetensors" in hub_server.repo_files("someone/model", revision="refs/pr/1")

    push(tiny_zoo["sst2"], "someone/model", force=True)
    assert hub_server.repo_files("someone/model")["README.md"] != b"their card"


def test_push_into_a_foreign_repo_without_clashing_files_is_allowed(hub_server: HubServer, tiny_zoo) -> None:
    hub_server.commit_files("someone/empty", {"notes.txt": "keep me"})
    push(tiny_zoo["sst2"], "someone/empty")
    assert hub_server.repo_files("someone/empty")["notes.txt"] == b"keep me"


def test_push_refuses_a_folder_without_adapter_weights(hub_server: HubServer, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no adapter weights"):
        push(tmp_path / "empty", "me/nothing")
    assert not hub_server.repo_exists("me/nothing")


def test_private_repo_is_created_private(hub_server: HubServer, tiny_zoo) -> None:
    push(tiny_zoo["sst2"], "me/secret", private=True)
    assert hub_server.store.get_repo("model", "me/secret")["private"] is True


def test_publish_card_from_an_index_entry_then_pull_indexes_it_without_weights(
    hub_server: HubServer, tiny_zoo, tmp_path: Path
) -> None:
    local = Index(tmp_path / "local-home")
    local.add(tiny_zoo["sst2"], name="sst2", reprs=("raw", "delta"))
    result = publish_card("sst2", "me/sst2-card", local)
    files = hub_server.repo_files("me/sst2-card")
    assert set(files) == {".gitattributes", "README.md", "task_embedding.safetensors", "zoo_tupate.json"}
    assert str(tmp_path) not in files["task_embedding.safetensors"].decode("latin-1")  # no local paths

    index = Index(hub_server.zoo_home)  # type: ignore[attr-defined]
    [pulled] = pull(["me/sst2-card"], index, progress=False)
    assert (pulled.outcome, pulled.kind, pulled.sha) == ("indexed", "card", result.commit)
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub_server.downloads("me/sst2-card")}
    assert fetched == {"task_embedding.safetensors", "README.md"}
    for entry in local.get("sst2"):
        twin = next(e for e in index.get("me/sst2-card") if e.space == entry.space)
        np.testing.assert_array_equal(index.vectors([twin])[0], local.vectors([entry])[0])
    [again] = pull(["me/sst2-card"], index, progress=False)
    assert again.outcome == "unchanged"


def test_publish_card_from_a_folder(hub_server: HubServer, tiny_zoo, tmp_path: Path) -> None:
    publish_card(tiny_zoo["mnli"], "me/mnli-card", Index(tmp_path / "h"), extra={"task": "glue/mnli"})
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "task_embedding.safetensors").write_bytes(hub_server.repo_files("me/mnli-card")["task_embedding.safetensors"])
    [raw] = [e for e in read_card(folder) if e.repr == "raw"]
    np.testing.assert_allclose(raw.vector, embed(tiny_zoo["mnli"]).vector, rtol=1e-6)
    assert raw.source == "mnli"
    readme = hub_server.repo_files("me/mnli-card")["README.md"].decode()
    assert "zoo-tupate" in ModelCard(readme).data.tags
