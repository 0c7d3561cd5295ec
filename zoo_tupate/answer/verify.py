"""``suggest --verify K``: a short proxy transfer for the top-K candidates, re-ranked by the measured gain.

For each of the first K distinct sources of the ranking's LoRA rows that has LoRA weights at hand (a
starter entry: the adapter shipped in its card folder; a user entry: its indexed checkpoint folder, if it
still holds the indexed weights), the target's LoRA model starts from the source adapter's A and B
matrices (the head is new) and is trained on the target's rows with exactly the recipe of the target's own
probe (rows, epochs, learning rate, batch size, seeds) — the adapter protocol — and scored on the same
validation rows. The gain is that score minus the probe's own (the probe trained from scratch, which the
dataset-target path has already tuned and cached). The measured candidates are re-ranked by gain among themselves; a candidate
without weights keeps its place and says why. Poth et al. (2021) found few-shot proxy transfer the
strongest selector; here it is bounded to K runs of one probe's cost each.

Results are cached under ``<home>/cache/verify/<key>.json``, the key hashing the target's probe key (its
data digest and recipe), the source entry's sha256 and the adapter weights' sha256.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_tupate.core.errors import EntryNotFound, IncompatibleSpace, TuningError, ZooError
from zoo_tupate.core.storage import atomic_write_json, read_json
from zoo_tupate.formats.weights import sha256_files
from zoo_tupate.ranking.result import Ranking, Suggestion
from zoo_tupate.readers.base import read_json_bounded
from zoo_tupate.store.starter import STARTER_SOURCE, starter_adapter

if TYPE_CHECKING:
    from zoo_tupate.tuning.probe import ProbeSet

METHOD = "lora"
CACHE_VERSION = 1
WEIGHTS_NAME = "adapter_model.safetensors"


@dataclass
class Checked:
    """One candidate of the verify stage: where its weights are and what its proxy transfer measured."""

    name: str
    sim_rank: int  # its place among the ranking's distinct sources (1 = most similar)
    similarity: float
    zoo: str  # "starter" or "user"
    adapter: str | None = None
    entry_sha256: str = ""
    weights_sha256: str = ""
    proxy_score: float | None = None
    gain: float | None = None  # proxy score minus the target-only probe's score
    seconds: float | None = None  # what the proxy transfer took when it was measured
    cached: bool = False
    reason: str = ""  # why it was not measured
    rank: int = 0  # its place after verify


@dataclass
class Verification:
    """The verify stage's outcome: the target-only score, the checked candidates (re-ranked) and the cost."""

    target: str
    metric: str
    target_score: float
    probe_key: str
    recipe: dict[str, Any]
    rows: list[Checked]
    est_seconds_each: float | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def cost_s(self) -> float:
        """Seconds the measured proxy transfers took (cached ones included, as first measured)."""
        return round(sum(r.seconds or 0.0 for r in self.rows), 1)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (what ``suggest --verify K --json`` prints under ``verify``)."""
        return {"target": self.target, "metric": self.metric, "target_only_score": self.target_score,
                "probe_key": self.probe_key, "recipe": self.recipe, "rows": [asdict(r) for r in self.rows],
                "estimated_seconds_each": self.est_seconds_each, "cost_s": self.cost_s,
                "wall_s": round(self.wall_s, 1), "notes": self.notes}


def verify_root(home: str | Path) -> Path:
    """``<home>/cache/verify``."""
    return Path(home).expanduser() / "cache" / "verify"


def candidates(ranking: Ranking, k: int) -> list[Suggestion]:
    """The first ``k`` distinct sources of the ranking's LoRA rows (the method transferred; all rows when
    there are none, e.g. ``--ensemble``), by rank."""
    rows = sorted(enumerate([r for r in ranking.rows if r.method == METHOD] or ranking.rows),
                  key=lambda ir: (ir[1].rank, ir[0]))
    seen: set[str] = set()
    out = []
    for _, row in rows:
        if row.name not in seen:
            seen.add(row.name)
            out.append(row)
    return out[:k]


def source_adapter(zoo: Any, row: Suggestion, base_id: str) -> tuple[Path | None, str, str]:
    """``(adapter folder, entry sha256, reason)`` of a ranked source: the folder is ``None`` with a reason
    when no LoRA weights of ``base_id`` are at hand."""
    from zoo_tupate.embedding.space import parse_space

    starter = row.source == STARTER_SOURCE
    layer = zoo.starter if starter else getattr(zoo, "index", zoo)
    try:
        entries = layer.get(row.name) if layer is not None else []
    except EntryNotFound:
        entries = []
    lora = [e for e in entries if e.method == METHOD and parse_space(e.space)["base_model"] == base_id]
    sha = lora[0].sha256 if lora else ""
    if starter:
        folder = starter_adapter(row.name)
        return (folder, sha, "") if folder else (None, sha, "no LoRA adapter shipped with this starter card")
    if not lora:
        held = sorted({e.method for e in entries}) or ["nothing"]
        return None, "", f"no LoRA entry of {base_id} (holds {', '.join(held)}): a proxy transfer starts from LoRA"
    entry = lora[0]
    path = Path(entry.source).expanduser()
    if not path.exists():
        return None, sha, f"{entry.source}: the indexed checkpoint no longer exists"
    folder = path if path.is_dir() else path.parent
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        return None, sha, f"{folder}: no {WEIGHTS_NAME} (an embedding card or another format)"
    if entry.sha256 and sha256_files([weights]) != entry.sha256:
        return None, sha, f"{weights}: changed since it was indexed (index add it again)"
    return folder, sha, ""


def verify_ranking(zoo: Any, dataset: str, base_model: str, ranking: Ranking, k: int,
                   base_model_id: str | None = None, overrides: dict[str, Any] | None = None,
                   device: str = "auto", progress: bool = False,
                   announce: Callable[[str], None] | None = None, probes: ProbeSet | None = None) -> Verification:
    """Proxy-transfer the top ``k`` sources of ``ranking`` to ``dataset`` and re-rank them by gain.

    Uses (and, if missing, tunes) the dataset's own LoRA probe of ``zoo`` for the baseline and the recipe.
    ``probes``: the target's :class:`~zoo_tupate.tuning.probe.ProbeSet` from ``suggest`` (its plans and loaded
    rows are reused; planned here when ``None`` or without a LoRA plan).
    Raises :class:`IncompatibleSpace` when the zoo holds no LoRA entry of the base model.
    """
    from zoo_tupate.embedding.space import normalize_base_model
    from zoo_tupate.tuning.probe import ensure_probes, plan_probes

    say = announce or (lambda _text: None)
    started = time.perf_counter()
    base_id = normalize_base_model(base_model, base_model_id)
    plans = probes.subset(METHOD) if probes is not None else None
    if not plans:
        plans = plan_probes(dataset, zoo, base_model, methods=[METHOD], base_model_id=base_model_id,
                            overrides=overrides, device=device)
    if not plans:
        raise IncompatibleSpace(f"{dataset}: --verify needs LoRA entries of {base_id} in the zoo (none found)")
    if not all(p.cached for p in plans):
        say("verify: the target's own LoRA probe (the baseline) is tuned first")
        ensure_probes(dataset, zoo, base_model, methods=[METHOD], base_model_id=base_model_id, overrides=overrides,
                      device=device, progress=progress, planned=plans)
    main = max(plans, key=lambda p: p.entries)
    record = _probe_record(main.folder)
    checked: list[Checked] = []
    for i, row in enumerate(candidates(ranking, k), 1):
        folder, sha, reason = source_adapter(zoo, row, base_id)
        checked.append(Checked(name=row.name, sim_rank=i, similarity=row.score,
                               zoo="starter" if row.source == STARTER_SOURCE else "user",
                               adapter=str(folder) if folder else None, entry_sha256=sha, reason=reason))
    jobs = []
    for item in checked:
        if item.adapter is None:
            continue
        plan = _plan_for(plans, Path(item.adapter)) or main
        item.weights_sha256 = sha256_files([Path(item.adapter) / WEIGHTS_NAME])
        cache = verify_root(zoo.home) / f"{_key(plan.key, item)}.json"
        if _load_cached(item, cache, _probe_record(plan.folder)):
            continue
        jobs.append((item, plan, cache))
    each = _estimate(main)
    eta = f"~{each:.0f} s each, ~{each * len(jobs):.0f} s in all" if each else "time unknown"
    say(f"verify: {len(jobs)} proxy transfer(s) of {main.rows} rows × {main.epochs} epochs from the sources' LoRA "
        f"adapters (lr {record.get('lr', main.lr):g}, new head), {len(checked) - len(jobs)} cached or without "
        f"weights; {eta}")
    for n, (item, plan, cache) in enumerate(jobs, 1):
        say(f"verify {n}/{len(jobs)}: {item.name} (similarity rank {item.sim_rank})")
        try:
            _measure(item, plan, _probe_record(plan.folder), plans.task(plan.recipe), base_model, base_id, device,
                     progress)
        except ZooError as exc:
            item.reason = str(exc)
            continue
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache, {"version": CACHE_VERSION, **asdict(item)})
    _rerank(checked)
    return Verification(target=dataset, metric=str(record.get("metric")), target_score=float(record["early_metric"]),
                        probe_key=main.key, recipe={**main.recipe, "lr": record.get("lr", main.lr)}, rows=checked,
                        est_seconds_each=each, wall_s=time.perf_counter() - started)


def _probe_record(folder: Path) -> dict[str, Any]:
    record = read_json(folder / "probe.json")
    if not isinstance(record, dict) or not isinstance(record.get("early_metric"), (int, float)):
        raise TuningError(f"{folder / 'probe.json'}: the target's probe record has no validation score")
    return record


def _plan_for(plans: list[Any], folder: Path) -> Any | None:
    """The probe plan whose LoRA configuration (rank, alpha, targets) is the adapter's."""
    try:
        config = read_json_bounded(folder / "adapter_config.json", folder, "adapter config")
    except ZooError:
        return None
    if not isinstance(config, dict):
        return None
    for plan in plans:
        opts = plan.options
        targets = opts.get("lora_targets")
        if (config.get("r") == opts.get("lora_r") and config.get("lora_alpha") == opts.get("lora_alpha")
                and (not targets or sorted(config.get("target_modules") or []) == sorted(targets))):
            return plan
    return None


