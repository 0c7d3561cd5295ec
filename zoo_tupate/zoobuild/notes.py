"""What ``zoo build`` says about its plan before it runs: tasks the starter zoo already holds on the same model
(and that the built entries will take their place), and Hub datasets it cannot download while offline."""

from __future__ import annotations

import os

from zoo_tupate.store.starter import STARTER_MODEL, STARTER_TASKS
from zoo_tupate.zoobuild.plan import BuildConfig, Item

#: The methods the starter zoo holds per task.
STARTER_METHODS: tuple[str, ...] = ("lora", "prefix")


def starter_overlap(items: list[Item], config: BuildConfig) -> str | None:
    """A sentence naming the planned tasks the starter zoo already holds on this base model and method."""
    if config.base_id() != STARTER_MODEL:
        return None
    held: dict[str, list[str]] = {}
    for item in items:
        if item.task in STARTER_TASKS.values() and item.method in STARTER_METHODS and not item.problem:
            held.setdefault(item.task, []).append(item.method)
    if not held:
        return None
    named = ", ".join(f"{task} ({', '.join(methods)})" for task, methods in held.items())
    return (f"the starter zoo already holds {named} on {config.base_model}, tuned with the same probe recipe: "
            "suggest ranks them without this build. Built entries take the starter entries' place for the same "
            "task and space (never listed twice).")


def offline() -> bool:
    """Whether the Hub is switched off (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def offline_downloads(items: list[Item], local: set[str] | None = None) -> str | None:
    """While offline: the Hub datasets the plan would download (it can only read them from the local cache)."""
    if not offline():
        return None
    hub = sorted({str(i.dataset).split(":", 1)[0] for i in items
                  if "tune" in i.steps() and i.dataset and i.dataset not in (local or set())
                  and not os.path.isdir(str(i.dataset))})
    if not hub:
        return None
    return (f"offline (HF_HUB_OFFLINE): the build cannot download {', '.join(hub)}; it tunes only if the "
            "datasets library already cached them. Otherwise give the data with --data-dir DIR (one folder per "
            "task, e.g. DIR/wnli/ with train.* and validation.* rows)")
