"""Target names in the catalog's namespaces (``glue/…``, ``nli/…``, bare ``rte``): checked against the catalog
before anything goes to the Hub, so a typo gets "did you mean glue/rte?" rather than a network error."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from zoo_tupate.cards.catalog import load_catalog, resolve_alias
from zoo_tupate.core.errors import CatalogError, EntryNotFound


def catalog_target(target: str, in_zoo: Callable[[str], bool]) -> str | None:
    """The zoo entry a catalog-looking ``target`` means, ``None`` when it is no catalog name (a Hub id).

    ``glue/rte`` or ``nli/rte@ukp`` (an AdapterHub alias) or a bare ``rte``: the catalog task's entry when
    ``in_zoo`` holds it; a catalog task the zoo lacks, or a name in a catalog namespace that is no task
    (``glue/rtee``), raises :class:`EntryNotFound` saying what to do (with "did you mean" for typos).
    ``hub:…`` always means the Hub.
    """
    text = target.strip()
    if not text or text.lower().startswith("hub:"):
        return None
    try:
        catalog = load_catalog()
    except CatalogError:
        return None
    names = sorted(catalog)
    families = {card.family for card in catalog.values()}
    key = text.lower()
    alias = resolve_alias(text, catalog) if "@" in text else None
    if alias is not None:
        key = alias.name
    elif "/" in key:
        family = key.split("/", 1)[0]
        if family not in families or key.count("/") > 1:
            return None
    else:  # a bare name: a catalog task's short name, or close to one; anything else may be a Hub id
        short = {card.short_name: card.name for card in catalog.values()}
        if key in short:
            key = short[key]
        elif difflib.get_close_matches(key, list(short), n=1, cutoff=0.8):
            guess = short[difflib.get_close_matches(key, list(short), n=1, cutoff=0.8)[0]]
            raise EntryNotFound(f"unknown task {target}; did you mean {guess}? (write hub:{target} for a Hub "
                                "repo of that name)")
        else:
            return None
    if key not in catalog:
        guess = difflib.get_close_matches(key, names, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(guess)}?" if guess else f"known tasks: {', '.join(names)}"
        raise EntryNotFound(f"unknown task {target}; {hint}")
    if in_zoo(key):
        return key
    raise EntryNotFound(f"{target}: the catalog task {key} has no entry in the zoo; add it with "
                        f"'zoo-tupate pull {key}' (adapters or cards the Hub has) or 'zoo-tupate zoo build {key} "
                        "--base-model MODEL' (tunes it), or give its data as a folder (--target PATH/TO/DATA)")
