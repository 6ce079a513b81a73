"""Brand price floors: a named brand sold below its lowest genuine unit price.

A Louis Vuitton bag declared at ¥150 is either mis-declared or fake. Brands are found by name or
alias (Latin and Chinese) in the item's brand field and description with the same automaton as
keywords, so short Latin aliases such as "LV" need a word boundary: "LVMH" names the group, not a
product, and must not fire. A Chinese alias that is also a common noun (苹果, Apple) has default
exclusion contexts for its everyday sense, as keywords do.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.screening.automaton import EntryTermIndex
from gateway.core.screening.exclusions import DEFAULT_BRAND_EXCLUSIONS
from gateway.core.screening.model import Entry, Hit, Item, outcome_of

# The brand field is the declared brand, so it is searched first and wins the reported field.
ITEM_FIELDS = ("brand", "description")


def yuan(fen: float) -> str:
    """Format an amount in fen as yuan for explanations."""
    return f"¥{fen / 100:.2f}"


class BrandIndex(EntryTermIndex):
    """Brand names and aliases mapped to their price-floor entries."""

    noun = "brand"
    default_exclusions = DEFAULT_BRAND_EXCLUSIONS

    def add(self, entry: Entry) -> None:
        """Register a brand entry under its name and aliases; it needs a positive floor."""
        if entry.price_floor_fen is None or entry.price_floor_fen <= 0:
            raise ValueError(f"entry {entry.id}: brand {entry.value!r} needs a positive price floor")
        super().add(entry)

    def screen_item(self, item: Item, prefix: str) -> Iterator[Hit]:
        """One hit per brand entry named by the item when its unit price is below the floor."""
        seen: set[int] = set()
        for attribute in ITEM_FIELDS:
            for entry, term in self._terms.find(getattr(item, attribute)):
                if entry.id not in seen:
                    seen.add(entry.id)
                    if below_floor(item, entry):
                        yield _hit(entry, term, item, f"{prefix}.{attribute}")


def below_floor(item: Item, entry: Entry) -> bool:
    """True when the item's declared unit price is below the entry's genuine floor."""
    floor = entry.price_floor_fen or 0
    # Compared as integers (total < floor * quantity) so no rounding can let a fake through;
    # a non-positive quantity is treated as one unit rather than dividing by it.
    return item.declared_value_fen < floor * max(item.quantity, 1)


def _hit(entry: Entry, term: str, item: Item, field: str) -> Hit:
    unit = item.declared_value_fen / max(item.quantity, 1)
    brand = entry.label or entry.value
    return Hit(
        entry_id=entry.id,
        kind=entry.kind,
        action=outcome_of(entry.action),
        field=field,
        matched=term,
        score=1.0,
        threshold=1.0,
        explanation=(f"{field} names brand {brand} as {term!r} (entry {entry.id}) at unit price "
                     f"{yuan(unit)}, below its lowest genuine price {yuan(entry.price_floor_fen or 0)}"),
    )
