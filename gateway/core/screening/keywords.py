"""Goods keywords: listed words that mark counterfeit goods (高仿, A货, 一比一, 1:1, 复刻 ...).

All keywords live in one automaton, so an item costs one pass per text field however many
keywords are listed. An occurrence inside an innocent longer word (高仿真, 原单号: see
exclusions.py, plus the entry's own exclusions) is not a hit.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.screening.automaton import EntryTermIndex
from gateway.core.screening.exclusions import DEFAULT_EXCLUSIONS
from gateway.core.screening.model import Entry, Hit, Item, outcome_of

# The item fields that are searched, in the order their hits are reported.
ITEM_FIELDS = ("description", "brand", "category")


class KeywordIndex(EntryTermIndex):
    """One Aho-Corasick automaton over every listed keyword and its aliases."""

    noun = "keyword"
    default_exclusions = DEFAULT_EXCLUSIONS

    def screen_item(self, item: Item, prefix: str) -> Iterator[Hit]:
        """One hit per (field, entry) for every listed keyword in the item's text fields."""
        for attribute in ITEM_FIELDS:
            field = f"{prefix}.{attribute}"
            seen: set[int] = set()
            for entry, term in self._terms.find(getattr(item, attribute)):
                if entry.id not in seen:
                    seen.add(entry.id)
                    yield _hit(entry, term, field)


def _hit(entry: Entry, term: str, field: str) -> Hit:
    return Hit(
        entry_id=entry.id,
        kind=entry.kind,
        action=outcome_of(entry.action),
        field=field,
        matched=term,
        score=1.0,
        threshold=1.0,
        explanation=f"{field} contains listed keyword {term} (entry {entry.id})",
    )
