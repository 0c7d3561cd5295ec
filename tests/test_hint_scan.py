"""Every option an error or hint tells the user to pass exists on the command that printed it.

Two scans: (1) the package's text: every ``zoo-tupate CMD ... --opt`` it quotes names an option of CMD, and
every ``--opt`` it mentions exists on some command; (2) mistakes a user makes, run through the CLI: every
``--opt`` in what the command printed exists on that command (or on the main group, or on the command the
message quotes).
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zoo_tupate.cli import main

PACKAGE = Path(__file__).resolve().parents[1] / "zoo_tupate"
OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
QUOTED = re.compile(r"zoo-tupate((?: [a-z]+)+)((?: +[^'`\"&;)]*)?)")
#: Options of other programs the package mentions (``pip install --no-deps``).
FOREIGN = {"no-deps"}


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command by its path (``("index", "add")``), groups included."""
    out: dict[tuple[str, ...], click.Command] = {path: group}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out.update(commands(cmd, (*path, name)))
        else:
            out[(*path, name)] = cmd
    return out


def options_of(cmd: click.Command) -> set[str]:
    return {opt.lstrip("-") for p in cmd.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}


GLOBAL = options_of(main) | {"help", "version"}


def resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command] | None:
    """The longest command path at the start of ``words``."""
    table = commands()
    for n in range(len(words), 0, -1):
        if tuple(words[:n]) in table:
            return tuple(words[:n]), table[tuple(words[:n])]
    return None


def unknown_options(text: str, printed_by: tuple[str, ...]) -> list[str]:
    """Options ``text`` tells the user to pass that do not exist where it points them."""
    table = commands()
    own = options_of(table[printed_by]) | GLOBAL
    bad: list[str] = []
    quoted_spans = []
    for found in QUOTED.finditer(text):
        hit = resolve(found.group(1).split())
        if hit is None or not hit[0]:
            continue  # prose ("zoo-tupate reads ...")
        quoted_spans.append(found.span())
        target = options_of(hit[1]) | GLOBAL
        bad += [f"zoo-tupate {' '.join(hit[0])} --{o}" for o in OPTION.findall(found.group(0)) if o not in target]
    for found in OPTION.finditer(text):
        if any(a <= found.start() < b for a, b in quoted_spans):
            continue
        if found.group(1) not in own | FOREIGN:
            bad.append(f"{' '.join(printed_by) or 'zoo-tupate'} --{found.group(1)}")
    return bad


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values))
    return out


def test_every_quoted_command_and_option_in_the_package_exists() -> None:
    every = set().union(*(options_of(c) for c in commands().values())) | GLOBAL
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for text in _strings(path):
            for found in QUOTED.finditer(text):
                hit = resolve(found.group(1).split())
                if hit is None or not hit[0]:
                    continue  # prose ("zoo-tupate reads ...")
                target = options_of(hit[1]) | GLOBAL
                bad += [f"{path.name}: zoo-tupate {' '.join(hit[0])} has no --{o}"
                        for o in OPTION.findall(found.group(0)) if o not in target]
            bad += [f"{path.name}: --{o} is an option of no command" for o in OPTION.findall(text) if o not in every | FOREIGN]
    assert not bad, "\n".join(sorted(set(bad)))


def _csv(folder: Path, header: tuple[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 12), ("validation", 4)):
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([f"a fine review number {i}", "positive" if i % 2 else "negative"] for i in range(n))
    return folder


def _mistakes(tmp: Path) -> list[tuple[tuple[str, ...], list[str]]]:
    reviews = str(_csv(tmp / "reviews", ("review", "sentiment")))
    empty = tmp / "empty"
    empty.mkdir()
    base = ["--base-model", "sentence-transformers/all-MiniLM-L6-v2"]
    return [
        (("suggest",), ["--target", reviews, *base]),
        (("suggest",), ["--target", reviews, *base, "--text-columns", "review"]),
        (("tune",), ["--dataset", reviews, *base, "--output", str(tmp / "out")]),
        (("suggest",), ["--target", reviews]),
        (("suggest",), ["--target", "glue/rte", "--verify", "2"]),
        (("suggest",), ["--target", str(empty)]),
        (("suggest",), ["--target", "glue/rtee"]),
        (("suggest",), ["--target", "qa/squad"]),
        (("suggest",), ["--target", reviews, "--base-model", "some-org/other-model"]),
        (("zoo", "build"), ["glue/rtee", *base, "--dry-run"]),
        (("index", "rm"), ["glue/rte"]),
    ]


def test_every_option_a_mistake_tells_the_user_to_pass_exists_on_that_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad, seen = [], 0
    for path, args in _mistakes(tmp_path):
        done = CliRunner().invoke(main, ["--home", str(home), *path, *args], env={"HF_HUB_OFFLINE": "1"})
        said = done.stderr + done.stdout
        assert "Traceback" not in said, said
        seen += len(OPTION.findall(said))
        bad += [f"{' '.join(path)} {' '.join(args[:2])}: {b}\n    {said.strip()}" for b in unknown_options(said, path)]
    assert not bad, "\n".join(bad)
    assert seen >= 8  # the scan read hints, it did not pass for want of any


@pytest.mark.parametrize(("text", "by", "expect"), [
    ("pass --text-columns", ("suggest",), []),
    ("pass --text-columns", ("zoo", "build"), ["zoo build --text-columns"]),
    ("add it with 'zoo-tupate index add --repr both PATH'", ("suggest",), []),
    ("with 'zoo-tupate index add --nope PATH'", ("suggest",), ["zoo-tupate index add --nope"]),
])
def test_the_scanner_itself_tells_a_missing_option(text: str, by: tuple[str, ...], expect: list[str]) -> None:
    assert unknown_options(text, by) == expect
