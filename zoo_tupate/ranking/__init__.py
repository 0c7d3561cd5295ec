"""Layer 6, the index → an order of sources: cosine ranking per space (:mod:`.rank`, :mod:`.space_search`),
other layouts scored on shared modules (:mod:`.crosslayout`), the zoo of user + starter layers (:mod:`.zoo`),
the default representations (:mod:`.defaults`), the combined ranker and gain estimate (:mod:`.ranker`), and
ranking quality metrics (:mod:`.metrics`, :mod:`.evaluate`).

May import: every layer up to ``store``.
"""
