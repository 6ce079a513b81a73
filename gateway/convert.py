"""Converters between protobuf messages and core records: the one place that knows both."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import acceptance_pb2, common_pb2, custody_pb2
from gateway.core.acceptance import (
    AcceptParcelCommand,
    AcceptResult,
    AddressIn,
    InspectionIn,
    InspectionOutcome,
    ItemIn,
)
from gateway.core.custody import MoveResult, ParcelView
from gateway.core.customers import RegisterCustomerCommand, RegisteredCustomer
from gateway.core.identity import DocumentType
from gateway.core.model import ParcelState, ReasonRecord, StoredEvent
from gateway.core.verification import Verification, VerifySenderCommand


def timestamp(at: datetime | None) -> Timestamp:
    """A protobuf Timestamp of an aware datetime (empty for None)."""
    ts = Timestamp()
    if at is not None:
        ts.FromDatetime(at.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp, present: bool) -> datetime | None:
    """An aware datetime of a Timestamp field, or None when unset."""
    return ts.ToDatetime(tzinfo=UTC) if present else None


def _enum_from(pb_enum: Any, value: int, prefix: str) -> str:
    name: str = pb_enum.Name(value) if value in pb_enum.values() else ""
    return name.removeprefix(prefix) if name and not name.endswith("UNSPECIFIED") else ""


def document_type(value: int) -> DocumentType | None:
    """The core's document type of a proto enum value, or None for unspecified/unknown."""
    name = _enum_from(common_pb2.DocumentType, value, "DOCUMENT_TYPE_")
    return DocumentType[name] if name else None


def parcel_state(state: ParcelState | None) -> int:
    """The proto enum value of a parcel state."""
    return common_pb2.ParcelState.Value(f"PARCEL_STATE_{state.value}") if state else 0


def reasons(items: tuple[ReasonRecord, ...]) -> list[common_pb2.Reason]:
    """Reasons as protobuf messages."""
    return [common_pb2.Reason(code=r.code, message=r.message, field=r.field) for r in items]


def hits(items: tuple[dict[str, Any], ...]) -> list[common_pb2.ScreeningHit]:
    """Screening hits (stored as dicts) as protobuf messages."""
    out = []
    for h in items:
        action = common_pb2.ScreeningOutcome.Value(f"SCREENING_OUTCOME_{h.get('action', 'PASS')}")
        out.append(common_pb2.ScreeningHit(
            entry_id=h.get("entry_id") or 0, kind=h.get("kind") or "", action=action, field=h.get("field", ""),
            matched=h.get("matched", ""), score=h.get("score", 0.0), threshold=h.get("threshold", 0.0),
            explanation=h.get("explanation", ""),
        ))
    return out


def verify_command(req: acceptance_pb2.VerifySenderRequest) -> VerifySenderCommand:
    """VerifySenderRequest to the core's command."""
    return VerifySenderCommand(
        document_type=document_type(req.document_type), document_number=req.document_number, name=req.name,
        phone=req.phone, mrz=req.mrz, face_photo=req.face_photo, terminal_id=req.terminal_id,
    )


def verify_response(v: Verification) -> acceptance_pb2.VerifySenderResponse:
    """The core's verification to VerifySenderResponse."""
    r = v.record
    return acceptance_pb2.VerifySenderResponse(
        verdict=acceptance_pb2.Verdict.Value(f"VERDICT_{r.verdict.value}"), reasons=reasons(r.reasons),
        facts=acceptance_pb2.DocumentFacts(**r.facts), masked_document_number=r.document_masked,
        masked_phone=r.phone_masked, masked_name=v.masked_name, sender_ref=r.sender_ref or "",
        sender_ref_expires_at=timestamp(r.expires_at) if r.expires_at else None,
        authority_result=r.authority_result, verification_id=v.id,
    )


def _address(msg: common_pb2.Address, present: bool) -> AddressIn | None:
    return AddressIn(msg.region_code, msg.detail) if present else None


def _inspection(req: acceptance_pb2.AcceptParcelRequest) -> InspectionIn | None:
    if not req.HasField("inspection"):
        return None
    i = req.inspection
    name = _enum_from(acceptance_pb2.InspectionOutcome, i.outcome, "INSPECTION_OUTCOME_")
    return InspectionIn(
        outcome=InspectionOutcome[name] if name else None, notes=i.notes, photos=tuple(i.photos),
        inspected_at=from_timestamp(i.inspected_at, i.HasField("inspected_at")),
    )


