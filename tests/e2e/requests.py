"""Small builders of valid requests, so each test states only what it changes."""

from __future__ import annotations

import secrets
from typing import Any

from courier.v1 import acceptance_pb2, common_pb2, custody_pb2

ZHANG = {"number": "110101199003071233", "name": "张伟"}  # in tests/fixtures/identity/authority_registry.json
LI = {"number": "310104198511124567", "name": "李秀英"}


def verify_request(**overrides: Any) -> acceptance_pb2.VerifySenderRequest:
    """A VerifySender request for a person the authority simulator knows."""
    fields: dict[str, Any] = {
        "document_type": common_pb2.DOCUMENT_TYPE_RESIDENT_ID, "document_number": ZHANG["number"],
        "name": ZHANG["name"], "phone": "13800138000", "terminal_id": "T-0001",
    }
    fields.update(overrides)
    return acceptance_pb2.VerifySenderRequest(**fields)


def waybill() -> str:
    """A fresh waybill number."""
    return f"SF{secrets.randbelow(10**12):012d}"


def accept_request(sender_ref: str = "", **overrides: Any) -> acceptance_pb2.AcceptParcelRequest:
    """An AcceptParcel request for an inspected parcel of books."""
    number = overrides.pop("waybill_no", None) or waybill()
    fields: dict[str, Any] = {
        "idempotency_key": f"key-{number}", "waybill_no": number,
        "sender_address": common_pb2.Address(region_code="110101", detail="东华门街道 1 号"),
        "recipient": acceptance_pb2.Recipient(
            name="李秀英", phone="13912345678",
            address=common_pb2.Address(region_code="310104", detail="漕溪北路 88 号")),
        "items": [acceptance_pb2.Item(description="书籍", category="books", quantity=2, declared_value_fen=8800)],
        "inspection": acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED),
        "terminal_id": "T-0001",
    }
    if sender_ref:
        fields["sender_ref"] = sender_ref
    fields.update(overrides)
    return acceptance_pb2.AcceptParcelRequest(**fields)


def move(waybill_no: str, **overrides: Any) -> custody_pb2.CustodyMoveRequest:
    """A custody move request from a terminal."""
    fields: dict[str, Any] = {"waybill_no": waybill_no, "terminal_id": "T-0001", "location": "BJ-01", **overrides}
    return custody_pb2.CustodyMoveRequest(**fields)


def bad_fields(error: Any) -> dict[str, str]:
    """The google.rpc.BadRequest field violations of a failed call, as {field: description}."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, "the status carries no details"
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found
