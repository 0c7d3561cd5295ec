"""A worker's efficiency switches: a kept base model tunes exactly as a fresh load; bucketed batches pad less."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tuning_helpers import random_base, toy_dataset

from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.encoding import Encoded, batches
from zoo_tupate.tuning.methods import keep_base_models
from zoo_tupate.tuning.train import tune


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    return load_file(files[0]) if files[0].suffix == ".safetensors" else torch.load(files[0])


@pytest.mark.parametrize("method", ["lora", "prefix"])
def test_a_kept_base_model_gives_the_same_probe_as_a_fresh_load(tmp_path: Path, method: str) -> None:
    data = toy_dataset(tmp_path / "data", n_train=32, n_val=8)

    def probe(out: str) -> dict[str, torch.Tensor]:
        config = TuneConfig(dataset=str(data), base_model=str(random_base()), method=method, epochs=1,
                            early_epochs=1, lr=1e-2, batch_size=8, device="cpu", output=tmp_path / out,
                            cards=False, save_best=False)
        return _weights(tune(config)[0].early_dir)

    fresh = probe("fresh")
    keep_base_models()
    try:
        first, second = probe("kept-1"), probe("kept-2")  # the second one copies the kept model
    finally:
        keep_base_models(False)
    for name, tensor in fresh.items():
        assert torch.equal(tensor, first[name]) and torch.equal(tensor, second[name]), name


def test_bucketed_batches_cover_every_row_once_and_pad_less() -> None:
    lengths = [3 + (7 * i) % 40 for i in range(200)]
    encoded = Encoded([{"input_ids": [1] * n} for n in lengths], torch.zeros(200))
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    plain = batches(order, 16)
    bucketed = batches(order, 16, encoded, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(bucketed).tolist()) == list(range(200))
    assert [b.tolist() for b in plain] == [order[i:i + 16].tolist() for i in range(0, 200, 16)]

    def padded(groups: list[torch.Tensor]) -> int:
        return sum(len(b) * max(lengths[int(i)] for i in b) for b in groups)

    assert padded(bucketed) < 0.75 * padded(plain)
