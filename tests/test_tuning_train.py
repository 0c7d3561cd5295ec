"""The tuning loop on a tiny BERT: each method learns, saves early/best adapters, logs, and embeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tuning_helpers import (
    SHARED_CR,
    pretrained_base,
    pretrained_tiny_bert,
    toy_dataset,
    toy_rows,
    write_jsonl,
)

from zoo_tupate.core.errors import TuningError
from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.data import load_task
from zoo_tupate.tuning.encoding import encode, load_tokenizer
from zoo_tupate.tuning.loading import load_tuned
from zoo_tupate.tuning.scoring import evaluate
from zoo_tupate.tuning.train import tune

torch.set_num_threads(1)

#: Embedding dims of the tiny BERT (hidden 32, intermediate 64, 2 layers) under the paper's settings.
EXPECTED_DIM = {
    "lora": 2 * (8 * 32 + 32 * 8),  # query and value: A (8×32) and B (32×8)
    "bitfit": 4 * 32 + 64 + 32,  # q, k, v, attention output, intermediate, output biases
    "prefix": 2 * 20 * 32,  # 20 key and 20 value vectors of size 32
}
LRS = {"lora": 5e-3, "bitfit": 1e-2, "prefix": 1e-2}


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("toy") / "toy", 160, 40)


def _config(dataset: Path, out: Path, method: str, **kwargs) -> TuneConfig:
    settings = {"epochs": 4, "early_epochs": 2, "lr": LRS[method], "base_model_id": "tiny/bert"}
    settings.update(kwargs)
    return TuneConfig(dataset=str(dataset), base_model=str(pretrained_base()), method=method, output=out, **settings)


@pytest.mark.parametrize("method", ["lora", "bitfit", "prefix"])
def test_method_learns_saves_logs_and_embeds(method: str, toy: Path, tmp_path: Path) -> None:
    from zoo_tupate import embed
    from zoo_tupate.cards.cardfile import read_card

    result = tune(_config(toy, tmp_path, method))[0]
    history = result.chosen.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.chosen.best_metric >= 0.8
    out = tmp_path / method
    assert result.early_dir == out / "early" and result.best_dir == out / "best"
    log = json.loads((out / "train_log.json").read_text())
    assert [row["epoch"] for row in log["epochs"]] == [1, 2, 3, 4]
    assert log["seeds"] == {"seed": 0, "init_seed": 0} and log["early_epoch"] == 2
    assert log["rows_per_s"] > 0 and log["wall_s"] > 0 and log["config"]["lr"] == LRS[method]
    assert all("accuracy" in row["validation"] and "train_loss" in row for row in log["epochs"])

    # the early adapter loads back and scores exactly what was logged at epoch 2
    loaded = load_tuned(out / "early", str(pretrained_base()))
    assert json.loads((out / "early" / "adapter_config.json").read_text())["zoo_tupate"]["epoch"] == 2
    task = load_task(str(toy))
    tokenizer = load_tokenizer(str(pretrained_base()))
    scores = evaluate(loaded.model, encode(tokenizer, task.validation, task.problem, 128), task.problem,
                      torch.device("cpu"), 64, tokenizer.pad_token_id, _null)
    assert scores["accuracy"] == pytest.approx(history[1]["validation"]["accuracy"])
    assert scores["loss"] == pytest.approx(history[1]["validation"]["loss"], rel=1e-4)

    # both checkpoints embed to the method's dimension and carry a matching embedding card
    for folder in (out / "early", out / "best"):
        emb = embed(folder)
        assert emb.dim == EXPECTED_DIM[method] and emb.method == method
        assert emb.base_model == "tiny/bert" and not emb.degenerate
        card = {e.space: e for e in read_card(folder)}
        assert np.array_equal(card[emb.space].vector, emb.vector)
        assert card[emb.space].metadata["init_seed"] == 0


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_early_checkpoint_does_not_depend_on_run_length(toy: Path, tmp_path: Path) -> None:
    short = tune(_config(toy, tmp_path / "short", "lora", epochs=2, cards=False))[0]
    long = tune(_config(toy, tmp_path / "long", "lora", epochs=3, cards=False))[0]
    a = load_file(str(short.early_dir / "adapter_model.safetensors"))
    b = load_file(str(long.early_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lr_grid_keeps_the_best_run(toy: Path, tmp_path: Path) -> None:
    result = tune(_config(toy, tmp_path, "bitfit", lr=None, lr_grid=True, epochs=1, early_epochs=1, cards=False))[0]
    assert [r.lr for r in result.runs] == [4e-4, 1e-4]
    assert result.chosen.best_metric == max(r.best_metric for r in result.runs)
    assert (tmp_path / "bitfit" / "grid" / "lr-0.0001" / "early").is_dir()
    chosen = load_file(str(tmp_path / "bitfit" / "grid" / f"lr-{result.chosen.lr:g}" / "early" / "adapter_model.safetensors"))
    copied = load_file(str(tmp_path / "bitfit" / "early" / "adapter_model.safetensors"))
    assert all(torch.equal(chosen[k], copied[k]) for k in chosen)
    log = json.loads((tmp_path / "bitfit" / "train_log.json").read_text())
    assert log["lr_grid"] == [4e-4, 1e-4] and len(log["runs"]) == 2


def test_beft_round_trip_save_load_embed(toy: Path, tmp_path: Path) -> None:
    from zoo_tupate import embed

    result = tune(_config(toy, tmp_path, "bitfit", epochs=2, cards=False))[0]
    loaded = load_tuned(result.best_dir, str(pretrained_base()))
    loaded.save(tmp_path / "again")
    first, second = embed(result.best_dir), embed(tmp_path / "again")
    assert first.space == second.space and np.array_equal(first.vector, second.vector)
    stored = load_file(str(result.best_dir / "adapter_model.safetensors"))
    biases = [k for k in stored if k.endswith("beft_bias")]
    assert len(biases) == 12 and all(stored[k].shape[0] == 1 for k in biases)
    assert any(float(stored[k].abs().sum()) > 0 for k in biases)  # bias changes were learnt


def test_regression_uses_one_output_and_correlations(tmp_path: Path) -> None:
    rows = toy_rows(120, seed=3)
    write_jsonl(tmp_path / "reg" / "train.jsonl", [{**r, "label": 4.0 * r["label"] + 0.5} for r in rows[:96]])
    write_jsonl(tmp_path / "reg" / "validation.jsonl", [{**r, "label": 4.0 * r["label"] + 0.5} for r in rows[96:]])
    result = tune(_config(tmp_path / "reg", tmp_path / "out", "lora", epochs=3, early_epochs=1, cards=False))[0]
    history = result.chosen.history
    assert result.chosen.metric == "pearson_spearman"
    assert {"pearson", "spearman", "loss"} <= set(history[0]["validation"])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    meta = json.loads((result.early_dir / "adapter_config.json").read_text())["zoo_tupate"]
    assert meta["num_labels"] == 1 and meta["problem"] == "regression"


def test_early_epochs_beyond_epochs_is_an_error(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(TuningError, match=r"--early-epochs 5 exceeds --epochs 3"):
        tune(_config(toy, tmp_path, "lora", epochs=3, early_epochs=5))
    assert not (tmp_path / "lora").exists()


def test_equal_early_and_total_epochs_is_fine(toy: Path, tmp_path: Path) -> None:
    result = tune(_config(toy, tmp_path, "prefix", epochs=1, early_epochs=1, cards=False))[0]
    assert result.early_dir.is_dir() and result.best_dir.is_dir()


@pytest.mark.skipif(not (SHARED_CR / "sst2").is_dir(), reason="shared CR data absent")
def test_real_task_from_shared_cr(tmp_path: Path) -> None:
    from tuning_helpers import cr_words

    from zoo_tupate import embed

    # a tiny BERT "pretrained" on other SST-2 rows, then LoRA on a few hundred rows of the real task
    with open(SHARED_CR / "sst2" / "train.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(800), handle, strict=False)]
    base = pretrained_tiny_bert(tmp_path / "base", rows[300:800], epochs=5, extra_words=cr_words("sst2"))
    config = TuneConfig(dataset=str(SHARED_CR / "sst2"), base_model=str(base), method="lora", epochs=3,
                        early_epochs=2, lr=5e-3, max_train=300, max_eval=100, max_length=64, output=tmp_path / "out",
                        base_model_id="tiny/sst2-bert")
    result = tune(config)[0]
    history = result.chosen.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    log = json.loads(result.log_path.read_text())
    assert log["dataset"]["text_columns"] == ["sentence1"]  # sentence2 is null throughout SST-2
    assert log["dataset"]["train_rows"] == 300 and log["dataset"]["validation_rows"] == 100
    assert embed(result.early_dir).dim == EXPECTED_DIM["lora"]
