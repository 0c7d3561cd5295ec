"""Layer 4, the curated task catalog and embedding cards: the catalog's schema and lookups (:mod:`.schema`,
:mod:`.catalog`), embedding-card files (:mod:`.cardfile`), and as package data the catalog itself, the card
templates and the starter zoo's cards.

May import: ``core``, ``formats``, ``readers``, ``embedding``.
"""
