"""Readings as courier.v1.ScanEvent, and the sink every device adapter hands its readings to.

A device adapter builds an event without event_id; the sink (the durable queue) assigns the id once, when
the event is written, and the id never changes after that: resends carry the same id, so the gateway
records each reading once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import inspection_pb2 as pb

log = logging.getLogger("inspection.devices")
WAYBILL = re.compile(r"[A-Z0-9-]{8,32}")
EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{8,64}")


@dataclass(frozen=True)
class Unreadable:
    """Why a device's output could not be read: a stable reason code and a few plain words (never the bytes)."""

    reason: str
    detail: str = ""

    def text(self) -> str:
        """The ScanEvent.unreadable text, at most 200 characters."""
        return (f"{self.reason}: {self.detail}" if self.detail else self.reason)[:200]


class Sink(Protocol):
    """Where adapters put readings: written durably before the call returns."""

    async def put(self, event: pb.ScanEvent, source_key: str = "") -> str:
        """Writes the event (assigning its event_id) and returns the id; a source_key seen before is not
        written again and its first event's id is returned."""
        ...


def sha256_hex(raw: bytes) -> str:
    """The hex SHA-256 of raw bytes, the only trace of unreadable output that leaves the adapter."""
    return hashlib.sha256(raw).hexdigest()


def timestamp(at: float | None = None) -> Timestamp:
    """A protobuf Timestamp of a Unix time (now when not given)."""
    ts = Timestamp()
    ts.FromNanoseconds(int((time.time() if at is None else at) * 1e9))
    return ts


def event(kind: int, device_id: str, location: str, *, waybill: str = "", at: float | None = None,
          **fields: object) -> pb.ScanEvent:
    """A ScanEvent of one reading; fields are ScanEvent's own (measurements, images, findings, ...)."""
    return pb.ScanEvent(kind=kind, device_id=device_id, location=location, waybill_no=waybill,
                        device_time=timestamp(at), **fields)  # type: ignore[arg-type]


def mark_unreadable(ev: pb.ScanEvent, why: Unreadable, raw: bytes, digest: str = "",
                    size: int | None = None) -> pb.ScanEvent:
    """Marks an event unreadable, logs it with the device id and the raw bytes' SHA-256, and counts it
    (digest and size stand for raw when the bytes were too many to hold)."""
    from inspection import metrics

    ev.unreadable = why.text()
    ev.raw_sha256 = digest or sha256_hex(raw)
    log.warning("device %s: unreadable output (%s), %d bytes, sha256 %s", ev.device_id, why.text(),
                len(raw) if size is None else size, ev.raw_sha256)
    metrics.UNREADABLE.labels(device=ev.device_id, reason=why.reason).inc()
    return ev


def unreadable_event(kind: int, device_id: str, location: str, why: Unreadable, raw: bytes,
                     waybill: str = "") -> pb.ScanEvent:
    """An event for output that could not be read: the parcel is diverted, the adapter keeps going."""
    return mark_unreadable(event(kind, device_id, location, waybill=waybill), why, raw)


def is_waybill(text: str) -> bool:
    """True for a waybill number as the gateway takes it (8 to 32 characters [A-Z0-9-])."""
    return WAYBILL.fullmatch(text) is not None
