"""``push`` (a tuned adapter and its embedding card) and ``publish_card`` (an embedding card alone).

Both upload with one ``create_commit`` into a repo made with ``create_repo(exist_ok=True)``, and mark the
repo as zoo-tupate's with a ``zoo_tupate.json`` file and a ``zoo-tupate`` tag in the README. A repo that
exists without that marker is someone else's: files in it are never overwritten unless ``force``
(``create_pr`` is always allowed: a pull request overwrites nothing).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.cards.cardfile import README_NAME, is_card, read_card, write_card
from zoo_tupate.cards.cardfile import WEIGHTS_NAME as CARD_FILE
from zoo_tupate.core.errors import CorruptCheckpoint, HubError, UnsupportedCheckpoint, ZooError
from zoo_tupate.core.redact import redact, strip_url_secrets
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.formats.weights import check_inside
from zoo_tupate.hub.client import hub_error, make_api
from zoo_tupate.readers.base import CONFIG_FILES, HEAD_FILES, WEIGHT_FILES, open_checkpoint
from zoo_tupate.store.index import Index

MARKER_FILE = "zoo_tupate.json"
TAG = "zoo-tupate"
#: Files of an adapter folder that ``push`` uploads (anything else, e.g. base weights or optimizer state, stays).
ADAPTER_UPLOAD_FILES = (*WEIGHT_FILES, *CONFIG_FILES, *HEAD_FILES)


@dataclass
class PushResult:
    """What an upload did."""

    repo: str
    commit: str
    url: str
    files: list[str] = field(default_factory=list)
    created: bool = False
    pr_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def push(
    folder: str | Path,
    repo: str,
    private: bool = False,
    create_pr: bool = False,
    force: bool = False,
    reprs: tuple[str, ...] = ("raw", "delta"),
    pooling: str = "layer-mean",
    commit_message: str | None = None,
    extra: dict[str, Any] | None = None,
) -> PushResult:
    """Upload a tuned adapter folder (adapter files only) with its embedding card to ``repo``."""
    folder = Path(folder).expanduser()
    ckpt = open_checkpoint(folder)
    files = upload_files(folder)
    embeddings = _embed_all(folder, reprs, pooling)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        card_dir = write_card(Path(tmp) / "card", embeddings, {"repo_id": repo, **(extra or {})})
        readme = _adapter_readme(folder / README_NAME, card_dir / README_NAME, ckpt.config)
        (Path(tmp) / README_NAME).write_text(readme, encoding="utf-8")
        files[CARD_FILE] = card_dir / CARD_FILE
        files[README_NAME] = Path(tmp) / README_NAME
        marker = _marker("adapter", sorted(files))
        return _upload(repo, files, marker, private, create_pr, force,
                       commit_message or f"Upload adapter {folder.name} with its task embedding (zoo-tupate)")


def publish_card(
    entry_or_path: str | Path,
    repo: str,
    index: Index,
    private: bool = False,
    create_pr: bool = False,
    force: bool = False,
    reprs: tuple[str, ...] = ("raw", "delta"),
    pooling: str = "layer-mean",
    extra: dict[str, Any] | None = None,
) -> PushResult:
    """Publish an embedding card (no weights) for an index entry, a card folder or an adapter folder."""
    path = Path(entry_or_path).expanduser()
    if path.exists():
        embeddings = read_card(path) if is_card(path) else _embed_all(path, reprs, pooling)
        label = path.name
    else:
        name = str(entry_or_path)
        entries = index.get(name)
        embeddings = [index.embedding_of(e) for e in entries]
        label = name
        task = next((e.metadata.get("hub", {}).get("task") for e in entries if e.metadata.get("hub")), None)
        if task and not (extra and "task" in extra):
            extra = {"task": task, **(extra or {})}
    for emb in embeddings:
        emb.source = _public_source(emb.source)
    with tempfile.TemporaryDirectory(prefix="zoo-card-") as tmp:
        card_dir = write_card(Path(tmp), embeddings, {"repo_id": repo, "source_entry": label, **(extra or {})})
        readme = card_dir / README_NAME
        readme.write_text(_with_tags(readme.read_text(encoding="utf-8")), encoding="utf-8")
        files = {CARD_FILE: card_dir / CARD_FILE, README_NAME: readme}
        return _upload(repo, files, _marker("card", sorted(files)), private, create_pr, force,
                       f"Publish the task embedding of {label} (zoo-tupate)")


def _embed_all(folder: Path, reprs: tuple[str, ...], pooling: str) -> list[Embedding]:
    from zoo_tupate.embedding.checkpoint import embed

    out = []
    for repr_ in reprs:
        try:
            emb = embed(folder, repr=repr_, pooling=pooling)
        except UnsupportedCheckpoint:
            if repr_ != "raw" and len(reprs) > 1:
                continue  # delta is LoRA-only
            raise
        emb.source = _public_source(emb.source)
        out.append(emb)
    return out


def _public_source(source: str) -> str:
    """Keep local paths (user names, home folders) out of published cards: only the folder name."""
    if source and (os.path.isabs(source) or os.path.exists(source)):
        return Path(source).name
    return source


def _marker(kind: str, files: list[str]) -> bytes:
    from zoo_tupate.core.version import __version__

    doc = {"created_by": "zoo-tupate", "zoo_tupate_version": __version__, "kind": kind,
           "files": [f for f in files if f != MARKER_FILE], "embedding_card": CARD_FILE}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _with_tags(readme: str, config: dict[str, Any] | None = None) -> str:
    """Add the ``zoo-tupate`` tag (and the library/base model of PEFT or AdapterHub adapters) to a README's metadata."""
    from huggingface_hub import ModelCard

    card = ModelCard(readme, ignore_metadata_errors=True)
    tags = [t for t in (card.data.tags or []) if t and not str(t).endswith(":")]
    for tag in (TAG, "task-embedding"):
        if tag not in tags:
            tags.append(tag)
    card.data.tags = tags
    config = config or {}
    base = config.get("base_model_name_or_path")
    if config.get("peft_type"):
        card.data.library_name = "peft"
    elif isinstance(config.get("config"), dict) and "model_name" in config:  # AdapterHub's format
        card.data.library_name = "adapter-transformers"
        base = config.get("model_name")
    if isinstance(base, str) and base.strip() and not card.data.base_model:
        card.data.base_model = base.strip()
    return redact(str(card))


