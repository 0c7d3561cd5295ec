"""Catalog and starter-card ids as the Hub spells them (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from huggingface_hub import ModelCard

from zoo_tupate.cards.cardfile import write_card
from zoo_tupate.cards.catalog import load_catalog
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.store.starter import STARTER_HUB_ID, starter_dir


def test_moved_dataset_ids_and_wnlis_note() -> None:
    catalog = load_catalog()
    assert catalog["qa/duorc_p"].dataset.hub_id == catalog["qa/duorc_s"].dataset.hub_id == "ibm-research/duorc"
    assert catalog["qa/wikihop"].dataset.hub_id == "community-datasets/qangaroo"
    assert catalog["qa/comqa"].dataset.hub_id == "iamrishiraj/com_qa"
    wnli = catalog["glue/wnli"]
    assert not wnli.adapters and not wnli.aliases
    assert any("No off-the-shelf adapter exists for WNLI" in note for note in wnli.notes)


def test_starter_cards_name_the_model_as_the_hub_spells_it() -> None:
    readmes = sorted(starter_dir().glob("*/README.md"))
    assert len(readmes) == 11
    for readme in readmes:
        assert ModelCard.load(readme).data.base_model == STARTER_HUB_ID
        config = json.loads((readme.parent / "adapter" / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == STARTER_HUB_ID


def test_a_cards_front_matter_can_spell_the_base_model_as_the_hub_does(tmp_path: Path) -> None:
    emb = Embedding(vector=np.ones(4, np.float32), method="lora", repr="raw", pooling="layer-mean",
                    space="org/model/lora/raw/layer-mean/00000000", base_model="org/model")
    write_card(tmp_path, [emb], extra={"base_model_hub_id": "Org/Model"})
    assert ModelCard.load(tmp_path / "README.md").data.base_model == "Org/Model"
