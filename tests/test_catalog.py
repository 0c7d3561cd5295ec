"""The task catalog: every card validates, bad cards are named, patterns resolve in the documented order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from zoo_tupate.cards.catalog import (
    adapter_repos,
    classify_pattern,
    load_catalog,
    match,
    resolve_alias,
)
from zoo_tupate.core.errors import CatalogError

REPO = Path(__file__).resolve().parents[1]
CARDS = REPO / "zoo_tupate" / "cards"
MANIFEST = REPO.parent / "shared" / "data" / "cr" / "manifest.json"

GLUE = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
QA = ["squad", "squad_v2", "newsqa", "hotpotqa", "duorc_p", "duorc_s", "drop", "wikihop", "boolq", "comqa", "cq"]
EXPECTED = {f"glue/{t}" for t in GLUE} | {"nli/snli", "nli/scitail"} | {f"qa/{t}" for t in QA}


def test_catalog_has_the_papers_22_tasks():
    catalog = load_catalog()
    assert set(catalog) == EXPECTED
    for name, card in catalog.items():
        assert card.name == name and card.family == name.split("/")[0]
        assert card.source_file.endswith(f"{name}.yaml")


def test_installed_catalog_is_the_repo_catalog():
    assert load_catalog() == load_catalog(CARDS)


def test_no_id_claims_to_be_verified():
    """The Hub was unreachable when the catalog was written: nothing may claim otherwise."""
    for card in load_catalog().values():
        assert card.dataset.verified is False, card.name
        assert all(a.verified is False for a in card.adapters), card.name
        assert all(a.verified is False for a in card.aliases), card.name


def test_known_adapters_and_aliases_of_rte():
    card = load_catalog()["glue/rte"]
    assert adapter_repos(card) == [
        ("AdapterHub/bert-base-uncased-pf-rte", "bottleneck", "bert-base-uncased"),
        ("AdapterHub/roberta-base-pf-rte", "bottleneck", "roberta-base"),
    ]
    assert [a.id for a in card.aliases] == ["nli/rte@ukp"]
    assert card.dataset.hub_id == "nyu-mll/glue" and card.dataset.config == "rte"
    assert card.dataset.text_columns == ["sentence1", "sentence2"]


def test_adapter_repos_filters_by_base_model_and_method():
    card = load_catalog()["glue/rte"]
    assert adapter_repos(card, base_model="FacebookAI/roberta-base") == [
        ("AdapterHub/roberta-base-pf-rte", "bottleneck", "roberta-base")
    ]
    assert adapter_repos(card, base_model="bert-base-uncased", methods=["bottleneck"])[0][0].endswith("-pf-rte")
    assert adapter_repos(card, methods=["lora"]) == []
    assert adapter_repos(card, base_model="someone/roberta-base") == []


def test_datasize_order_matches_the_paper():
    """Appendix A ranks the CR tasks by training-set size; the catalog's sizes give the same order."""
    catalog = load_catalog()
    cr = sorted((c for c in catalog.values() if c.paper_group == "CR"), key=lambda c: -c.train_size)
    assert [c.short_name for c in cr] == [
        "snli", "mnli", "qqp", "qnli", "sst2", "scitail", "cola", "stsb", "mrpc", "rte", "wnli"
    ]
    assert catalog["glue/wnli"].train_size == 634
    assert catalog["qa/squad_v2"].train_size > catalog["qa/squad"].train_size > catalog["qa/cq"].train_size


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shared data not present")
def test_label_orders_match_the_shared_data():
    manifest = json.loads(MANIFEST.read_text())["tasks"]
    catalog = {c.short_name: c for c in load_catalog().values()}
    for task, info in manifest.items():
        card = catalog[task]
        if isinstance(info["labels"], dict):
            assert card.dataset.labels == sorted(info["labels"], key=info["labels"].get), task
            assert card.task_type == "classification"
        else:
            assert card.dataset.labels is None and card.task_type == "regression", task


# --- bad cards --------------------------------------------------------------------------------------------


def _bad_catalog(tmp_path: Path, edit) -> Path:
    root = tmp_path / "cards"
    shutil.copytree(CARDS / "glue", root / "glue")
    path = root / "glue" / "rte.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("train_size"), "train_size: missing required field"),
        (lambda d: d.update(train_size="2.5k"), "train_size: expected integer"),
        (lambda d: d.update(train_size=True), "train_size: expected integer"),
        (lambda d: d["dataset"].pop("labels"), "dataset.labels: missing required field"),
        (lambda d: d["dataset"].update(text_columns="sentence1"), "dataset.text_columns: expected array"),
        (lambda d: d["adapters"][0].update(method="adapter"), "adapters[0].method"),
        (lambda d: d["adapters"][1].pop("verified"), "adapters[1].verified: missing required field"),
        (lambda d: d.update(task_type="nli"), "task_type"),
        (lambda d: d.update(colour="red"), "colour: unknown field"),
        (lambda d: d.update(name="glue/rte2"), "name:"),
        (lambda d: d["dataset"].update(labels=None), "dataset.labels: a classification task needs"),
        (lambda d: d["dataset"].update(splits={"validation": "validation"}), "dataset.splits"),
    ],
)
def test_bad_card_is_rejected_naming_file_and_field(tmp_path, edit, field):
    root = _bad_catalog(tmp_path, edit)
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    message = str(err.value)
    assert str(root / "glue" / "rte.yaml") in message
    assert field in message


