"""The CLI as a user runs it: info, embed, index, suggest; errors are one line with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import make_checkpoint

from zoo_tupate.cli import main


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_info_embed_json(tmp_path: Path, home: Path) -> None:
    folder = make_checkpoint(tmp_path / "lora")
    code, out, _ = run(home, "info", str(folder), "--json")
    info = json.loads(out)
    assert code == 0 and info["method"] == "lora" and info["layers"] == [0, 1] and info["dim"] == 512
    assert info["excluded_tensors"] and not info["degenerate"]
    code, out, _ = run(home, "embed", str(folder), "--json", "--output", str(tmp_path / "v.npy"))
    described = json.loads(out)
    for key in ("method", "repr", "pooling", "dim", "layers", "space", "base_model", "degenerate",
                "excluded_tensors"):
        assert key in described
    vector = np.load(tmp_path / "v.npy")
    assert vector.dtype == np.float32 and vector.shape == (described["dim"],)


def test_index_and_suggest_workflow(tmp_path: Path, home: Path) -> None:
    paths = [make_checkpoint(tmp_path / f"src{i}", perturb_seed=i + 1) for i in range(3)]
    code, _, err = run(home, "index", "add", *map(str, paths), "--repr", "both")
    assert code == 0, err
    code, out, _ = run(home, "index", "ls", "--json")
    listed = json.loads(out)
    assert [e["name"] for e in listed] == sorted(e["name"] for e in listed)
    assert {"name", "method", "space", "dim", "source"} <= set(listed[0])
    code, out, err = run(home, "suggest", "--target", "src0", "--json", "--by-space", "--repr", "raw", "--repr", "delta")
    rows = json.loads(out)
    assert code == 0, err
    assert {r["name"] for r in rows} == {"src1", "src2"}
    assert {r["space"].split("/")[2] for r in rows} == {"raw", "delta"}
    code, out, _ = run(home, "suggest", "--target", "src0", "--json", "--by-space", "--repr", "raw", "--repr", "delta",
                       "--ensemble")
    rows = json.loads(out)
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["methods"] == ["lora"]
    code, out, _ = run(home, "index", "rm", "src1")
    assert code == 0
    code, out, _ = run(home, "index", "rebuild", "--json")
    assert json.loads(out)["entries"] == 4


def test_suggest_compares_lora_in_delta_and_other_methods_in_raw_by_default(tmp_path: Path, home: Path) -> None:
    methods = ("lora", "bitfit", "prefix")
    paths = [make_checkpoint(tmp_path / f"{m}{i}", m, perturb_seed=i + 1) for m in methods for i in range(3)]
    code, _, err = run(home, "index", "add", *map(str, paths))
    assert code == 0, err
    stored: dict[str, set[str]] = {}
    for entry in json.loads(run(home, "index", "ls", "--json", "--no-starter")[1]):
        stored.setdefault(entry["name"], set()).add(entry["repr"])
    assert stored == {f"{m}{i}": {"raw", "delta"} if m == "lora" else {"raw"} for m in methods for i in range(3)}
    for method in methods:
        code, out, err = run(home, "suggest", "--target", f"{method}0", "--json", "--by-space")
        assert code == 0, err
        rows = json.loads(out)
        want = "delta" if method == "lora" else "raw"
        assert {r["name"] for r in rows} == {f"{method}1", f"{method}2"}
        assert {(r["repr"], r["space"].split("/")[2]) for r in rows} == {(want, want)}
        assert "compared in" not in err  # no repr fallback note
    target = str(make_checkpoint(tmp_path / "target", perturb_seed=9))
    code, out, err = run(home, "suggest", "--target", target, "--json", "--by-space")
    assert code == 0, err
    assert [r["repr"] for r in json.loads(out)] == ["delta"] * 3
    code, out, err = run(home, "suggest", "--target", target, "--json", "--by-space", "--repr", "raw")
    assert code == 0, err
    assert [r["repr"] for r in json.loads(out)] == ["raw"] * 3


def test_suggest_falls_back_to_raw_with_a_note_when_lora_was_indexed_raw_only(tmp_path: Path, home: Path) -> None:
    paths = [make_checkpoint(tmp_path / f"src{i}", perturb_seed=i + 1) for i in range(3)]
    code, _, err = run(home, "index", "add", *map(str, paths), "--repr", "raw")
    assert code == 0, err
    target = str(make_checkpoint(tmp_path / "target", perturb_seed=9))
    code, out, err = run(home, "suggest", "--target", target, "--json", "--by-space")
    assert code == 0, err
    assert [r["repr"] for r in json.loads(out)] == ["raw"] * 3
    assert err.count("note:") == 1 and "index add --repr both" in " ".join(err.split())


def test_errors_are_one_line_without_traceback(tmp_path: Path, home: Path) -> None:
    corrupt = make_checkpoint(tmp_path / "bad")
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x00" * 7)
    cases = [
        ("info", str(tmp_path / "nope")),
        ("embed", str(corrupt)),
        ("index", "add", str(corrupt)),
        ("suggest", "--target", str(corrupt)),
        ("suggest", "--target", "no-such-entry"),
        ("index", "rm", "ghost"),
    ]
    for args in cases:
        code, out, err = run(home, *args)
        assert code != 0, args
        lines = [line for line in err.strip().splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, err)
        assert "Traceback" not in err
    assert not (home / "index" / "manifest.json").exists()
