"""Value types shared by the screening core and the layers that call it.

The gRPC and database layers build these dataclasses; the core never does I/O, so everything it
needs arrives here and everything it decides leaves as a ``ScreeningResult``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EntryKind(enum.Enum):
    """What a blocklist entry lists; values equal the proto enum names."""

    DOCUMENT_NUMBER = "DOCUMENT_NUMBER"
    PHONE = "PHONE"
    ORGANISATION_CODE = "ORGANISATION_CODE"
    PERSON_NAME = "PERSON_NAME"
    ORGANISATION_NAME = "ORGANISATION_NAME"
    ADDRESS = "ADDRESS"
    GOODS_KEYWORD = "GOODS_KEYWORD"
    BRAND_PRICE_FLOOR = "BRAND_PRICE_FLOOR"
    IMAGE_FINGERPRINT = "IMAGE_FINGERPRINT"


class Action(enum.Enum):
    """What the listing authority asks for when an entry is hit."""

    HOLD = "HOLD"
    REFUSE = "REFUSE"


class Outcome(enum.IntEnum):
    """A screening decision; the integer order is the strength order."""

    PASS = 0
    REVIEW = 1
    HOLD = 2
    REFUSE = 3


_OUTCOMES = {Action.HOLD: Outcome.HOLD, Action.REFUSE: Outcome.REFUSE}


def outcome_of(action: Action) -> Outcome:
    """Map an entry's action to the outcome it asks for."""
    return _OUTCOMES[action]


@dataclass(frozen=True, slots=True)
class Entry:
    """One active blocklist entry (see the kind-specific meaning of ``value`` in the docs)."""

    id: int
    kind: EntryKind
    value: str
    action: Action
    aliases: tuple[str, ...] = ()
    price_floor_fen: int | None = None
    label: str = ""
    # Longer terms that contain a keyword in an innocent sense (原单号 for 原单): an occurrence of the
    # keyword inside one of them is not a hit. Used besides the core's defaults (see exclusions.py).
    exclusions: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        """The text used for this entry in explanations: its label, else the id."""
        return self.label or f"entry {self.id}"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of a consignment; ``declared_value_fen`` is the total for the line."""

    description: str
    quantity: int
    declared_value_fen: int
    brand: str = ""
    category: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """Sender or recipient; ``*_key`` fields are blind-index keys computed by the gateway."""

    name: str = ""
    document_key: str = ""
    phone_key: str = ""
    organisation_key: str = ""
    region_code: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class Consignment:
    """Everything screened about one parcel."""

    sender: Party
    recipient: Party
    items: tuple[Item, ...]
    image_hashes: tuple[int, ...] = ()
    sender_recent_recipients: int | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One reason a consignment was flagged, explained well enough to act on."""

    entry_id: int | None
    kind: EntryKind | None
    action: Outcome
    field: str
    matched: str
    score: float
    threshold: float
    explanation: str


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """The decision for a consignment and the hits that led to it."""

    outcome: Outcome
    hits: tuple[Hit, ...]


# Tuned on tests/fixtures/screening/name_variants.jsonl (test_screening_quality.py): recall stays
# 1.0 and precision 0.965 from 0.86 to 0.88; above 0.90 recall falls (0.957 at 0.92). At 0.88 a
# homophone (0.95) or one -ng/-n or zh/z slip (陈伟民 / 陈伟明, 0.90) matches, while a name that
# gains a character (张伟 / 张伟强, 0.80) or a near-homophone given name (林志颖 / 林志玲, 0.86) does not.
DEFAULT_NAME_THRESHOLD = 0.88
# Addresses are long, so one or two differing characters keep a high ratio; house numbers are
# checked separately (see addresses.py), which is why this can stay fairly permissive.
DEFAULT_ADDRESS_THRESHOLD = 0.85


@dataclass(frozen=True, slots=True)
class ScreeningPolicy:
    """Tunable thresholds; the defaults are the tuned ones."""

    name_threshold: float = DEFAULT_NAME_THRESHOLD
    address_threshold: float = DEFAULT_ADDRESS_THRESHOLD
    image_max_distance: int = 8
    pattern_recipients: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.name_threshold <= 1.0 or not 0.0 < self.address_threshold <= 1.0:
            raise ValueError("thresholds must be in (0, 1]")
        if not 0 <= self.image_max_distance < 64:
            raise ValueError("image_max_distance must be in [0, 64)")
        if self.pattern_recipients < 1:
            raise ValueError("pattern_recipients must be positive")
