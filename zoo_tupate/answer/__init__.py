"""Layer 8, ``suggest --target`` → the answer: a target (checkpoint, index entry, Hub repo or dataset, the last
probed through :mod:`zoo_tupate.tuning.probe`) turned into embeddings (:mod:`.targets`, :mod:`.hub_target`,
:mod:`.checkpoint_target`), and proxy transfers that check the top of a ranking (:mod:`.verify`).

May import: every layer up to ``tuning`` and ``hub``.
"""
