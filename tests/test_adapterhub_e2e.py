"""The Hub's real zoo meets a dataset, offline: AdapterHub ``pf`` adapters (written by the real ``adapters``
library: ``tests/fixtures/adapterhub``) served by the test Hub under their catalog ids, pulled for
``glue/*``, ranked for a dataset target by a bottleneck probe, and ``zoo build`` tuning only what is missing.

The fixture model is a tiny BERT standing in for ``bert-base-uncased`` (the base model the catalog lists the
``AdapterHub/bert-base-uncased-pf-<task>`` repos for): ``--base-model <folder> --base-model-id bert-base-uncased``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from click.testing import CliRunner
from tuning_helpers import toy_dataset

from zoo_tupate.cli import main
from zoo_tupate.store.index import Index
from zoo_tupate.tuning.bottleneck import PFEIFFER_CONFIG
from zoo_tupate.tuning.probe import plan_probes

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adapterhub"
MODEL = FIXTURES / "model"
BASE_ID = "bert-base-uncased"
PF_TASKS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb")  # WNLI has no pf adapter
REPOS = {f"AdapterHub/{BASE_ID}-pf-{t}" for t in PF_TASKS}


def _publish(hub_server) -> None:
    for task in PF_TASKS:
        folder = FIXTURES / "lib" / task
        files = {p.name: p for p in sorted(folder.iterdir()) if p.name != "logits.json"}
        hub_server.commit_files(f"AdapterHub/{BASE_ID}-pf-{task}", files, message="adapters 1.3 save_adapter")


def _run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_pull_glue_then_a_dataset_target_ranks_exactly_the_pf_adapters_and_build_tunes_only_wnli(
        hub_server, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _publish(hub_server)
    pulled = json.loads(_run("pull", "glue/*", "--base-model", BASE_ID, "--json").stdout)
    assert {r["repo"] for r in pulled if r["outcome"] == "indexed"} == REPOS
    assert {r["method"] for r in pulled} == {"bottleneck"}
    alias = json.loads(_run("pull", "nli/rte@ukp", "--base-model", BASE_ID, "--json").stdout)
    assert [(r["repo"], r["outcome"]) for r in alias] == [(f"AdapterHub/{BASE_ID}-pf-rte", "unchanged")]
    index = Index(hub_server.zoo_home)
    spaces = {e.space.split("/")[2] for e in index.entries()}
    assert spaces == {"raw", "delta"}

    target = toy_dataset(tmp_path / "my-dataset", n_train=48, n_val=16, pair=True)
    ranked = json.loads(_run("suggest", "--target", str(target), "--base-model", str(MODEL), "--base-model-id",
                             BASE_ID, "--max-train", "48", "--by-space", "--json").stdout)
    assert {row["source"].split("@")[0] for row in ranked} == REPOS
    assert {row["method"] for row in ranked} == {"bottleneck"}
    answer = json.loads(_run("suggest", "--target", str(target), "--base-model", str(MODEL), "--base-model-id",
                             BASE_ID, "--max-train", "48", "--json").stdout)  # the one list; the probe is cached
    assert len(answer["sources"]) == len(REPOS) and {r["source"].split("@")[0] for r in answer["rows"]} == REPOS

    data = tmp_path / "data"
    toy_dataset(data / "wnli", n_train=32, n_val=8, pair=True)
    built = json.loads(_run("zoo", "build", "glue/*", "--methods", "bottleneck", "--base-model", str(MODEL),
                            "--base-model-id", BASE_ID, "--data-dir", str(data), "--push", "me", "--json").stdout)
    items = {i["task"]: i for i in built["items"]}
    assert set(items) == {f"glue/{t}" for t in (*PF_TASKS, "wnli")}
    assert {t for t, i in items.items() if "tuned" in i["outcome"]} == {"glue/wnli"}
    assert items["glue/wnli"]["outcome"] == "tuned+indexed+pushed"
    assert all(items[f"glue/{t}"]["outcome"] in ("pulled", "unchanged", "skipped") for t in PF_TASKS)
    files = hub_server.repo_files(f"me/{BASE_ID}-glue-wnli-bottleneck")
    assert {"adapter_config.json", "pytorch_adapter.bin", "head_config.json", "pytorch_model_head.bin"} <= set(files)
    assert "library_name: adapter-transformers" in files["README.md"].decode() and f"base_model: {BASE_ID}" in \
        files["README.md"].decode()
    config = json.loads(files["adapter_config.json"])
    assert config["config"] == PFEIFFER_CONFIG and config["model_name"] == BASE_ID
    state = torch.load(io.BytesIO(files["pytorch_adapter.bin"]), weights_only=True)
    assert all(".output.adapters." in k and k.startswith("bert.encoder.layer.") for k in state)
    theirs = torch.load(FIXTURES / "lib" / "rte" / "pytorch_adapter.bin", weights_only=True)
    assert sorted(k.replace(".wnli.", ".rte.") for k in state) == sorted(theirs)
    # the Hub's pf adapters and the one tuned here share one probe configuration (one probe, both spaces)
    plans = plan_probes(str(target), Index(hub_server.zoo_home), str(MODEL), base_model_id=BASE_ID, measure=False)
    assert [(p.method, p.entries) for p in plans] == [("bottleneck", 2 * (len(PF_TASKS) + 1))]
