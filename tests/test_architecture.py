"""The package's layers, read from its own imports (scripts/import_layers.py; docs/architecture.md): every
module in a layer, no import circles, no import that climbs a layer, small modules, a current diagram."""

from __future__ import annotations

from pathlib import Path

from scripts_helper import load_script

layers = load_script("import_layers")


def test_every_module_sits_in_a_layer() -> None:
    assert not layers.unplaced(), f"outside the layers: {layers.unplaced()} (name them in scripts/import_layers.py)"


def test_no_import_climbs_a_layer() -> None:
    wrong = layers.climbing(layers.import_graph())
    assert not wrong, "imports that go up (or sideways) a layer:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    found = layers.circles(layers.import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_a_circle_and_a_climb(tmp_path: Path) -> None:
    pkg = tmp_path / "zoo_tupate"
    for name, body in {"core/__init__.py": "", "core/a.py": "from zoo_tupate.core import b\n",
                       "core/b.py": "def f():\n    from zoo_tupate.core.a import x\n",
                       "store/__init__.py": "", "store/s.py": "",
                       "core/c.py": "from zoo_tupate.store.s import y\n", "__init__.py": ""}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    graph = layers.import_graph(pkg)
    assert layers.circles(graph) == [["zoo_tupate.core.a", "zoo_tupate.core.b"]]
    assert layers.climbing(graph) == ["zoo_tupate.core.c -> zoo_tupate.store.s"]


def test_modules_stay_small() -> None:
    big = {str(p.relative_to(layers.PACKAGE)): n for p in layers.PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not big, f"modules over 400 lines (split them along their concepts): {big}"


def test_the_architecture_diagram_is_current() -> None:
    text = layers.DOC.read_text(encoding="utf-8")
    assert layers.doc_with_diagram(text, layers.import_graph()) == text, \
        "docs/architecture.md's diagram is out of date: python scripts/import_layers.py --write"