def upload_files(folder: Path) -> dict[str, Path]:
    """The adapter files of ``folder`` that ``push`` uploads (and its own README, read for the new one).

    Nothing outside the folder is ever uploaded: a link that leads out of it (or dangles, or loops) is refused
    with :class:`CorruptCheckpoint` naming the link, whichever file it is; a file that is not a regular file
    (a FIFO, a folder) too."""
    files = {}
    for name in (*ADAPTER_UPLOAD_FILES, README_NAME):
        path = folder / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink():
            check_inside(path, folder)
        if not path.is_file():
            raise CorruptCheckpoint(f"{path}: is not a regular file; not uploaded")
        if name != README_NAME:
            files[name] = path
    return files


def _adapter_readme(own: Path, card_readme: Path, config: dict[str, Any]) -> str:
    """The adapter's own README (if any) else the card's, tagged (see :func:`_with_tags`)."""
    text = own.read_text(encoding="utf-8") if own.is_file() else card_readme.read_text(encoding="utf-8")
    return _with_tags(text, config)


def _upload(repo: str, files: dict[str, Path], marker: bytes, private: bool, create_pr: bool, force: bool,
            message: str) -> PushResult:
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import RepositoryNotFoundError

    api = make_api()
    try:
        try:
            info = api.model_info(repo)
            existing = {s.rfilename for s in info.siblings or []}
            created = False
        except RepositoryNotFoundError:
            existing, created = set(), True
        if not created and MARKER_FILE not in existing and not force and not create_pr:
            clash = sorted((set(files) | {MARKER_FILE}) & existing - {".gitattributes"})
            if clash:
                raise HubError(
                    f"{repo}: exists and was not created by zoo-tupate (no {MARKER_FILE}); pushing would "
                    f"overwrite {', '.join(clash)}. Use --force to overwrite or --create-pr to propose it"
                )
        url = api.create_repo(repo, private=private, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
                      for name, path in sorted(files.items())]
        operations.append(CommitOperationAdd(path_in_repo=MARKER_FILE, path_or_fileobj=marker))
        commit = api.create_commit(repo, operations=operations, commit_message=message, create_pr=create_pr)
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub/httpx errors become one line
        raise hub_error(exc, repo, action="upload") from None
    return PushResult(repo=repo, commit=commit.oid, url=strip_url_secrets(str(url)),
                      files=sorted([*files, MARKER_FILE]), created=created,
                      pr_url=strip_url_secrets(commit.pr_url) if commit.pr_url else None)
