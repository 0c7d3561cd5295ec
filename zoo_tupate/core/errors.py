"""Error hierarchy. Raised deep, caught by meaning, turned into one line at the CLI edge."""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error zoo-tupate reports to a user (one line, non-zero exit)."""

    exit_code = 1


class UnsupportedCheckpoint(ZooError):
    """A checkpoint whose format, method or layout no reader handles."""


class CorruptCheckpoint(ZooError):
    """A checkpoint file that cannot be read safely (truncated, bad header, unsafe pickle, ...)."""


class DegenerateAdapter(ZooError):
    """An adapter that carries no task signal (all LoRA B zero, all-zero or non-finite tensors)."""


class IncompatibleSpace(ZooError):
    """Embeddings that live in different spaces (base model, method, repr, pooling, layout)."""


class IndexError_(ZooError):
    """The on-disk index cannot be used (locked too long, damaged beyond repair, ...)."""


class EntryNotFound(ZooError):
    """No index entry of that name."""


class NameTaken(ZooError):
    """An index entry of that name already holds other content (and replacing was not asked for)."""


class EmptyZoo(ZooError):
    """Nothing in the index to rank against."""


class HubError(ZooError):
    """A Hugging Face Hub request failed (repo missing, file missing, network, ...)."""


class CatalogError(ZooError):
    """A catalog card is invalid or a pattern matches nothing."""


class DatasetError(ZooError):
    """A dataset cannot be used for tuning (missing split or column, one class, ...)."""


class TuningError(ZooError):
    """Tuning cannot run with these settings (method cannot target the model, bad epochs, ...)."""
