"""Converters between courier.v1.Acceptance messages and the acceptance core."""

from __future__ import annotations

from courier.v1 import acceptance_pb2, common_pb2
from gateway.core.acceptance import AcceptParcelCommand, AcceptResult, InspectionIn, InspectionOutcome
from gateway.core.customers import RegisterCustomerCommand, RegisteredCustomer
from gateway.core.parcels import AddressIn, ItemIn
from gateway.core.verification import InPersonCheck, Verification, VerifySenderCommand
from gateway.rpc.convert.common import document_type, enum_name, from_timestamp, hits, parcel_state, reasons, timestamp


def verify_command(req: acceptance_pb2.VerifySenderRequest) -> VerifySenderCommand:
    """VerifySenderRequest to the core's command."""
    return VerifySenderCommand(
        document_type=document_type(req.document_type), document_number=req.document_number, name=req.name,
        phone=req.phone, mrz=req.mrz, face_photo=req.face_photo, terminal_id=req.terminal_id,
        in_person_check=in_person_check(req.in_person_check),
    )


def in_person_check(value: int) -> InPersonCheck | None:
    """The core's in-person check of a proto enum value, or None when not recorded."""
    name = enum_name(acceptance_pb2.InPersonCheck, value, "IN_PERSON_CHECK_")
    return InPersonCheck[name] if name else None


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
    name = enum_name(acceptance_pb2.InspectionOutcome, i.outcome, "INSPECTION_OUTCOME_")
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
        weight_g=req.weight_g if req.HasField("weight_g") else None,
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
