"""Layer 3, tuned parameters → task vectors: the embedding math (raw and LoRA ΔW vectors, layer pooling,
degenerate adapters, :mod:`.vectors`), where each module lies in a vector (:mod:`.segments`), the space a
vector belongs to (:mod:`.space`), and a checkpoint folder embedded through the readers (:mod:`.checkpoint`).

May import: ``core``, ``formats``, ``readers``.
"""