def accept_command(req: acceptance_pb2.AcceptParcelRequest) -> AcceptParcelCommand:
    """AcceptParcelRequest to the core's command."""
    return AcceptParcelCommand(
        idempotency_key=req.idempotency_key, waybill_no=req.waybill_no, sender_ref=req.sender_ref,
        contract_customer_id=req.contract_customer_id,
        sender_address=_address(req.sender_address, req.HasField("sender_address")),
        sender_phone=req.sender_phone, recipient_name=req.recipient.name, recipient_phone=req.recipient.phone,
        recipient_address=_address(req.recipient.address, req.recipient.HasField("address")),
        items=tuple(ItemIn(i.description, i.quantity, i.declared_value_fen, i.category, i.brand) for i in req.items),
        inspection=_inspection(req), terminal_id=req.terminal_id,
    )


def accept_response(r: AcceptResult) -> acceptance_pb2.AcceptParcelResponse:
    """The core's result to AcceptParcelResponse."""
    return acceptance_pb2.AcceptParcelResponse(
        decision=acceptance_pb2.AcceptDecision.Value(f"ACCEPT_DECISION_{r.decision.value}"),
        shipment_id=r.shipment_id, waybill_no=r.waybill_no, reasons=reasons(r.reasons), hits=hits(r.hits),
        recorded_at=timestamp(r.recorded_at), state=parcel_state(r.state),
        masked_recipient_phone=r.masked_recipient_phone, masked_sender_name=r.masked_sender_name,
        replayed=r.replayed,
    )


def register_command(req: acceptance_pb2.RegisterContractCustomerRequest) -> RegisterCustomerCommand:
    """RegisterContractCustomerRequest to the core's command."""
    p = req.responsible_person
    return RegisterCustomerCommand(
        name=req.name, credit_code=req.credit_code, person_document_type=document_type(p.document_type),
        person_document_number=p.document_number, person_name=p.name, person_phone=p.phone,
        region_code=req.address.region_code, address=req.address.detail, agreement_no=req.agreement_no,
    )


def register_response(c: RegisteredCustomer) -> acceptance_pb2.RegisterContractCustomerResponse:
    """The core's registration to RegisterContractCustomerResponse."""
    return acceptance_pb2.RegisterContractCustomerResponse(
        customer_id=c.customer_id, masked_credit_code=c.record.credit_code_masked,
        masked_responsible_document=c.record.person_document_masked, registered_at=timestamp(c.registered_at),
    )


def move_response(m: MoveResult) -> custody_pb2.CustodyMoveResponse:
    """The core's move result to CustodyMoveResponse."""
    return custody_pb2.CustodyMoveResponse(
        waybill_no=m.waybill_no, from_state=parcel_state(m.from_state), state=parcel_state(m.to_state),
        event_seq=m.event_seq, recorded_at=timestamp(m.recorded_at),
    )


def event(e: StoredEvent) -> common_pb2.ShipmentEvent:
    """A stored event to ShipmentEvent."""
    return common_pb2.ShipmentEvent(
        seq=e.seq, kind=e.kind, from_state=parcel_state(e.from_state), to_state=parcel_state(e.to_state),
        actor=common_pb2.Actor(principal=e.principal, terminal_id=e.terminal_id, device_id=e.device_id),
        location=e.location, note=e.note, recorded_at=timestamp(e.recorded_at),
    )


def parcel_view(v: ParcelView) -> custody_pb2.ParcelView:
    """The core's parcel view to ParcelView."""
    return custody_pb2.ParcelView(
        shipment_id=v.shipment_id, waybill_no=v.waybill_no, state=parcel_state(v.state),
        hold_reason=v.hold_reason, masked_sender_name=v.masked_sender_name,
        masked_recipient_name=v.masked_recipient_name, masked_recipient_phone=v.masked_recipient_phone,
        recipient_region_code=v.recipient_region_code, events=[event(e) for e in v.events],
        created_at=timestamp(v.created_at),
    )
