"""``zoo-tupate tune`` end to end: JSON summary, output layout, one-line errors, and ``--push``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuning_helpers import pretrained_base, tiny_gpt2, toy_dataset

from zoo_tupate.cli import main


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), "tune", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("toy") / "toy", 96, 24)


def test_tune_all_methods_json(toy: Path, tmp_path: Path) -> None:
    code, out, err = _run(tmp_path / "home", "--dataset", str(toy), "--base-model", str(pretrained_base()),
                          "--base-model-id", "tiny/bert", "--epochs", "2", "--early-epochs", "2",
                          "--output", str(tmp_path / "out"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [r["method"] for r in summary["results"]] == ["lora", "bitfit", "prefix"]
    for result in summary["results"]:
        folder = tmp_path / "out" / result["method"]
        assert (folder / "train_log.json").is_file()
        for kind in ("early", "best"):
            assert (folder / kind / "adapter_config.json").is_file()
            assert (folder / kind / "task_embedding.safetensors").is_file()  # the embedding card
        assert result["lr"] == {"lora": 5e-4, "bitfit": 4e-4, "prefix": 1e-2}[result["method"]]
        assert result["rows_per_s"] > 0 and result["cards"]
    assert (tmp_path / "out" / "prefix" / "best" / "head.safetensors").is_file()


def test_default_output_under_home(toy: Path, tmp_path: Path) -> None:
    code, out, err = _run(tmp_path / "home", "--dataset", str(toy), "--method", "bitfit", "--base-model",
                          str(pretrained_base()), "--epochs", "1", "--early-epochs", "1", "--json")
    assert code == 0, err
    output = Path(json.loads(out)["output"])
    assert output.parent == tmp_path / "home" / "runs" and (output / "bitfit" / "early").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "2", "--early-epochs", "3"], "--early-epochs 3 exceeds --epochs 2"),
        (["--lr", "1e-3", "--lr-grid"], "not both"),
        (["--label-column", "gold"], "no label column 'gold'"),
    ],
)
def test_bad_settings_are_one_line_errors(toy: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = _run(tmp_path / "home", "--dataset", str(toy), "--base-model", str(pretrained_base()),
                          "--output", str(tmp_path / "out"), *args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "lora").exists()


def test_unknown_dataset_and_untargetable_model(tmp_path: Path, toy: Path) -> None:
    code, _, err = _run(tmp_path / "home", "--dataset", str(tmp_path / "missing"), "--base-model",
                        str(pretrained_base()), "--output", str(tmp_path / "out"))
    assert code == 1 and "missing: no such dataset folder" in err
    gpt2 = tiny_gpt2(tmp_path / "gpt2")
    code, _, err = _run(tmp_path / "home", "--dataset", str(toy), "--method", "bitfit", "--base-model", str(gpt2),
                        "--epochs", "1", "--early-epochs", "1", "--output", str(tmp_path / "out"))
    assert code == 1 and "model type 'gpt2'" in err and len(err.strip().splitlines()) == 1


def test_push_publishes_the_best_adapter(hub_server, toy: Path, tmp_path: Path) -> None:
    code, out, err = _run(tmp_path / "home", "--dataset", str(toy), "--method", "prefix", "--base-model",
                          str(pretrained_base()), "--base-model-id", "tiny/bert", "--epochs", "2",
                          "--early-epochs", "1", "--output", str(tmp_path / "out"), "--push", "me/toy-prefix",
                          "--json")
    assert code == 0, err
    pushed = json.loads(out)["results"][0]["pushed"]
    assert pushed["repo"] == "me/toy-prefix"
    files = hub_server.repo_files("me/toy-prefix")
    assert {"adapter_model.safetensors", "adapter_config.json", "head.safetensors",
            "task_embedding.safetensors", "README.md"} <= set(files)
    best = tmp_path / "out" / "prefix" / "best"
    assert files["adapter_model.safetensors"] == (best / "adapter_model.safetensors").read_bytes()
