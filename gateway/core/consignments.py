"""From an acceptance (or a stored shipment) to the screening core's Consignment, and back to a decision."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.core.model import ReasonRecord
from gateway.core.screening import Consignment, Entry, Hit, Item, Outcome, Party, ScreeningResult

# (context, canonical value) -> the blind-index key the blocklist stores for numbers, as hex.
KeyFn = Callable[[str, str], str]


@dataclass(frozen=True)
class PartyFacts:
    """What screening reads of one party; keys are blind-index bytes, never numbers."""

    name: str = ""
    document_key: bytes | None = None
    phone_key: bytes | None = None
    organisation_key: bytes | None = None
    region_code: str = ""
    address: str = ""


def party(facts: PartyFacts) -> Party:
    """A screening Party of a party's facts."""
    return Party(
        name=facts.name, document_key=facts.document_key.hex() if facts.document_key else "",
        phone_key=facts.phone_key.hex() if facts.phone_key else "",
        organisation_key=facts.organisation_key.hex() if facts.organisation_key else "",
        region_code=facts.region_code, address=facts.address,
    )


def consignment(
    sender: PartyFacts, recipient: PartyFacts, items: Iterable[tuple[str, int, int, str, str]],
    *, image_hashes: tuple[int, ...] = (), recent_recipients: int | None = None,
) -> Consignment:
    """A screening Consignment; items are (description, quantity, declared_value_fen, brand, category)."""
    return Consignment(
        sender=party(sender), recipient=party(recipient),
        items=tuple(Item(d, q, v, brand=b, category=c) for d, q, v, b, c in items),
        image_hashes=image_hashes, sender_recent_recipients=recent_recipients,
    )


def hit_record(hit: Hit, entry: Entry | None = None) -> dict[str, Any]:
    """A hit as stored (jsonb) and answered; entry (the one hit) gives its own action too."""
    return {
        "entry_id": hit.entry_id, "kind": hit.kind.value if hit.kind else "SENDER_PATTERN",
        "action": hit.action.name, "field": hit.field, "matched": hit.matched, "score": round(hit.score, 4),
        "threshold": hit.threshold, "explanation": hit.explanation,
        "entry_action": entry.action.value if entry is not None else "",
    }


def reasons_of(result: ScreeningResult) -> tuple[ReasonRecord, ...]:
    """A reason per hit that holds or refuses, naming its entry's kind."""
    return tuple(
        ReasonRecord(f"SCREENING_{h.kind.value if h.kind else 'SENDER_PATTERN'}", h.explanation, h.field)
        for h in result.hits if h.action >= Outcome.HOLD
    )


def strongest(hits: Iterable[Hit]) -> Outcome:
    """The outcome of a set of hits: the strongest one's, PASS for none."""
    return max((h.action for h in hits), default=Outcome.PASS)
