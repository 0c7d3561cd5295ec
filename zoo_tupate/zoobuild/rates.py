"""How fast this machine tunes, for ``zoo build``'s estimate: the rows/s and per-probe overhead that probes
measured before (``throughput.json``, shared with ``suggest``), else a few batches measured now on the
first item of each method (a few seconds: model load and three steps), and written for the next time."""

from __future__ import annotations

from pathlib import Path

from zoo_tupate.core.errors import ZooError
from zoo_tupate.tuning.methods import MethodOptions
from zoo_tupate.tuning.throughput import measure_rate, rate_key, read_rates, write_rate
from zoo_tupate.zoobuild.plan import BuildConfig, Item, device_name


def build_rates(items: list[Item], config: BuildConfig, root: Path, measure: bool = True,
                write: bool = True) -> dict[str, dict[str, float]]:
    """Rates per ``base|method|device`` for the methods the plan tunes (``measure``: now, when none is known;
    ``write``: keep what was measured for the next build or probe)."""
    from zoo_tupate.tuning.data import load_task

    rates = read_rates(root)
    device = device_name(config)
    for method in dict.fromkeys(i.method for i in items if "tune" in i.steps()):
        key = rate_key(config.base_id(), method, device)
        if key in rates or not measure:
            continue
        item = next(i for i in items if i.method == method and "tune" in i.steps())
        recipe = item.recipe
        try:
            task = load_task(str(item.dataset), item.text_columns, item.label_column, recipe.get("max_train"),
                             recipe.get("max_eval"), int(recipe.get("seed", 0)))
            measured = measure_rate(task, config.base_model, config.base_id(), method, MethodOptions(), recipe,
                                    recipe.get("lr"), config.device)
        except (ZooError, OSError, ValueError):
            continue  # no data here (offline Hub dataset, ...): the rough figure stays
        if measured:
            rates[key] = {"rows_per_s": measured[0], "overhead_s": measured[1]}
            if write:
                write_rate(root, key, *measured)
    return rates
