"""Exact matching of blind-index keys: document numbers, phone numbers, organisation codes.

The gateway turns each number into an opaque blind-index key with the same function for entries
and parties, so the core compares keys only and never sees (or reports) a raw number.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.screening.model import Entry, EntryKind, Hit, Party, outcome_of

EXACT_KINDS = (EntryKind.DOCUMENT_NUMBER, EntryKind.PHONE, EntryKind.ORGANISATION_CODE)

# Which Party attribute carries the key for each exact kind.
PARTY_FIELDS = {
    EntryKind.DOCUMENT_NUMBER: "document_key",
    EntryKind.PHONE: "phone_key",
    EntryKind.ORGANISATION_CODE: "organisation_key",
}

_NOUNS = {
    EntryKind.DOCUMENT_NUMBER: "document number",
    EntryKind.PHONE: "phone number",
    EntryKind.ORGANISATION_CODE: "organisation code",
}


class ExactIndex:
    """Dictionary lookup of blind-index keys, one table per kind."""

    def __init__(self) -> None:
        self._tables: dict[EntryKind, dict[str, list[Entry]]] = {kind: {} for kind in EXACT_KINDS}

    def __len__(self) -> int:
        return sum(len(entries) for table in self._tables.values() for entries in table.values())

    def add(self, entry: Entry) -> None:
        """Index one exact-kind entry under its key, and under its aliases: the same number's keys under past
        index keys while a key rotation is under way, so a party keyed either way still hits."""
        if not entry.value:
            raise ValueError(f"entry {entry.id}: empty blind-index key")
        for key in dict.fromkeys((entry.value, *entry.aliases)):
            self._tables[entry.kind].setdefault(key, []).append(entry)

    def screen_party(self, party: Party, prefix: str) -> Iterator[Hit]:
        """Hits for every key of ``party`` that is listed."""
        for kind, attribute in PARTY_FIELDS.items():
            key = getattr(party, attribute)
            for entry in self._tables[kind].get(key, ()) if key else ():
                yield _hit(entry, f"{prefix}.{attribute}")


def _hit(entry: Entry, field: str) -> Hit:
    noun = _NOUNS[entry.kind]
    label = f" {entry.label}" if entry.label else ""
    return Hit(
        entry_id=entry.id,
        kind=entry.kind,
        action=outcome_of(entry.action),
        field=field,
        matched=entry.display,
        score=1.0,
        threshold=1.0,
        explanation=f"{field} matches listed {noun}{label} (entry {entry.id})",
    )
