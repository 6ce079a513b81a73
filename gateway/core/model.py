"""Plain records shared by the core's use cases and the ports they talk through."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ParcelState(enum.Enum):
    """Where a parcel stands; names match the proto's PARCEL_STATE_* values."""

    ACCEPTED = "ACCEPTED"
    HELD = "HELD"
    REFUSED = "REFUSED"
    STORED = "STORED"
    DISPATCHED = "DISPATCHED"


class Role(enum.Enum):
    """What a principal may do (API.md)."""

    TERMINAL = "terminal"
    SCANNER = "scanner"
    REVIEWER = "reviewer"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a terminal app, a scanner integration, a reviewer, an investigator."""

    id: int
    name: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class Actor:
    """Who acted, and through which terminal or device: stamped on every event."""

    principal: Principal
    terminal_id: str = ""
    device_id: str = ""


@dataclass(frozen=True)
class ReasonRecord:
    """A reason as stored and answered: a stable code, a sentence, the field."""

    code: str
    message: str
    field: str = ""

    def as_dict(self) -> dict[str, str]:
        """The form stored in jsonb columns."""
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class EventRecord:
    """One history entry to append."""

    kind: str
    from_state: ParcelState | None
    to_state: ParcelState
    location: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    """One history entry as recorded."""

    seq: int
    kind: str
    from_state: ParcelState | None
    to_state: ParcelState
    principal: str
    terminal_id: str
    device_id: str
    location: str
    note: str
    recorded_at: datetime
