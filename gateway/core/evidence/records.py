"""The canonical bytes of an evidence record: RFC 8785 (JSON Canonicalization Scheme) of a JSON object.

A record is a JSON object with a "type" member and the record's fields:

- "shipment_event": one event of a parcel's history — "waybill_no", "seq" (the history's 1-based number),
  "kind" (ACCEPTED, REFUSED, HELD, HOLD_CONFIRMED, RELEASED, STORED, DISPATCHED, INSPECTED, SCANNED_*),
  "from_state" (null for an event that starts the history), "to_state", "principal", "terminal_id",
  "device_id", "location", "note" ("" when none), "recorded_at", "details" (an object, e.g. a scan's
  "decision": PASS, DIVERT_TO_HOLD or REJECT, or a review's "case_no");
- "scan_event", "verification", "audit": the other things the log holds, with their own fields (an audit
  record's id as "audit_id", a verification's as "verification_id").

Values are JSON only: strings, integers within +-(2^53 - 1), true, false, null, arrays, objects with string
keys, and finite floats (serialised as RFC 8785 says: ECMAScript's shortest form). Times are RFC 3339 UTC
strings with microseconds and a "Z" (`format_time`), uuids lower-case strings, binary values lower-case hex.
RFC 8785 sorts members by their UTF-16 code units and writes no whitespace, so one record has one byte form
whoever writes it; its leaf in the log is the RFC 6962 leaf hash of those bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from gateway.core.errors import DomainError
from gateway.core.evidence.merkle import leaf_hash

RECORD_TYPES = ("shipment_event", "scan_event", "verification", "audit")
_SAFE = 2**53 - 1
_LABELS = (("audit_id", "audit"), ("verification_id", "verification"), ("event_id", "event"), ("id", "id"),
           ("waybill_no", "waybill"))


class RecordError(DomainError):
    """A record that is not a JSON object of a known type with JSON values only."""


def format_time(at: datetime) -> str:
    """A time as records write it: RFC 3339 in UTC with microseconds and a Z."""
    if at.tzinfo is None:
        raise RecordError("a record's time must carry its time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: object) -> datetime:
    """The time a record's RFC 3339 UTC string names; RecordError for anything else."""
    if isinstance(text, str):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise RecordError(f"{str(text)[:40]!r} is not a time of the form 2026-01-31T08:00:00.000000Z")


def _check(value: Any, where: str) -> bool:
    """Raises RecordError naming the first value that JSON (and so RFC 8785) cannot hold; answers whether the
    value is plain: no float anywhere and only ASCII member names (see `canonical_bytes`)."""
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        if abs(value) > _SAFE:
            raise RecordError(f"{where}: {value} is beyond the integers JSON numbers hold exactly")
        return True
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"{where}: {value} is not a JSON number")
        return False
    plain = True
    if isinstance(value, list):
        for i, item in enumerate(value):
            plain = _check(item, f"{where}[{i}]") and plain
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(f"{where}: the key {key!r} is not a string")
            plain = _check(item, f"{where}.{key}") and key.isascii() and plain
    else:
        raise RecordError(f"{where}: a {type(value).__name__} is not a JSON value")
    return plain


def check_record(record: Any) -> bool:
    """Raises RecordError unless the record is a JSON object of a known type; answers whether it is plain."""
    if not isinstance(record, Mapping):
        raise RecordError("a record is a JSON object")
    if record.get("type") not in RECORD_TYPES:
        raise RecordError(f"a record's type is one of {', '.join(RECORD_TYPES)}, not {record.get('type')!r}")
    return _check(dict(record), "record")


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The record's RFC 8785 canonical JSON bytes.

    A plain record (no floats, ASCII member names: every record the gateway writes) is serialised by the
    standard library's C encoder, whose output is then RFC 8785's byte for byte: members sorted by code point
    are sorted by UTF-16 code unit when the names are ASCII, integers within 2^53 print alike, and strings
    escape the same characters the same way (\\b \\t \\n \\f \\r, other controls as lower-case \\u00xx, nothing
    else). Floats (ECMAScript's shortest form) and other member names go through rfc8785, as does a string
    with an unpaired surrogate, which UTF-8 cannot encode and RFC 8785 refuses.
    """
    if check_record(record):
        try:
            return json.dumps(dict(record), ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                              allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            pass
    try:
        return rfc8785.dumps(dict(record))
    except rfc8785.CanonicalizationError as error:  # an unpaired surrogate in a string, say
        raise RecordError(f"the record cannot be canonicalised: {error}") from None


def record_leaf_hash(record: Mapping[str, Any]) -> bytes:
    """The record's leaf hash in the evidence log: SHA-256(0x00 || canonical bytes)."""
    return leaf_hash(canonical_bytes(record))


def record_label(record: Mapping[str, Any]) -> str:
    """A short name for a record in reports: waybill/seq, or its audit, verification or event id."""
    if "waybill_no" in record and "seq" in record:
        return f"{record['waybill_no']}/{record['seq']}"
    for key, word in _LABELS:
        if key in record:
            return f"{word} {record[key]}"
    return "-"