def _key(probe_key: str, item: Checked) -> str:
    payload = {"version": CACHE_VERSION, "probe": probe_key, "entry": item.entry_sha256,
               "weights": item.weights_sha256}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _load_cached(item: Checked, cache: Path, record: dict[str, Any]) -> bool:
    data = read_json(cache) if cache.is_file() else None
    if not isinstance(data, dict) or not isinstance(data.get("proxy_score"), (int, float)):
        return False
    item.proxy_score, item.seconds, item.cached = float(data["proxy_score"]), data.get("seconds"), True
    item.gain = item.proxy_score - float(record["early_metric"])
    return True


def _estimate(plan: Any) -> float | None:
    """Seconds one proxy transfer takes: one probe's training, plus its load and evaluation (probe estimate)."""
    if not plan.rows_per_s:
        return None
    return round(plan.rows * plan.epochs / plan.rows_per_s + (plan.overhead_s or 0.0), 1)


def _measure(item: Checked, plan: Any, record: dict[str, Any], task: Any, base_model: str, base_id: str,
             device: str, progress: bool) -> None:
    """Train the target's LoRA from the source adapter with the probe's recipe; fill in score and gain."""
    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.methods import MethodOptions
    from zoo_tupate.tuning.train import tune

    recipe = plan.recipe
    targets = plan.options.get("lora_targets")
    options = MethodOptions(**{**plan.options, "lora_targets": tuple(targets) if targets else None})
    with tempfile.TemporaryDirectory(prefix="verify-", dir=Path(plan.folder).parent) as tmp:
        config = TuneConfig(
            dataset=task.name, base_model=base_model, method=METHOD, base_model_id=base_id,
            epochs=plan.epochs, early_epochs=plan.epochs, max_train=recipe["max_train"],
            max_eval=recipe["max_eval"], lr=float(record.get("lr") or plan.lr), batch_size=recipe["batch_size"],
            max_length=recipe["max_length"], device=device, output=Path(tmp), seed=recipe["seed"],
            init_seed=plan.init_seed, options=options, cards=False, save_best=False,
            init_adapter=Path(item.adapter or ""),
        )
        started = time.perf_counter()
        result = tune(config, progress=progress, task=task)[0]
        item.seconds = round(time.perf_counter() - started, 1)
    item.proxy_score = float(result.chosen.history[-1]["metric"])
    item.gain = item.proxy_score - float(record["early_metric"])


def _rerank(rows: list[Checked]) -> None:
    """Measured rows sorted by gain into the measured rows' places; the others keep theirs."""
    slots = [i for i, r in enumerate(rows) if r.gain is not None]
    measured = sorted((rows[i] for i in slots), key=lambda r: (-(r.gain or 0.0), r.sim_rank))
    for slot, row in zip(slots, measured, strict=True):
        rows[slot] = row
    for i, row in enumerate(rows, 1):
        row.rank = i