def test_unparsable_yaml_is_rejected_naming_the_file(tmp_path):
    root = tmp_path / "cards"
    (root / "glue").mkdir(parents=True)
    (root / "glue" / "rte.yaml").write_text("name: glue/rte\n  family: [glue\n")
    with pytest.raises(CatalogError, match=r"rte\.yaml: not valid YAML"):
        load_catalog(root)


def test_an_alias_claimed_by_two_cards_is_rejected(tmp_path):
    root = _bad_catalog(tmp_path, lambda d: d["aliases"].append({"id": "nli/multinli@ukp", "verified": False}))
    with pytest.raises(CatalogError, match=r"nli/multinli@ukp.*already an alias of glue/mnli"):
        load_catalog(root)


def test_an_empty_catalog_folder_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="no task cards"):
        load_catalog(tmp_path)


# --- globs and resolution order -----------------------------------------------------------------------------


def test_glob_matching():
    assert [c.name for c in match("glue/*")] == sorted(f"glue/{t}" for t in GLUE)
    assert [c.name for c in match("*/rte")] == ["glue/rte"]
    assert [c.name for c in match("qa/squad*")] == ["qa/squad", "qa/squad_v2"]
    assert [c.name for c in match(["rte", "nli/*", "glue/rte"])] == ["glue/rte", "nli/scitail", "nli/snli"]
    assert [c.name for c in match("duorc_?")] == ["qa/duorc_p", "qa/duorc_s"]
    assert len(match("*")) == 22


def test_glob_matching_nothing():
    with pytest.raises(CatalogError, match="'qa/nothing\\*' matches no catalog task"):
        match(["glue/rte", "qa/nothing*"])
    assert match("qa/nothing*", strict=False) == []


@pytest.mark.parametrize(
    ("pattern", "kind", "tasks", "repo", "rev"),
    [
        ("glue/rte", "catalog", ["glue/rte"], None, None),
        ("qa/squad*", "catalog", ["qa/squad", "qa/squad_v2"], None, None),
        ("*/rte", "catalog", ["glue/rte"], None, None),
        ("rte", "catalog", ["glue/rte"], None, None),
        ("nli/multinli@ukp", "alias", ["glue/mnli"], None, None),
        ("NLI/RTE@ukp", "alias", ["glue/rte"], None, None),
        ("sentiment/sst-2@ukp", "alias", ["glue/sst2"], None, None),
        ("AdapterHub/roberta-base-pf-rte", "hub", [], "AdapterHub/roberta-base-pf-rte", None),
        ("org/name@v1.0", "hub", [], "org/name", "v1.0"),
        ("org/name@0123abcd", "hub", [], "org/name", "0123abcd"),
        ("hub:glue/rte", "hub", [], "glue/rte", None),
        ("hub:nli/multinli@ukp", "hub", [], "nli/multinli", "ukp"),
        ("hub:gpt2@main", "hub", [], "gpt2", "main"),
    ],
)
def test_resolution_order(pattern, kind, tasks, repo, rev):
    resolved = classify_pattern(pattern)
    assert resolved.kind == kind
    assert [t.name for t in resolved.tasks] == tasks
    assert (resolved.repo_id, resolved.revision) == (repo, rev)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("qa/nothing*", "matches no catalog task"),
        ("nli/unknown@ukp", "looks like an AdapterHub id"),
        ("justaword", "neither a catalog task"),
        ("a/b/c", "neither a catalog task"),
        ("org/name@", "neither a catalog task"),
        ("hub:", "after 'hub:'"),
        ("hub:a/b/c", "after 'hub:'"),
        ("   ", "empty source pattern"),
    ],
)
def test_unknown_patterns_are_errors(pattern, message):
    with pytest.raises(CatalogError, match=message):
        classify_pattern(pattern)


def test_resolve_alias():
    assert resolve_alias("nli/multinli@ukp").name == "glue/mnli"
    assert resolve_alias("qa/squad2@ukp").name == "qa/squad_v2"
    assert resolve_alias("nli/multinli") is None
    assert resolve_alias("org/name@main") is None
