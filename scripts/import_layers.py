"""The package's layers read from its own imports: the import graph, the imports that climb a layer, the
import circles, and the layer diagram in docs/architecture.md (Mermaid), made from the code.

    python scripts/import_layers.py            # check: exit 1 and list what is wrong
    python scripts/import_layers.py --write    # rewrite the diagram in docs/architecture.md

tests/test_architecture.py runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "zoo_tupate"
DOC = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- layers:begin (scripts/import_layers.py --write) -->", "<!-- layers:end -->"

#: Bottom to top: the data path (checkpoint files → readers → embedding → cards → store → ranking → answer),
#: with tuning and hub beside each other, then building, benchmarks, and the entry points.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("formats",),
    ("readers",),
    ("embedding",),
    ("cards",),
    ("store",),
    ("ranking",),
    ("tuning", "hub"),
    ("answer",),
    ("zoobuild",),
    ("bench",),
    ("api", "cli", "__init__", "__main__"),
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
TOP = set(LAYERS[-1])


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package modules it imports (every import: top level, in functions, under TYPE_CHECKING)."""
    found = modules(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in found else module for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in found and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in found and target != name:
                    graph[name].add(target)
    return graph


def layer_of(module: str) -> str:
    """The layer a module belongs to: its top-level package (or module) under ``zoo_tupate``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def unplaced(root: Path = PACKAGE) -> list[str]:
    """Top-level packages or modules that no layer names."""
    return sorted({layer_of(m) for m in modules(root)} - set(LEVEL))


def climbing(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer, or sideways to another package on the same level."""
    wrong = []
    for module, imports in graph.items():
        own = layer_of(module)
        if own in TOP:
            continue
        for target in imports:
            other = layer_of(target)
            if other != own and LEVEL.get(other, 99) >= LEVEL.get(own, -1):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module; Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if module not in index:
            visit(module)
    return found


def diagram(graph: dict[str, set[str]]) -> str:
    """A Mermaid flowchart of the layers (bottom to top) and the layer-to-layer imports the code makes."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for module, imports in graph.items():
        for target in imports:
            a, b = layer_of(module), layer_of(target)
            if a != b and a not in ("__init__", "__main__") and b not in ("__init__", "__main__"):
                edges[(a, b)] += 1
    counts: dict[str, int] = defaultdict(int)
    for module in modules():
        counts[layer_of(module)] += 1
    lines = ["```mermaid", "flowchart BT"]
    for level, names in enumerate(LAYERS):
        for name in names:
            if name in ("__init__", "__main__"):
                continue
            lines.append(f"  {name}[\"{level}. {name} ({counts[name]} modules)\"]")
    for (a, b), n in sorted(edges.items(), key=lambda e: (LEVEL[e[0][0]], LEVEL[e[0][1]], e[0])):
        lines.append(f"  {b} -->|{n}| {a}")
    lines.append("```")
    return "\n".join(lines)


def doc_with_diagram(text: str, graph: dict[str, set[str]]) -> str:
    """``text`` (docs/architecture.md) with the diagram between its markers replaced by the current one."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{diagram(graph)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the diagram in docs/architecture.md")
    args = parser.parse_args(argv)
    graph = import_graph()
    problems = [f"not in a layer: {name}" for name in unplaced()]
    problems += [f"climbs a layer: {edge}" for edge in climbing(graph)]
    problems += ["import circle: " + " <-> ".join(c) for c in circles(graph)]
    text = DOC.read_text(encoding="utf-8")
    fresh = doc_with_diagram(text, graph)
    if args.write and fresh != text:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"wrote the diagram in {DOC.relative_to(REPO)}")
    elif fresh != text:
        problems.append(f"{DOC.relative_to(REPO)}: the diagram is out of date (run with --write)")
    for line in problems:
        print(line)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(modules())} modules, {edges} import edges, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
