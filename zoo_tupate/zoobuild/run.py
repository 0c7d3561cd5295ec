"""Running a zoo build: pull the items the Hub has, tune the rest on an executor, index and push each
tuned item as soon as its job finishes (so a crash loses at most the jobs in flight).

Every step is recorded in ``<work>/state/<item>.json`` (atomically) after it succeeds; a rerun redoes only
what is missing. Pulls, index writes and pushes happen in the calling process; only tuning goes to the
executor's workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.core.cachefiles import read_json, write_json
from zoo_tupate.core.errors import NameTaken, ZooError
from zoo_tupate.store.index import Index
from zoo_tupate.zoobuild.executors import Executor, Job, Outcome, Resources
from zoo_tupate.zoobuild.plan import BuildConfig, Item, state_path, tuned_dir
from zoo_tupate.zoobuild.tunejob import TuneSpec, clean_scratch, tune_job, write_files

ACTIONS: tuple[str, ...] = ("pulled", "tuned", "indexed", "pushed", "skipped", "failed")
Log = Callable[[str], None]


@dataclass
class ItemResult:
    """What a build did to one item this run: its steps' statuses (done, skipped, failed) and why."""

    item: Item
    steps: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """``failed``, else the actions done this run joined by ``+`` (``tuned+indexed+pushed``), else ``skipped``."""
        if "failed" in self.steps.values() or self.item.problem:
            return "failed"
        names = {"pull": "pulled", "tune": "tuned", "index": "indexed", "push": "pushed"}
        done = [names[s] for s, status in self.steps.items() if status == "done"]
        return "+".join(done) or "skipped"

    def to_json(self) -> dict[str, Any]:
        item = self.item
        return {"task": item.task, "method": item.method, "action": item.action, "entry": item.entry,
                "repo": item.repo, "push_repo": item.push_repo, "dataset": item.dataset, "steps": self.steps,
                "outcome": self.outcome, "reason": self.reason or item.problem, **self.detail}


def counts(results: list[ItemResult]) -> dict[str, int]:
    """How many items were pulled, tuned, indexed, pushed (this run), skipped, failed."""
    out = dict.fromkeys(ACTIONS, 0)
    for r in results:
        for action in r.outcome.split("+"):
            out[action] += 1
    return out


def build(config: BuildConfig, items: list[Item], index: Index, executor: Executor, log: Log,
          console: Any = None, progress: bool = False, job_progress: bool = False) -> list[ItemResult]:
    """Run the plan ``items``; one result per item, in plan order (``job_progress``: each tuning job says
    when it starts and how each epoch went, on the worker's stderr)."""
    results = {i.key: ItemResult(i) for i in items}
    for item in items:
        if item.problem:
            results[item.key].steps["plan"] = "failed"
    _pull(config, [i for i in items if i.action == "pull" and not i.problem], index, results, console, progress)
    tunable = [i for i in items if i.action == "tune" and not i.problem]
    for item in tunable:
        if "tune" in item.done:
            results[item.key].steps["tune"] = "skipped"
            _finish(config, item, index, results[item.key], log)
    clean_scratch(scratch_dir(config))  # work folders of a killed build (or worker) go at the next start
    todo = [i for i in tunable if "tune" not in i.done]
    jobs = [_job(config, i, f"[{n}/{len(todo)}] " if job_progress else None) for n, i in enumerate(todo, 1)]
    by_label = {j.label: i for j, i in zip(jobs, [i for i in tunable if "tune" not in i.done], strict=True)}

    def landed(outcome: Outcome) -> None:
        item = by_label[outcome.job.label]
        result = results[item.key]
        if not outcome.ok:
            result.steps["tune"], result.reason = "failed", outcome.error or "failed"
            return
        record = outcome.value["log"]
        try:
            write_files(tuned_dir(config.work, item), outcome.value["files"])
            _record(config, item, "tune", record)
        except (OSError, ValueError) as exc:
            result.steps["tune"], result.reason = "failed", f"{tuned_dir(config.work, item)}: {exc}"
            return
        result.steps["tune"] = "done"
        result.detail["tune"] = record
        log(f"tuned {item.key}: {record['metric']} {record['early_metric']:.4f} (lr {record['lr']:g}, "
            f"{record['wall_s']:.0f} s on {record['host']})")
        _finish(config, item, index, result, log)

    if jobs:
        executor.run(jobs, on_outcome=landed, log=log)
    return [results[i.key] for i in items]


