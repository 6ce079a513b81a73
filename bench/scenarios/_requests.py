"""Requests the scenarios send: the demo person, plausible parcels, custody moves."""

from __future__ import annotations

from courier.v1 import acceptance_pb2, common_pb2, custody_pb2

# In gateway/data/demo_registry.json: the simulator answers MATCH for him.
DEMO_PERSON = {"number": "110101199003071233", "name": "张伟", "phone": "13800138000"}
_RECIPIENTS = (
    ("李秀英", "13912345678", "310104", "漕溪北路 88 号"), ("王芳", "13600001111", "440305", "科技园路 9 号"),
    ("陈静", "18611112222", "330106", "文三路 477 号"), ("刘洋", "15822223333", "510107", "武侯祠大街 231 号"),
)
_GOODS = (("书籍", "books", 2, 8800), ("T恤", "clothing", 1, 9900), ("茶叶", "food", 3, 50400),
          ("保温杯", "household", 1, 8900))


def verify_request(terminal_id: str) -> acceptance_pb2.VerifySenderRequest:
    """VerifySender for the demo person."""
    return acceptance_pb2.VerifySenderRequest(
        document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, document_number=DEMO_PERSON["number"],
        name=DEMO_PERSON["name"], phone=DEMO_PERSON["phone"], terminal_id=terminal_id)


def accept_request(sender_ref: str, waybill_no: str, i: int, terminal_id: str) -> acceptance_pb2.AcceptParcelRequest:
    """AcceptParcel of an inspected parcel; recipient and goods vary with i."""
    name, phone, region, detail = _RECIPIENTS[i % len(_RECIPIENTS)]
    desc, category, quantity, value = _GOODS[i % len(_GOODS)]
    return acceptance_pb2.AcceptParcelRequest(
        idempotency_key=f"key-{waybill_no}", waybill_no=waybill_no, sender_ref=sender_ref,
        sender_address=common_pb2.Address(region_code="110101", detail="东华门街道 1 号"),
        recipient=acceptance_pb2.Recipient(name=name, phone=phone,
                                           address=common_pb2.Address(region_code=region, detail=detail)),
        items=[acceptance_pb2.Item(description=desc, category=category, quantity=quantity,
                                   declared_value_fen=value)],
        inspection=acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED),
        terminal_id=terminal_id)


def store_request(waybill_no: str, device_id: str) -> custody_pb2.CustodyMoveRequest:
    """StoreParcel from a warehouse scanner."""
    return custody_pb2.CustodyMoveRequest(waybill_no=waybill_no, device_id=device_id, location="WH-BJ-01/B07")
