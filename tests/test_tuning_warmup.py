"""The optional warmup schedule of tune (off by default: the probe recipe's constant rate is unchanged)."""

from __future__ import annotations

import pytest
import torch

from zoo_tupate.core.errors import TuningError
from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.train import _schedule


def test_no_warmup_is_no_schedule_and_not_recorded() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert _schedule(optimizer, 0.0, 100) is None
    assert "warmup" not in TuneConfig(dataset="d", base_model="m").recipe()


def test_warmup_ramps_then_decays_to_zero_and_is_recorded() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = _schedule(optimizer, 0.1, 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0) and rates.index(1.0) == 9
    assert rates[-1] < 0.02 and all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert TuneConfig(dataset="d", base_model="m", warmup=0.1).recipe()["warmup"] == 0.1
    with pytest.raises(TuningError):
        TuneConfig(dataset="d", base_model="m", warmup=1.0).check()
