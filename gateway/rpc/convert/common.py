"""Converters shared by every service: times, enums, reasons, hits and events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import common_pb2, entries_pb2
from gateway.core.identity import DocumentType
from gateway.core.model import ParcelState, ReasonRecord, StoredEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(at: datetime | None) -> Timestamp:
    """A protobuf Timestamp of an aware datetime (empty for None)."""
    if at is None:
        return Timestamp()
    # Timestamp.FromDatetime goes through calendar.timegm and a time tuple, 3% of a VerifySender's CPU;
    # the difference from the epoch is exact and already normalised (0 <= microseconds < 10**6).
    delta = (at if at.tzinfo is not None else at.astimezone(UTC)) - _EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def from_timestamp(ts: Timestamp, present: bool) -> datetime | None:
    """An aware datetime of a Timestamp field, or None when unset."""
    return ts.ToDatetime(tzinfo=UTC) if present else None


def enum_name(pb_enum: Any, value: int, prefix: str) -> str:
    """The name of a proto enum value without its prefix; "" for UNSPECIFIED or a value the enum lacks."""
    name: str = pb_enum.Name(value) if value in pb_enum.values() else ""
    return name.removeprefix(prefix) if name and not name.endswith("UNSPECIFIED") else ""


def document_type(value: int) -> DocumentType | None:
    """The core's document type of a proto enum value, or None for unspecified/unknown."""
    name = enum_name(common_pb2.DocumentType, value, "DOCUMENT_TYPE_")
    return DocumentType[name] if name else None


def parcel_state(state: ParcelState | None) -> int:
    """The proto enum value of a parcel state."""
    return common_pb2.ParcelState.Value(f"PARCEL_STATE_{state.value}") if state else 0


def reasons(items: tuple[ReasonRecord, ...]) -> list[common_pb2.Reason]:
    """Reasons as protobuf messages."""
    return [common_pb2.Reason(code=r.code, message=r.message, field=r.field) for r in items]


def _entry_enum(pb_enum: Any, prefix: str, name: str | None) -> int:
    """The value of an entry enum by its core name; 0 (unspecified) for a hint with no entry or an old record."""
    full = f"{prefix}{name}"
    return int(pb_enum.Value(full)) if name and full in pb_enum.keys() else 0


def hits(items: tuple[dict[str, Any], ...]) -> list[common_pb2.ScreeningHit]:
    """Screening hits (hit records, as stored) as protobuf messages, in the old terms and the entry's."""
    out = []
    for h in items:
        action = common_pb2.ScreeningOutcome.Value(f"SCREENING_OUTCOME_{h.get('action', 'PASS')}")
        out.append(common_pb2.ScreeningHit(
            entry_id=h.get("entry_id") or 0, kind=h.get("kind") or "", action=action, field=h.get("field", ""),
            matched=h.get("matched", ""), score=h.get("score", 0.0), threshold=h.get("threshold", 0.0),
            explanation=h.get("explanation", ""),
            entry_kind=_entry_enum(entries_pb2.EntryKind, "ENTRY_KIND_", h.get("kind")),
            entry_action=_entry_enum(entries_pb2.EntryAction, "ENTRY_ACTION_", h.get("entry_action")),
        ))
    return out


def event(e: StoredEvent) -> common_pb2.ShipmentEvent:
    """A stored event to ShipmentEvent."""
    return common_pb2.ShipmentEvent(
        seq=e.seq, kind=e.kind, from_state=parcel_state(e.from_state), to_state=parcel_state(e.to_state),
        actor=common_pb2.Actor(principal=e.principal, terminal_id=e.terminal_id, device_id=e.device_id),
        location=e.location, note=e.note, recorded_at=timestamp(e.recorded_at),
    )
