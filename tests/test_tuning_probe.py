"""Early probes for ``suggest --target DATASET``: planned per index space, tuned once, cached, comparable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tuning_helpers import pretrained_base, toy_dataset, toy_rows, write_jsonl

from zoo_tupate import Index, suggest
from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.methods import MethodOptions
from zoo_tupate.tuning.probe import ensure_probes, plan_probes
from zoo_tupate.tuning.train import tune

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, Path]:
    """An index holding two toy source tasks tuned with LoRA (r=8, and r=4 for one) and 10-token prefixes,
    plus a target dataset."""
    root = tmp_path_factory.mktemp("zoo")
    index = Index(root / "home")
    sources = {
        "pos-first": toy_dataset(root / "pos-first", 96, 24),
        "pairs": toy_dataset(root / "pairs", 96, 24, pair=True),
    }
    for name, data in sources.items():
        for method, options, lr in (("lora", MethodOptions(), 5e-3), ("prefix", MethodOptions(prefix_length=10), 1e-2)):
            config = TuneConfig(dataset=str(data), base_model=str(pretrained_base()), method=method, epochs=2,
                                early_epochs=2, lr=lr, output=root / "runs" / name, base_model_id="tiny/bert",
                                options=options, save_best=False)
            result = tune(config)[0]
            index.add(result.early_dir, name=f"{name}-{method}")
    small = TuneConfig(dataset=str(sources["pairs"]), base_model=str(pretrained_base()), method="lora", epochs=1,
                       early_epochs=1, lr=5e-3, output=root / "runs" / "r4", base_model_id="tiny/bert",
                       options=MethodOptions(lora_r=4, lora_alpha=4), save_best=False)
    index.add(tune(small)[0].early_dir, name="pairs-lora-r4")
    target = root / "target"
    rows = toy_rows(80, seed=11)
    write_jsonl(target / "train.jsonl", rows[:64])
    write_jsonl(target / "validation.jsonl", rows[64:])
    return index, target


def test_plan_lists_one_probe_per_method_configuration(zoo: tuple[Index, Path]) -> None:
    index, target = zoo
    plans = plan_probes(str(target), index, str(pretrained_base()), base_model_id="tiny/bert")
    by_method = {(p.method, p.options["lora_r"] if p.method == "lora" else None): p for p in plans}
    assert set(by_method) == {("lora", 8), ("lora", 4), ("prefix", None)}
    lora8 = by_method[("lora", 8)]
    assert lora8.entries == 4 and lora8.init_seed == 0 and lora8.lr == 5e-3  # 2 sources × raw, delta
    assert lora8.rows == 64 and lora8.epochs == 2 and not lora8.cached
    assert lora8.rows_per_s and lora8.overhead_s is not None  # measured: model load, tokenisation, evaluation
    assert lora8.est_seconds == pytest.approx(64 * 2 / lora8.rows_per_s + lora8.overhead_s, abs=0.051)
    assert lora8.recipe["max_train"] is None  # the sources recorded 'all rows': the probe takes all 64
    assert by_method[("lora", 4)].options["lora_alpha"] == 4
    assert by_method[("prefix", None)].options["prefix_length"] == 10  # read from the entries, not the default
    only_prefix = plan_probes(str(target), index, str(pretrained_base()), methods=["prefix"],
                              base_model_id="tiny/bert", measure=False)
    assert [p.method for p in only_prefix] == ["prefix"]


def test_ensure_probes_embeds_in_index_spaces_and_caches(zoo: tuple[Index, Path]) -> None:
    index, target = zoo
    notes: list[str] = []
    first = ensure_probes(str(target), index, str(pretrained_base()), base_model_id="tiny/bert", notes=notes)
    spaces = {e.space for e in index.entries()}
    assert len(first) == len(spaces) == 4 and {e.space for e in first} == spaces, notes  # one LoRA delta space
    # each probe takes the epochs its entries recorded: the r=4 source stopped after one epoch
    assert all(e.metadata["probe"] and e.metadata["epochs"] == e.metadata["recipe"]["epochs"] for e in first)
    assert sorted(e.metadata["epochs"] for e in first) == [1, 2, 2, 2]
    cache = index.home / "cache" / "probes"
    folders = sorted(p for p in cache.iterdir() if p.is_dir())
    assert len(folders) == 3 and all((f / "early" / "adapter_model.safetensors").is_file() for f in folders)
    record = json.loads((folders[0] / "probe.json").read_text())
    assert record["cached"] and record["rows_per_s"] > 0

    started = time.perf_counter()
    second = ensure_probes(str(target), index, str(pretrained_base()), base_model_id="tiny/bert")
    assert time.perf_counter() - started < 5
    assert [e.space for e in second] == [e.space for e in first]
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(first, second, strict=True))
    plans = plan_probes(str(target), index, str(pretrained_base()), base_model_id="tiny/bert")
    assert all(p.cached and p.est_seconds == 0.0 for p in plans)

    ranking = suggest(index, [e for e in first if e.method == "lora" and e.dim == 1024], top_k=5)
    assert ranking  # the probe is rankable against the sources of its space


def test_no_entries_for_the_base_model(zoo: tuple[Index, Path]) -> None:
    index, target = zoo
    assert plan_probes(str(target), index, str(pretrained_base()), base_model_id="other/model") == []
    assert ensure_probes(str(target), index, str(pretrained_base()), base_model_id="other/model") == []


def test_suggest_cli_with_dataset_target_tunes_missing_probes_once(zoo: tuple[Index, Path]) -> None:
    from click.testing import CliRunner

    from zoo_tupate.cli import main
    from zoo_tupate.tuning.probe import probe_root

    index, target = zoo
    args = ["--home", str(index.home), "suggest", "--target", str(target), "--base-model", str(pretrained_base()),
            "--base-model-id", "tiny/bert", "--methods", "lora", "--json", "--by-space"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.stderr
    rows = json.loads(first.stdout)
    assert rows and {(r["method"], r["repr"]) for r in rows} == {("lora", "delta")}  # the default for LoRA
    assert "tuning" in first.stderr or "cached" in first.stderr
    folders = sorted(p.name for p in probe_root(index.home).iterdir() if p.is_dir())
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.stderr
    assert "tuning" not in second.stderr and "cached" in second.stderr
    assert json.loads(second.stdout) == rows
    assert sorted(p.name for p in probe_root(index.home).iterdir() if p.is_dir()) == folders
    missing = CliRunner().invoke(main, ["--home", str(index.home), "suggest", "--target", str(target)])
    assert missing.exit_code != 0 and "--base-model" in missing.stderr


def test_a_dataset_target_is_loaded_and_planned_once(zoo: tuple[Index, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One visit per concern: resolving a dataset target plans its probes once and loads its rows once per
    sampling, however many probes it tunes (the plan carries the rows to ensure_probes and to --verify)."""
    from zoo_tupate.answer.targets import resolve_target
    from zoo_tupate.tuning import probe

    index, _ = zoo
    target = tmp_path / "fresh-target"
    rows = toy_rows(60, seed=23)
    write_jsonl(target / "train.jsonl", rows[:48])
    write_jsonl(target / "validation.jsonl", rows[48:])
    calls = {"plan": 0, "load": 0}
    plan, load = probe.plan_probes, probe.load_task
    monkeypatch.setattr(probe, "plan_probes", lambda *a, **k: (calls.__setitem__("plan", calls["plan"] + 1),
                                                               plan(*a, **k))[1])
    monkeypatch.setattr(probe, "load_task", lambda *a, **k: (calls.__setitem__("load", calls["load"] + 1),
                                                             load(*a, **k))[1])
    resolved = resolve_target(index, str(target), base_model=str(pretrained_base()), base_model_id="tiny/bert",
                              methods=["lora", "prefix"])
    assert {e.method for e in resolved.embeddings} == {"lora", "prefix"}
    assert calls == {"plan": 1, "load": 1}  # 3 probes (LoRA r8, r4, prefix) share one sampling
    assert resolved.probes is not None and all(p.cached for p in resolved.probes)
    assert resolved.probes.subset("lora").tasks is resolved.probes.tasks  # what --verify reuses
