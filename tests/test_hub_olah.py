"""Download paths against olah, an independent Hub mirror serving local git repos (skips when absent)."""

from __future__ import annotations

import pytest
from fixtures_hub import OlahMirror, set_hub_offline

from zoo_tupate import Index, embed
from zoo_tupate.hub import pull

pytestmark = pytest.mark.olah


def _adapter_files(folder) -> dict:
    return {p.name: p for p in folder.iterdir() if p.is_file()}


def test_pull_from_an_independent_mirror(olah: OlahMirror, tiny_zoo, hub_env, monkeypatch) -> None:
    base = _adapter_files(tiny_zoo.base_model)
    first = olah.add_repo("org/sst2", {**_adapter_files(tiny_zoo["sst2"]), **base})
    olah.add_repo("org/sst2", _adapter_files(tiny_zoo["imdb"]), message="retrained")  # main moves on
    imdb = olah.add_repo("org/imdb", {**_adapter_files(tiny_zoo["imdb"]), **base})
    index = Index(hub_env.zoo_home)
    results = pull([f"org/sst2@{first}", "org/imdb", "org/ghost"], index, progress=False)
    assert [(r.outcome, r.sha) for r in results[:2]] == [("indexed", first), ("indexed", imdb)], results
    assert results[2].outcome == "failed" and "org/ghost" in results[2].reason
    raw = {e.name: index.vectors([e])[0] for e in index.entries() if e.repr == "raw"}
    assert raw["org/sst2"] == pytest.approx(embed(tiny_zoo["sst2"]).vector, rel=1e-6)
    assert not list(hub_env.zoo_home.rglob("model.safetensors"))  # base weights never fetched

    assert [r.outcome for r in pull(["org/imdb"], index, progress=False)] == ["unchanged"]
    index.remove("org/imdb")
    set_hub_offline(monkeypatch)
    olah.process.terminate()
    olah.process.wait(timeout=10)
    [offline] = pull(["org/imdb"], index, progress=False)
    assert (offline.outcome, offline.sha) == ("indexed", imdb)
