"""AdapterHub's Pfeiffer bottleneck in zoo-tupate, against adapters that the real ``adapters`` 1.3 library saved.

``tests/fixtures/adapterhub`` was written by ``scripts/adapterhub_interop.py lib-make`` in a venv with
transformers 4.57 + adapters 1.3: a tiny BERT (``model/``) and one ``pf`` adapter per GLUE task (``lib/<task>``,
``model_name`` bert-base-uncased) with the library's logits for a fixed input (``logits.json``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tuning_helpers import toy_dataset

from zoo_tupate import embed
from zoo_tupate.embedding.vectors import cosine
from zoo_tupate.tuning.bottleneck import PFEIFFER_CONFIG, is_pfeiffer
from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.loading import load_tuned
from zoo_tupate.tuning.train import tune

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adapterhub"
MODEL = FIXTURES / "model"
TASKS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb")


def _interop():
    spec = importlib.util.spec_from_file_location(
        "adapterhub_interop", Path(__file__).resolve().parent.parent / "scripts" / "adapterhub_interop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("adapterhub_interop", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task", ["mnli", "rte", "stsb"])
def test_a_library_adapter_gives_the_library_logits_in_zoo_tupate(task: str) -> None:
    folder = FIXTURES / "lib" / task
    tunable = load_tuned(folder, base_model=str(MODEL))
    assert tunable.method == "bottleneck" and tunable.num_labels == (3 if task == "mnli" else 1 if task == "stsb" else 2)
    tunable.model.eval()
    with torch.no_grad():
        logits = tunable.model(**_interop().fixed_input(tunable.model.encoder_model.config.vocab_size)).logits
    want = np.asarray(json.loads((folder / "logits.json").read_text()))
    assert np.max(np.abs(logits.numpy() - want)) <= 1e-5


def test_a_library_adapter_embeds_as_its_saved_tensors() -> None:
    folder = FIXTURES / "lib" / "sst2"
    saved = torch.load(folder / "pytorch_adapter.bin", map_location="cpu", weights_only=True)
    names = ("adapter_down.0.bias", "adapter_down.0.weight", "adapter_up.bias", "adapter_up.weight")
    layers = [np.concatenate([saved[f"bert.encoder.layer.{i}.output.adapters.sst2.{n}"].numpy().ravel()
                              for n in names]) for i in range(2)]
    emb = embed(folder, repr="raw")
    assert emb.method == "bottleneck" and emb.base_model == "bert-base-uncased"
    np.testing.assert_allclose(emb.vector, np.mean(layers, axis=0), atol=1e-7)
    delta = embed(folder, repr="delta")
    want = np.mean([(saved[f"bert.encoder.layer.{i}.output.adapters.sst2.adapter_up.weight"].double()
                     @ saved[f"bert.encoder.layer.{i}.output.adapters.sst2.adapter_down.0.weight"].double())
                    .numpy().ravel() for i in range(2)], axis=0)
    np.testing.assert_allclose(delta.vector, want, rtol=1e-5, atol=1e-7)


def test_delta_is_invariant_to_permuting_the_bottleneck_units(tmp_path: Path) -> None:
    folder = tmp_path / "perm"
    shutil.copytree(FIXTURES / "lib" / "mrpc", folder)
    state = torch.load(folder / "pytorch_adapter.bin", weights_only=True)
    perm = torch.tensor([3, 1, 0, 2])
    for key in list(state):
        if "adapter_down.0." in key:
            state[key] = state[key][perm]
        elif key.endswith("adapter_up.weight"):
            state[key] = state[key][:, perm]
    torch.save(state, folder / "pytorch_adapter.bin")
    original, permuted = embed(FIXTURES / "lib" / "mrpc", repr="delta"), embed(folder, repr="delta")
    assert original.space == permuted.space
    assert cosine(original.vector, permuted.vector) == pytest.approx(1.0, abs=1e-6)
    assert cosine(embed(FIXTURES / "lib" / "mrpc").vector, embed(folder).vector) < 0.99  # raw is not invariant
    tunable = load_tuned(folder, base_model=str(MODEL))  # and the function is the same
    tunable.model.eval()
    with torch.no_grad():
        logits = tunable.model(**_interop().fixed_input(tunable.model.encoder_model.config.vocab_size)).logits
    want = np.asarray(json.loads((folder / "logits.json").read_text()))
    assert np.max(np.abs(logits.numpy() - want)) <= 1e-5


def test_tune_bottleneck_writes_adapterhubs_layout_in_the_pulled_adapters_space(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = toy_dataset(tmp_path / "my_task", n_train=32, n_val=8)
    config = TuneConfig(dataset=str(data), base_model=str(MODEL), method="bottleneck",
                        base_model_id="bert-base-uncased", epochs=1, early_epochs=1, lr=1e-3, batch_size=8,
                        output=tmp_path / "runs", save_best=False)
    folder = tune(config)[0].early_dir
    assert {"adapter_config.json", "pytorch_adapter.bin", "head_config.json", "pytorch_model_head.bin"} <= {
        p.name for p in folder.iterdir()}
    config_json = json.loads((folder / "adapter_config.json").read_text())
    assert config_json["config"] == PFEIFFER_CONFIG and is_pfeiffer(config_json)
    assert config_json["model_name"] == "bert-base-uncased" and config_json["name"] == "my_task"
    assert config_json["zoo_tupate"]["method"] == "bottleneck"
    state = torch.load(folder / "pytorch_adapter.bin", weights_only=True)
    assert sorted(state) == sorted(f"bert.encoder.layer.{i}.output.adapters.my_task.{n}" for i in range(2) for n in (
        "adapter_down.0.weight", "adapter_down.0.bias", "adapter_up.weight", "adapter_up.bias"))
    head = torch.load(folder / "pytorch_model_head.bin", weights_only=True)
    assert sorted(head) == ["heads.my_task.1.bias", "heads.my_task.1.weight", "heads.my_task.4.bias",
                            "heads.my_task.4.weight"]
    for repr_ in ("raw", "delta"):
        assert embed(folder, repr=repr_).space == embed(FIXTURES / "lib" / "rte", repr=repr_).space
    assert is_pfeiffer({"config": "pfeiffer"}) and not is_pfeiffer({"config": {**PFEIFFER_CONFIG, "mh_adapter": True}})
