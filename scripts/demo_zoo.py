#!/usr/bin/env python3
"""Make and publish the small adapter zoo that ``scripts/offline_demo.sh`` serves from a local Hub server.

``make DIR``: tiny AdapterHub bottleneck adapters (the adapter-transformers 3.x layout: ``pytorch_adapter.bin``,
``adapter_config.json``, ``head_config.json``, ``pytorch_model_head.bin``) standing in for the catalog's
``AdapterHub/bert-base-uncased-pf-<task>`` repos of the GLUE tasks, and a target adapter ``DIR/target``.
Hidden size 32, 2 layers: stand-ins, not real BERT-base adapters. Tasks of one family (NLI, paraphrase,
...) share a component, so a good ranking puts the target's family (NLI) first.

``publish DIR``: upload them with huggingface_hub's client to ``$HF_ENDPOINT`` (which must be a local
server), plus the real third-party adapters of ``../shared/adapters`` when present, as ``shared/<name>``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HIDDEN, LAYERS, BOTTLENECK = 32, 2, 4
FAMILIES = {
    "nli": ["mnli", "qnli", "rte"],
    "paraphrase": ["mrpc", "qqp", "stsb"],
    "sentiment": ["sst2"],
    "acceptability": ["cola"],
}
TARGET_FAMILY = "nli"
REPO_PATTERN = "AdapterHub/bert-base-uncased-pf-{task}"
SHARED_ADAPTERS = Path(__file__).resolve().parents[2] / "shared" / "adapters"


def _adapter(folder: Path, name: str, family_seed: int, task_seed: int) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    fam = torch.Generator().manual_seed(family_seed)
    own = torch.Generator().manual_seed(task_seed)
    state = {}
    for layer in range(LAYERS):
        prefix = f"bert.encoder.layer.{layer}.output.adapters.{name}"
        for key, shape in ((f"{prefix}.adapter_down.0.weight", (BOTTLENECK, HIDDEN)),
                           (f"{prefix}.adapter_down.0.bias", (BOTTLENECK,)),
                           (f"{prefix}.adapter_up.weight", (HIDDEN, BOTTLENECK)),
                           (f"{prefix}.adapter_up.bias", (HIDDEN,))):
            state[key] = (torch.randn(shape, generator=fam) + 0.6 * torch.randn(shape, generator=own)) * 0.05
    torch.save(state, folder / "pytorch_adapter.bin")
    torch.save({f"heads.{name}.1.weight": torch.zeros(2, HIDDEN)}, folder / "pytorch_model_head.bin")
    config = {"config": {"mh_adapter": False, "output_adapter": True, "reduction_factor": HIDDEN // BOTTLENECK,
                         "non_linearity": "relu"},
              "hidden_size": HIDDEN, "model_class": "BertAdapterModel", "model_name": "bert-base-uncased",
              "model_type": "bert", "name": name, "version": "3.1.0"}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    (folder / "head_config.json").write_text(json.dumps({"head_type": "classification", "num_labels": 2,
                                                          "name": name, "version": "3.1.0"}, indent=2))
    (folder / "README.md").write_text(
        "---\nlibrary_name: adapter-transformers\ntags:\n- adapter-transformers\n- bert\n---\n\n"
        f"# {name}: a tiny stand-in bottleneck adapter (hidden {HIDDEN}, {LAYERS} layers) for the zoo-tupate demo\n"
    )


def make(root: Path) -> None:
    """Write the GLUE stand-ins under ``root/glue/<task>`` and the target under ``root/target``."""
    for f, (_family, tasks) in enumerate(sorted(FAMILIES.items())):
        for t, task in enumerate(tasks):
            _adapter(root / "glue" / task, task, family_seed=100 + f, task_seed=1000 + 10 * f + t)
    f = sorted(FAMILIES).index(TARGET_FAMILY)
    _adapter(root / "target", "my_task", family_seed=100 + f, task_seed=9999)
    print(f"made {sum(len(t) for t in FAMILIES.values())} stand-in adapters and a target under {root}")


def publish(root: Path) -> None:
    """Upload the stand-ins (and ../shared/adapters when present) to the local server at $HF_ENDPOINT."""
    from huggingface_hub import HfApi

    endpoint = os.environ.get("HF_ENDPOINT", "")
    if not endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        sys.exit(f"refusing to publish: HF_ENDPOINT={endpoint!r} is not a local server")
    api = HfApi(endpoint=endpoint)
    uploads = [(REPO_PATTERN.format(task=p.name), p) for p in sorted((root / "glue").iterdir())]
    if SHARED_ADAPTERS.is_dir():
        uploads += [(f"shared/{p.name}", p) for p in sorted(SHARED_ADAPTERS.iterdir()) if p.is_dir()]
    for repo, folder in uploads:
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=folder, commit_message=f"upload {folder.name}")
        print(f"published {folder} as {repo}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "publish"):
        sys.exit("usage: demo_zoo.py make|publish DIR")
    {"make": make, "publish": publish}[sys.argv[1]](Path(sys.argv[2]))
