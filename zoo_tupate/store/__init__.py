"""Layer 5, the similarity index on disk: entries and their journal (:mod:`.manifest`, :mod:`.journal`), shard
files (:mod:`.shards`), embeddings cached by content (:mod:`.embedcache`), sketches for large spaces
(:mod:`.ann`), entry names (:mod:`.naming`), the :class:`~.index.Index` that writes them, and the built-in
starter zoo as a read-only index (:mod:`.starter`).

May import: ``core``, ``formats``, ``readers``, ``embedding``, ``cards``.
"""
