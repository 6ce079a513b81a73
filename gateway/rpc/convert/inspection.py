"""Converters between courier.v1.Inspection messages and the inspection core."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import replace

from courier.v1 import inspection_pb2
from gateway.core.errors import InvalidInput
from gateway.core.inspection import Finding, ImageRole, Routing, ScanCommand, ScanImage, ScanKind, ScanResult
from gateway.rpc.convert.common import enum_name, from_timestamp, hits, parcel_state, reasons, timestamp

_ROUTING = {r: inspection_pb2.RoutingDecision.Value(f"ROUTING_DECISION_{r.value}") for r in Routing}


def _image(msg: inspection_pb2.ScanImage) -> ScanImage:
    role = enum_name(inspection_pb2.ImageRole, msg.role, "IMAGE_ROLE_")
    return ScanImage(ImageRole[role] if role else ImageRole.UNSPECIFIED, msg.content, msg.media_type)


def scan_command(event: inspection_pb2.ScanEvent, *, terminal_id: str = "", prohibited_found: bool = False,
                 notes: str = "") -> ScanCommand:
    """A ScanEvent (and, for RecordInspection, the record's own fields) as the core's command."""
    kind = enum_name(inspection_pb2.ScanKind, event.kind, "SCAN_KIND_")
    m = event.measurements
    return ScanCommand(
        event_id=event.event_id, device_id=event.device_id, kind=ScanKind[kind] if kind else None,
        waybill_no=event.waybill_no, weight_g=m.weight_g, length_mm=m.length_mm, width_mm=m.width_mm,
        height_mm=m.height_mm, images=tuple(_image(i) for i in event.images),
        findings=tuple(Finding(f.category, f.description, f.confidence, f.alarm) for f in event.findings),
        device_time=from_timestamp(event.device_time, event.HasField("device_time")), location=event.location,
        unreadable=event.unreadable, raw_sha256=event.raw_sha256, terminal_id=terminal_id,
        prohibited_found=prohibited_found, notes=notes,
    )


def record_command(record: inspection_pb2.InspectionRecord) -> ScanCommand:
    """An InspectionRecord as the core's command."""
    return scan_command(record.event, terminal_id=record.terminal_id, prohibited_found=record.prohibited_found,
                        notes=record.notes)


# InspectionRecord's own fields; every other field a scan's check names is a field of its event.
_RECORD_FIELDS = frozenset({"terminal_id", "prohibited_found", "notes"})


def record_error(error: InvalidInput) -> InvalidInput:
    """A scan's violations named as InspectionRecord names them: the event's fields under "event."."""
    return InvalidInput([v if v.field in _RECORD_FIELDS else replace(v, field=f"event.{v.field}")
                         for v in error.violations])


async def scan_commands(events: AsyncIterable[inspection_pb2.ScanEvent]) -> AsyncIterator[ScanCommand]:
    """A client stream of ScanEvent as commands, one at a time."""
    async for event in events:
        yield scan_command(event)


def scan_ack(r: ScanResult) -> inspection_pb2.ScanAck:
    """The core's result to ScanAck."""
    return inspection_pb2.ScanAck(
        event_id=r.event_id, decision=_ROUTING[r.routing], reasons=reasons(r.reasons), hits=hits(r.hits),
        waybill_no=r.waybill_no, state=parcel_state(r.state), event_seq=r.event_seq,
        recorded_at=timestamp(r.recorded_at) if r.recorded_at else None, replayed=r.replayed,
        image_sha256=list(r.image_sha256),
    )
