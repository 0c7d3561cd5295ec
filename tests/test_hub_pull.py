"""``pull`` against the local Hub server: what gets downloaded, indexed, reused and reported."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_hub import BASE_MODEL_ID, publish_adapter, set_hub_offline
from hub_server import HubServer

from zoo_tupate import Index, embed
from zoo_tupate.hub import pull

TASKS = ("sst2", "imdb", "mnli")


def _index(server: HubServer) -> Index:
    return Index(server.zoo_home)  # type: ignore[attr-defined]


def _publish_all(server: HubServer, zoo, tasks=TASKS) -> dict[str, str]:
    return {t: publish_adapter(server, f"org/{t}", zoo[t], base_model=zoo.base_model) for t in tasks}


def _vector(index: Index, name: str, repr_: str = "raw") -> np.ndarray:
    entry = next(e for e in index.get(name) if e.repr == repr_)
    return index.vectors([entry])[0]


def _outcomes(results) -> list[str]:
    return [r.outcome for r in results]


def test_pull_indexes_each_repo_by_name_and_fetches_only_adapter_files(hub_server, tiny_zoo) -> None:
    shas = _publish_all(hub_server, tiny_zoo)
    index = _index(hub_server)
    results = pull([f"org/{t}" for t in TASKS], index, progress=False)
    assert _outcomes(results) == ["indexed"] * 3, [r.reason for r in results]
    assert [r.sha for r in results] == [shas[t] for t in TASKS]
    entries = index.entries()
    assert {e.name for e in entries} == {f"org/{t}" for t in TASKS}
    assert {e.source for e in entries} == {f"org/{t}@{shas[t]}" for t in TASKS}
    for task in TASKS:  # same vector as embedding the adapter folder directly
        np.testing.assert_allclose(_vector(index, f"org/{task}"), embed(tiny_zoo[task]).vector, rtol=1e-6)
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub_server.requests if "/resolve/" in r.path}
    assert fetched == {"adapter_model.safetensors", "adapter_config.json", "README.md"}
    assert not list(hub_server.zoo_home.rglob("model.safetensors"))  # the base weights never left the server


def test_pull_at_a_pinned_sha_or_tag(hub_server, tiny_zoo) -> None:
    old = publish_adapter(hub_server, "org/moving", tiny_zoo["sst2"])
    hub_server.create_tag("org/moving", "v1")
    new = publish_adapter(hub_server, "org/moving", tiny_zoo["imdb"], message="retrained")
    index = _index(hub_server)
    [result] = pull([f"org/moving@{old}"], index, progress=False)
    assert (result.outcome, result.sha) == ("indexed", old)
    np.testing.assert_allclose(_vector(index, "org/moving"), embed(tiny_zoo["sst2"]).vector, rtol=1e-6)
    [result] = pull(["hub:org/moving@v1"], index, progress=False)
    assert (result.outcome, result.sha) == ("unchanged", old)
    [result] = pull(["org/moving"], index, progress=False)  # main moved on: the entry follows
    assert (result.outcome, result.sha) == ("indexed", new)
    assert {e.source for e in index.get("org/moving")} == {f"org/moving@{new}"}
    np.testing.assert_allclose(_vector(index, "org/moving"), embed(tiny_zoo["imdb"]).vector, rtol=1e-6)


def test_second_pull_of_unchanged_repos_downloads_and_recomputes_nothing(hub_server, tiny_zoo) -> None:
    _publish_all(hub_server, tiny_zoo)
    index = _index(hub_server)
    pull([f"org/{t}" for t in TASKS], index, progress=False)
    manifest = index.manifest_path.read_bytes()
    embed_cache = sorted(p.name for p in (hub_server.zoo_home / "cache" / "embeddings").rglob("*"))
    hub_server.reset_log()
    results = pull([f"org/{t}" for t in TASKS], index, progress=False)
    assert _outcomes(results) == ["unchanged"] * 3
    assert sorted(r.path for r in hub_server.requests) == sorted(f"/api/models/org/{t}" for t in TASKS)
    assert index.manifest_path.read_bytes() == manifest
    assert sorted(p.name for p in (hub_server.zoo_home / "cache" / "embeddings").rglob("*")) == embed_cache


def test_offline_pull_works_from_the_cache(hub_server, tiny_zoo, monkeypatch) -> None:
    shas = _publish_all(hub_server, tiny_zoo, ("sst2", "imdb"))
    index = _index(hub_server)
    pull(["org/sst2", f"org/imdb@{shas['imdb']}"], index, progress=False)
    for name in ("org/sst2", "org/imdb"):
        index.remove(name)  # force a re-index, from cached files only
    hub_server.stop()
    set_hub_offline(monkeypatch)
    results = pull(["org/sst2", f"org/imdb@{shas['imdb']}", "org/mnli"], index, progress=False)
    assert _outcomes(results) == ["indexed", "indexed", "failed"]
    assert [r.sha for r in results[:2]] == [shas["sst2"], shas["imdb"]]
    assert "not in the local cache" in results[2].reason
    assert {e.name for e in index.entries()} == {"org/sst2", "org/imdb"}


def test_unreachable_hub_falls_back_to_cached_revision(hub_server, tiny_zoo) -> None:
    sha = publish_adapter(hub_server, "org/sst2", tiny_zoo["sst2"])
    index = _index(hub_server)
    pull(["org/sst2"], index, progress=False)
    index.remove("org/sst2")
    hub_server.stop()
    [result] = pull(["org/sst2"], index, progress=False)
    assert (result.outcome, result.sha) == ("indexed", sha)
    assert "used the cached copy" in result.reason


def test_missing_repo_and_missing_weights_fail_alone(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "org/sst2", tiny_zoo["sst2"])
    hub_server.commit_files("org/noweights", {"adapter_config.json": tiny_zoo["imdb"] / "adapter_config.json",
                                              "README.md": "no weights here"})
    hub_server.commit_files("org/basemodel", {"model.safetensors": tiny_zoo.base_model / "model.safetensors"})
    results = pull(["org/ghost", "org/noweights", "org/sst2", "org/basemodel", "org/sst2@no-such-branch"],
                   _index(hub_server), progress=False)
    assert _outcomes(results) == ["failed", "failed", "indexed", "failed", "failed"]
    assert "repo not found" in results[0].reason
    assert "no adapter weights" in results[1].reason and "adapter_config.json" in results[1].reason
    assert "no adapter weights" in results[3].reason
    assert "revision 'no-such-branch' not found" in results[4].reason
    assert not hub_server.downloads("org/basemodel")


def test_file_that_vanishes_on_the_server_is_reported(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "org/sst2", tiny_zoo["sst2"])
    hub_server.fail(r"/resolve/.*/adapter_model\.safetensors$", 404)
    [result] = pull(["org/sst2"], _index(hub_server), progress=False)
    assert result.outcome == "failed" and "404" in result.reason
    assert _index(hub_server).entries() == []


def test_server_dying_mid_download_keeps_earlier_entries_and_a_rerun_completes(hub_server, tiny_zoo) -> None:
    _publish_all(hub_server, tiny_zoo)
    hub_server.die_after(r"^/org/mnli/resolve/.*/adapter_model\.safetensors$", 200)
    index = _index(hub_server)
    results = pull([f"org/{t}" for t in TASKS], index, jobs=1, progress=False)
    assert _outcomes(results) == ["indexed", "indexed", "failed"]
    assert "org/mnli" in results[2].reason
    assert {e.name for e in index.entries()} == {"org/sst2", "org/imdb"}
    hub_server.start()  # back on the same port with the same storage
    results = pull([f"org/{t}" for t in TASKS], index, jobs=1, progress=False)
    assert _outcomes(results) == ["unchanged", "unchanged", "indexed"]
    assert {e.name for e in index.entries()} == {f"org/{t}" for t in TASKS}


def test_download_that_does_not_match_its_hash_is_rejected_then_refetched(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "org/sst2", tiny_zoo["sst2"])
    hub_server.corrupt(r"/resolve/.*/adapter_model\.safetensors$", times=1)
    index = _index(hub_server)
    [result] = pull(["org/sst2"], index, progress=False)
    assert result.outcome == "failed" and "hash mismatch: downloaded adapter_model.safetensors is corrupt" in result.reason
    assert index.entries() == []
    [result] = pull(["org/sst2"], index, progress=False)
    assert result.outcome == "indexed"
    np.testing.assert_allclose(_vector(index, "org/sst2"), embed(tiny_zoo["sst2"]).vector, rtol=1e-6)


def test_corrupt_weights_in_a_repo_are_reported_not_indexed(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "org/sst2", tiny_zoo["sst2"])
    hub_server.commit_files("org/broken", {"adapter_config.json": tiny_zoo["imdb"] / "adapter_config.json",
                                           "adapter_model.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{bad" * 40})
    index = _index(hub_server)
    results = pull(["org/broken", "org/sst2"], index, progress=False)
    assert _outcomes(results) == ["failed", "indexed"]
    assert "org/broken@" in results[0].reason and "adapter_model.safetensors" in results[0].reason
    assert str(hub_server.zoo_home) not in results[0].reason  # names the repo, not a cache folder
    assert {e.name for e in index.entries()} == {"org/sst2"}


@pytest.mark.parametrize("jobs", [1, 3])
def test_repos_are_fetched_in_parallel_up_to_jobs(hub_server, tiny_zoo, jobs) -> None:
    tasks = ("sst2", "imdb", "mnli", "qnli")
    _publish_all(hub_server, tiny_zoo, tasks)
    hub_server.slow(r"^/api/models/org/\w+$", 0.4)
    results = pull([f"org/{t}" for t in tasks], _index(hub_server), jobs=jobs, progress=False)
    assert [r.repo for r in results] == [f"org/{t}" for t in tasks]  # results keep the request order
    assert _outcomes(results) == ["indexed"] * 4
    assert hub_server.max_concurrency(r"^/api/models/org/\w+$") == jobs


def test_catalog_task_and_alias_pull_the_catalog_repos_for_the_base_model(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "AdapterHub/bert-base-uncased-pf-sst2", tiny_zoo["sst2"])
    publish_adapter(hub_server, "AdapterHub/roberta-base-pf-sst2", tiny_zoo["imdb"])
    index = _index(hub_server)
    [result] = pull(["glue/sst2"], index, base_model="bert-base-uncased", progress=False)
    assert (result.repo, result.outcome, result.task) == ("AdapterHub/bert-base-uncased-pf-sst2", "indexed",
                                                          "glue/sst2")
    assert index.get("AdapterHub/bert-base-uncased-pf-sst2")[0].metadata["hub"]["task"] == "glue/sst2"
    results = pull(["sentiment/sst-2@ukp"], index, progress=False)  # AdapterHub alias: every base model
    assert {(r.repo, r.outcome) for r in results} == {("AdapterHub/bert-base-uncased-pf-sst2", "unchanged"),
                                                      ("AdapterHub/roberta-base-pf-sst2", "indexed")}


def test_search_finds_peft_adapters_of_the_base_model_and_pulls_them(hub_server, tiny_zoo) -> None:
    publish_adapter(hub_server, "alice/tiny-sst2-lora", tiny_zoo["sst2"])  # README: peft, base zoo-tests/tiny-bert
    other = (tiny_zoo["imdb"] / "README.md").read_text().replace(BASE_MODEL_ID, "roberta-base")
    publish_adapter(hub_server, "bob/roberta-sst2-lora", tiny_zoo["imdb"], extra={"README.md": other})
    hub_server.commit_files("alice/sst2-notes", {"README.md": "just notes about sst2"})
    seen = []
    results = pull(["sst2"], _index(hub_server), base_model=BASE_MODEL_ID, search=True, progress=False,
                   on_search=seen.extend)
    assert [h.repo for h in seen] == ["alice/tiny-sst2-lora"]
    assert [(r.repo, r.outcome) for r in results] == [("alice/tiny-sst2-lora", "indexed")]
    assert any(r.path == "/api/models" and "search=sst2" in r.query for r in hub_server.requests)


def test_progress_rows_show_bytes_and_outcomes_on_a_terminal(hub_server, tiny_zoo) -> None:
    import io
    import re

    from rich.console import Console

    _publish_all(hub_server, tiny_zoo, ("sst2",))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    pull(["org/sst2", "org/ghost"], _index(hub_server), console=console)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    size = sum((tiny_zoo["sst2"] / f).stat().st_size
               for f in ("adapter_model.safetensors", "adapter_config.json", "README.md"))
    assert f"{size / 1000:.1f}/{size / 1000:.1f} kB" in text
    assert re.search(r"org/sst2 .* indexed", text) and re.search(r"org/ghost .* failed org/ghost: repo not found", text)
