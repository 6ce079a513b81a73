"""The blocklist index: built once from the active entries, then screens consignments.

Each entry kind has its own matcher; ``screen`` asks each for hits, applies the rule that a name
alone never refuses, and takes the strongest hit as the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from gateway.core.screening.addresses import AddressIndex
from gateway.core.screening.brands import BrandIndex
from gateway.core.screening.exact import EXACT_KINDS, ExactIndex
from gateway.core.screening.images import FingerprintIndex
from gateway.core.screening.keywords import KeywordIndex
from gateway.core.screening.model import (
    Consignment,
    Entry,
    EntryKind,
    Hit,
    Outcome,
    Party,
    ScreeningPolicy,
    ScreeningResult,
    outcome_of,
)
from gateway.core.screening.names import NameIndex, NameMatch
from gateway.core.screening.patterns import sender_pattern_hit

DEFAULT_POLICY = ScreeningPolicy()

_NAME_NOUNS = {EntryKind.PERSON_NAME: "person name", EntryKind.ORGANISATION_NAME: "organisation name"}


class _Matcher(Protocol):
    def add(self, entry: Entry) -> None: ...


class _Builder(Protocol):
    def build(self) -> None: ...


class BlocklistIndex:
    """All active entries, indexed per kind for screening."""

    def __init__(self, policy: ScreeningPolicy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._exact = ExactIndex()
        self._names = {EntryKind.PERSON_NAME: NameIndex(), EntryKind.ORGANISATION_NAME: NameIndex(True)}
        self._addresses = AddressIndex()
        self._keywords = KeywordIndex()
        self._brands = BrandIndex()
        self._images = FingerprintIndex(policy.image_max_distance)
        self._matchers: dict[EntryKind, _Matcher] = {
            **dict.fromkeys(EXACT_KINDS, self._exact), **self._names,
            EntryKind.ADDRESS: self._addresses, EntryKind.GOODS_KEYWORD: self._keywords,
            EntryKind.BRAND_PRICE_FLOOR: self._brands, EntryKind.IMAGE_FINGERPRINT: self._images,
        }
        self._count = 0

    @classmethod
    def build(cls, entries: Iterable[Entry], policy: ScreeningPolicy = DEFAULT_POLICY) -> BlocklistIndex:
        """Index ``entries``; raises ValueError naming the first malformed entry."""
        index = cls(policy)
        for entry in entries:
            index._add(entry)
        builders: list[_Builder] = [*index._names.values(), index._keywords, index._brands, index._images]
        for matcher in builders:
            matcher.build()
        return index

    def _add(self, entry: Entry) -> None:
        self._matchers[entry.kind].add(entry)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def screen(self, consignment: Consignment) -> ScreeningResult:
        """Screen one consignment; the outcome is that of its strongest hit (PASS if none)."""
        hits = [*self._party_hits(consignment.sender, "sender"),
                *self._party_hits(consignment.recipient, "recipient"),
                *self._item_hits(consignment),
                *self._images.screen(consignment.image_hashes)]
        pattern = sender_pattern_hit(consignment, self.policy.pattern_recipients)
        if pattern is not None:
            hits.append(pattern)
        hits.sort(key=lambda h: (-h.action, h.field, h.entry_id or 0))
        return ScreeningResult(max((h.action for h in hits), default=Outcome.PASS), tuple(hits))

    def _party_hits(self, party: Party, prefix: str) -> list[Hit]:
        identity = [*self._exact.screen_party(party, prefix),
                    *self._addresses.screen_party(party, prefix, self.policy.address_threshold)]
        return identity + list(self._name_hits(party, prefix, identity))

    def _name_hits(self, party: Party, prefix: str, identity: list[Hit]) -> Iterator[Hit]:
        if not party.name.strip():
            return
        threshold = self.policy.name_threshold
        for kind, names in self._names.items():
            for match in names.search(party.name, threshold):
                yield name_hit(match, kind, f"{prefix}.name", party.name, threshold, identity)

    def _item_hits(self, consignment: Consignment) -> Iterator[Hit]:
        for i, item in enumerate(consignment.items):
            yield from self._keywords.screen_item(item, f"items[{i}]")
            yield from self._brands.screen_item(item, f"items[{i}]")


def name_hit(match: NameMatch, kind: EntryKind, field: str, query: str, threshold: float,
             identity: list[Hit]) -> Hit:
    """A name hit, capped at HOLD unless an identity hit on the same party corroborates it."""
    entry, listed = match.entry, match.text
    action = outcome_of(entry.action)
    text = (f"{field} {query!r} matches listed {_NAME_NOUNS[kind]} {listed} "
            f"(entry {entry.id}, score {match.score:.2f} >= {threshold:.2f})")
    if identity:
        text += f"; corroborated by {identity[0].field}"
    elif action > Outcome.HOLD:
        # Many people share a name, so a name alone only ever asks a person to look.
        action = Outcome.HOLD
        text += "; held for review: a name match alone never refuses"
    return Hit(entry.id, kind, action, field, listed, match.score, threshold, text)