def _job(config: BuildConfig, item: Item, progress: str | None = None) -> Job:
    gpus = 0.0
    if config.device != "cpu":
        from zoo_tupate.tuning.device import resolve_device

        gpus = config.gpus_per_job if resolve_device(config.device).type == "cuda" else 0.0
    spec = TuneSpec(task=item.task, method=item.method, dataset=str(item.dataset), base_model=config.base_model,
                    base_model_id=config.base_model_id, recipe=tuple(sorted(item.recipe.items())),
                    device=config.device, text_columns=tuple(item.text_columns) if item.text_columns else None,
                    label_column=item.label_column, progress=progress, scratch=str(scratch_dir(config)))
    return Job(tune_job, (spec,), label=f"tune {item.key}", resources=Resources(cpus=1.0, gpus=gpus))


def scratch_dir(config: BuildConfig) -> Path:
    """``<work>/tmp``: the jobs' temporary folders, under ``--home`` (never the system's temp folder)."""
    return config.work / "tmp"


def _record(config: BuildConfig, item: Item, step: str, record: dict[str, Any]) -> None:
    """Add ``step``'s record to the item's state file (atomically); ``tune`` starts a fresh state."""
    path = state_path(config.work, item)
    state = {} if step == "tune" else (read_json(path) or {})
    state[step] = record
    write_json(path, state)
    item.done[step] = record


def _finish(config: BuildConfig, item: Item, index: Index, result: ItemResult, log: Log) -> None:
    """Index and (with --push) push a tuned item, each step only when it is not recorded as done."""
    early = tuned_dir(config.work, item) / "early"
    names = index.names()
    if "index" in item.done and item.entry in names:
        result.steps["index"] = "skipped"
    else:
        source = str(early)  # where the adapter really is (suggest --verify starts from it)
        log(f"indexing {item.key} as {item.entry}")
        # an entry an earlier build made under this name is replaced (its adapter was tuned again); any other
        # entry of this name is never touched (older builds recorded the source as zoo-build:<entry>)
        ours = item.entry in names and all(e.source in (source, f"zoo-build:{item.entry}") or "zoo_build" in e.metadata
                                           for e in index.get(item.entry))
        try:
            entries = index.add(early, name=item.entry, source=source, replace=ours,
                                metadata={"zoo_build": {"task": item.task, "method": item.method,
                                                        "recipe": item.recipe, "base_model": config.base_id()}})
        except NameTaken:
            result.steps["index"] = "failed"
            result.reason = (f"{item.entry}: an index entry of this name exists and zoo build did not make it; "
                             "left as it is (remove it with `index rm` to build this item)")
            return
        except ZooError as exc:
            result.steps["index"], result.reason = "failed", str(exc)
            return
        _record(config, item, "index", {"entry": item.entry, "spaces": sorted({e.space for e in entries})})
        result.steps["index"] = "done"
    if not item.push_repo:
        return
    if "push" in item.done:
        result.steps["push"] = "skipped"
        return
    from zoo_tupate.hub.push import push

    log(f"pushing {item.key} -> {item.push_repo}")
    try:
        pushed = push(early, item.push_repo, private=config.private,
                      extra={"task": item.task, "method": item.method, "recipe": item.recipe,
                             "built_by": "zoo-tupate zoo build"})
    except ZooError as exc:
        result.steps["push"], result.reason = "failed", str(exc)
        log(f"push {item.key} -> {item.push_repo} failed: {exc}")
        return
    _record(config, item, "push", {"repo": pushed.repo, "commit": pushed.commit, "at": time.time()})
    result.steps["push"] = "done"
    log(f"pushed {item.key} -> {pushed.repo} ({pushed.commit[:12]})")


def _pull(config: BuildConfig, items: list[Item], index: Index, results: dict[str, ItemResult], console: Any,
          progress: bool) -> None:
    """Pull the items the Hub has (a repo already indexed at its commit is ``skipped``)."""
    if not items:
        return
    from zoo_tupate.hub.pull import pull_requests
    from zoo_tupate.hub.resolve import RepoRequest

    requests = [RepoRequest(i.repo or "", i.revision, pattern=i.task, task=i.task, method=i.method) for i in items]
    pulled = pull_requests(requests, index, progress=progress, console=console)
    for item, got in zip(items, pulled, strict=True):
        result = results[item.key]
        result.steps["pull"] = {"indexed": "done", "unchanged": "skipped"}.get(got.outcome, "failed")
        result.reason = got.reason if got.outcome == "failed" else ""
        result.detail["pull"] = {"sha": got.sha, "kind": got.kind}
