"""The transfer run end to end on a tiny random BERT: result file, eval table, and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuning_helpers import tiny_bert, toy_rows, write_jsonl

from zoo_tupate.bench import transfer as transfer_mod
from zoo_tupate.bench.config import TARGET_ONLY, TransferConfig
from zoo_tupate.bench.layout import pair_path


def _tasks(root: Path) -> Path:
    write_jsonl(root / "senti" / "train.jsonl", toy_rows(24, seed=1))
    write_jsonl(root / "senti" / "validation.jsonl", toy_rows(8, seed=2))
    write_jsonl(root / "pairs" / "train.jsonl", toy_rows(24, seed=3, pair=True))
    write_jsonl(root / "pairs" / "validation.jsonl", toy_rows(8, seed=4, pair=True))
    for split, seed in (("train", 5), ("validation", 6)):  # a regression task (STS-B-like)
        rows = [{**r, "label": 4.5 * r["label"] + 0.25} for r in toy_rows(24 if split == "train" else 8, seed)]
        write_jsonl(root / "score" / f"{split}.jsonl", rows)
    return root


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    return _tasks(tmp_path / "tasks"), tiny_bert(tmp_path / "model")


def _config(tasks: Path, model: Path, cache: Path) -> TransferConfig:
    return TransferConfig(tasks_dir=tasks, tasks=["senti", "pairs", "score"], base_model=str(model), cache=cache,
                          train_rows=16, source_rows=16, source_epochs=1, target_epochs=1, val_rows=8,
                          max_length=32, batch_size=8, lr=1e-3, probe_methods=("lora", "bitfit"),
                          probe_epochs=2, probe_early_epochs=1, probe_val_rows=8, taskemb_rows=4)


def test_cli_run_writes_a_matrix_that_eval_scores(setup, tmp_path):
    from zoo_tupate.cli import main

    tasks, model = setup
    out = tmp_path / "m.json"
    args = ["bench", "transfer", "--tasks-dir", str(tasks), "--tasks", "senti,pairs,score", "--base-model",
            str(model), "--base-model-id", "tiny-bert", "--train-rows", "16", "--source-rows", "16",
            "--source-epochs", "1", "--target-epochs", "1", "--val-rows", "8", "--max-length", "32",
            "--batch-size", "8", "--probe-methods", "lora,bitfit", "--probe-epochs", "2",
            "--probe-early-epochs", "1", "--probe-val-rows", "8", "--cache", str(tmp_path / "cache"),
            "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    measured = doc["measured"]
    assert set(measured) == {"senti", "pairs", "score"}
    assert set(measured["senti"]["sources"]) == {"pairs", "score"}
    assert measured["senti"]["majority_rate"] == pytest.approx(0.5)
    assert measured["score"]["majority_rate"] is None and measured["score"]["metric"] == "pearson_spearman"
    assert measured["pairs"]["target_only"]["n_seeds"] == 1
    predictions = doc["predictions"]
    for name in ("datasize", "textemb", "taskemb", "tupate/lora/raw/layer-mean/best/cos",
                 "tupate/lora/delta/layer-mean/early/centered", "tupate/ensemble/raw/layer-mean/best/cos",
                 "offshelf/lora/raw/layer-mean/best/cos"):
        assert name in predictions, name
        assert "senti" not in predictions[name]["senti"]  # a target never scores itself
    assert "offshelf/bitfit/raw/layer-mean/best/cos" not in predictions  # bitfit's init seed changes nothing
    assert doc["versions"]["torch"] and doc["config"]["train_rows"] == 16
    assert [v["device"] for v in doc["measured_with"]] == ["cpu"]  # what the measurements ran on
    quality = doc["probe_quality"]["init0/lora"]["senti"]  # how well each probe learned its own task
    assert 0.0 <= quality["best"] <= 1.0 and quality["best"] >= quality["early"] and quality["lr"] > 0

    result = CliRunner().invoke(main, ["eval", "--matrix", str(out), "--json", "-m", "datasize", "-m", "random",
                                       "-m", "tupate/*/raw/layer-mean/best/cos", "--keep-constant"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert {"datasize", "random", "tupate/lora/raw/layer-mean/best/cos"} <= set(scored)
    assert scored["datasize"]["n_targets"] == 3
    result = CliRunner().invoke(main, ["eval", "--matrix", str(out), "--json", "-m", "datasize"])
    default = json.loads(result.stdout)["datasize"]  # targets whose sources all tie are left out by default
    assert default["n_targets"] + len(default["skipped_constant"]) == 3
    assert set(scored["datasize"]["per_target"]["senti"]["top3"]) == {"pairs", "score"}
    table = CliRunner().invoke(main, ["eval", "--matrix", str(out), "-m", "datasize", "--keep-constant"])
    assert table.exit_code == 0 and "datasize" in table.stderr and "NDCG" in table.stderr


def test_resume_after_interruption_recomputes_nothing_finished(setup, tmp_path, monkeypatch):
    tasks, model = setup
    config = _config(tasks, model, tmp_path / "cache")
    calls: list[int] = []
    real_train = transfer_mod.train

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # 3 target-only runs, the first source model, then the first pair
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(transfer_mod, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        transfer_mod.run(config, stages=("transfer",))
    finished = {p: p.stat().st_mtime_ns for p in (config.transfer_dir() / "pairs").glob("*.json")}
    assert sorted(p.name for p in finished) == sorted(
        pair_path(config, TARGET_ONLY, t, 0).name for t in config.tasks)
    assert not list((config.transfer_dir() / "pairs").glob(".*.tmp"))  # no half-written file

    calls.clear()
    monkeypatch.setattr(transfer_mod, "train", lambda *a, **k: (calls.append(1), real_train(*a, **k))[1])
    transfer_mod.run(config, stages=("transfer",))
    # the saved source model is reused: 6 pairs + the 2 source models not trained before
    assert len(calls) == 8
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert len(list((config.transfer_dir() / "pairs").glob("*.json"))) == 9

    calls.clear()
    transfer_mod.run(config, stages=("transfer",))
    assert calls == []


def test_adapter_protocol_carries_only_the_lora_weights_to_the_target(setup, tmp_path):
    import torch

    from zoo_tupate.bench.layout import model_path

    tasks, model = setup
    config = _config(tasks, model, tmp_path / "cache")
    config.protocol, config.tasks = "adapter", ["senti", "score"]
    transfer_mod.run(config, stages=("transfer",))
    state = torch.load(model_path(config, "source", "senti", 0), weights_only=True)
    assert state and all("lora_" in k for k in state)
    assert read_pair(config, "senti", "score")["source"] == "senti"
    assert read_pair(config, TARGET_ONLY, "senti")["source"] is None
    assert config.key() != _config(tasks, model, tmp_path / "cache").key()  # protocols never share a cache


def read_pair(config: TransferConfig, source: str, target: str) -> dict:
    return json.loads(pair_path(config, source, target, 0).read_text(encoding="utf-8"))


def test_worker_processes_measure_what_a_sequential_run_measures(setup, tmp_path):
    import torch

    tasks, model = setup
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = _config(tasks, model, tmp_path / "here")
        here.threads = 1
        transfer_mod.run(here, stages=("transfer",))
        pool = _config(tasks, model, tmp_path / "pool")
        pool.workers, pool.threads, pool.seeds = 2, 1, [0, 1]
        transfer_mod.run(pool, stages=("transfer",))
    finally:
        torch.set_num_threads(threads)
    names = sorted(p.name for p in (pool.transfer_dir() / "pairs").glob("*.json"))
    assert len(names) == 2 * 9 and not list((pool.transfer_dir() / "pairs").glob(".*"))
    for path in (here.transfer_dir() / "pairs").glob("*.json"):
        a = json.loads(path.read_text(encoding="utf-8"))
        b = json.loads((pool.transfer_dir() / "pairs" / path.name).read_text(encoding="utf-8"))
        assert a["metric"] == pytest.approx(b["metric"], abs=1e-5), path.name


def test_calibrate_chooses_a_rate_and_the_run_at_that_rate_reuses_its_runs(setup, tmp_path):
    from zoo_tupate.cli import main

    tasks, model = setup
    args = ["bench", "calibrate", "--tasks-dir", str(tasks), "--tasks", "senti,score", "--base-model", str(model),
            "--train-rows", "16", "--source-rows", "16", "--source-epochs", "1", "--target-epochs", "1",
            "--val-rows", "8", "--max-length", "32", "--batch-size", "8", "--lrs", "1e-3,1e-5", "--cache", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["chosen_lr"] in (1e-3, 1e-5) and set(doc["rates"]) == {"0.001", "1e-05"}
    assert doc["majority_rate"]["senti"] == pytest.approx(0.5) and doc["majority_rate"]["score"] is None
    best = doc["rates"][repr(doc["chosen_lr"])]
    assert len(best["learned"]) >= max(len(r["learned"]) for r in doc["rates"].values())
    config = _config(tasks, model, tmp_path / "cache")
    config.tasks, config.lr = ["senti", "score"], doc["chosen_lr"]
    for task in config.tasks:  # the calibration runs are the chosen rate's target-only measurements
        assert read_pair(config, TARGET_ONLY, task)["metric"] == pytest.approx(best["scores"][task])
    table = CliRunner().invoke(main, args[:-1])
    assert table.exit_code == 0 and "chosen lr" in table.output


def test_a_failing_job_in_a_worker_is_reported_and_the_others_still_finish(setup, tmp_path):
    from zoo_tupate.core.errors import TuningError

    tasks, model = setup
    (tasks / "broken").mkdir()
    (tasks / "broken" / "train.jsonl").write_text("{not json\n", encoding="utf-8")
    (tasks / "broken" / "validation.jsonl").write_text("{not json\n", encoding="utf-8")
    config = _config(tasks, model, tmp_path / "cache")
    config.tasks, config.workers, config.threads = ["senti", "pairs", "broken"], 2, 1
    with pytest.raises(TuningError, match=r"job\(s\) failed \(the rest are cached\).*broken"):
        transfer_mod.run(config, stages=("transfer",))
    done = sorted(p.name for p in (config.transfer_dir() / "pairs").glob("*.json"))
    assert done == ["-__pairs__s0.json", "-__senti__s0.json", "pairs__senti__s0.json", "senti__pairs__s0.json"]


def test_probe_learning_rates_are_used_and_name_their_own_cache(setup, tmp_path):
    from zoo_tupate.bench.predict import probe_folder
    from zoo_tupate.cli import main

    tasks, model = setup
    config = _config(tasks, model, tmp_path / "cache")
    config.tasks, config.probe_methods, config.offshelf_methods = ["senti", "pairs"], ("lora",), ()
    default_key = config.probe_key()
    config.probe_lrs = {"lora": 3e-3}
    assert config.probe_key() != default_key  # probes at another rate never mix with the default ones
    transfer_mod.run(config, stages=("probes",))
    log = json.loads((probe_folder(config, "senti", 0) / "lora" / "train_log.json").read_text(encoding="utf-8"))
    assert log["lr"] == 3e-3
    bad = CliRunner().invoke(main, ["bench", "transfer", "--tasks-dir", str(tasks), "--tasks", "senti,pairs",
                                    "--base-model", str(model), "--probe-lr", "lora:3e-3", "--stage", "probes"])
    assert bad.exit_code == 2 and "METHOD=LR" in bad.output


def test_a_data_seed_samples_other_rows_and_names_its_own_caches(setup, tmp_path):
    from zoo_tupate.bench.config import TaskSet
    from zoo_tupate.bench.predict import probe_folder

    tasks, model = setup
    old = _config(tasks, model, tmp_path / "cache")
    assert "data_seed" not in old.transfer_settings() and "data_seed" not in old.probe_settings()  # old keys kept
    fresh = _config(tasks, model, tmp_path / "cache")
    fresh.data_seed = 1
    assert fresh.key() != old.key() and fresh.probe_key() != old.probe_key()

    def texts(config, role):
        data = getattr(TaskSet(config), role)("senti")[0]
        return sorted(data.train.text_a)

    for role in ("target", "source"):
        assert texts(old, role) != texts(fresh, role)  # 16 of 24 rows: another sample
    fresh.tasks, fresh.probe_methods, fresh.offshelf_methods = ["senti", "pairs"], ("lora",), ()
    transfer_mod.run(fresh, stages=("probes",))
    log = json.loads((probe_folder(fresh, "senti", 0) / "lora" / "train_log.json").read_text(encoding="utf-8"))
    assert log["seeds"]["seed"] == 1


def test_targets_measure_only_those_targets_and_keep_every_task_a_source(setup, tmp_path):
    from zoo_tupate.cli import main

    tasks, model = setup
    out = tmp_path / "m.json"
    common = ["bench", "transfer", "--tasks-dir", str(tasks), "--tasks", "senti,pairs,score", "--base-model",
              str(model), "--train-rows", "16", "--source-rows", "16", "--source-epochs", "1", "--target-epochs",
              "1", "--val-rows", "8", "--max-length", "32", "--batch-size", "8", "--probe-methods", "lora",
              "--offshelf-methods", "none", "--probe-epochs", "1", "--probe-early-epochs", "1",
              "--probe-val-rows", "8", "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(main, [*common, "--targets", "pairs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc["measured"]) == {"pairs"} and set(doc["measured"]["pairs"]["sources"]) == {"senti", "score"}
    assert doc["config"]["targets"] == ["pairs"] and doc["config"]["offshelf_methods"] == []
    pairs = sorted(p.name for p in (tmp_path / "cache").rglob("pairs/*.json"))
    assert pairs == ["-__pairs__s0.json", "score__pairs__s0.json", "senti__pairs__s0.json"]
    assert not [k for k in doc["predictions"] if k.startswith("offshelf/")]  # no off-the-shelf probes, no rows
    assert not list((tmp_path / "cache").rglob("init1"))

    again = CliRunner().invoke(main, [*common, "--targets", "senti,pairs", "--stage", "transfer"])
    assert again.exit_code == 0, again.output  # the second target reuses the cached source models
    assert len(list((tmp_path / "cache").rglob("pairs/*.json"))) == 6
    bad = CliRunner().invoke(main, [*common, "--targets", "nope"])
    assert bad.exit_code != 0 and "--targets names tasks not in --tasks: nope" in bad.output
