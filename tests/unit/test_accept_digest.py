"""The request digest: the fast conversion gives byte-for-byte the JSON dataclasses.asdict gave (stored digests)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest

from gateway.core.acceptance import AcceptParcelCommand, InspectionIn, InspectionOutcome
from gateway.core.parcels import AddressIn, ItemIn


def _asdict_digest(cmd: AcceptParcelCommand) -> bytes:
    """The digest as it was computed before (asdict), so parcels accepted then still replay."""
    data = asdict(cmd)
    if cmd.weight_g is None:
        del data["weight_g"]
    if cmd.inspection is not None:
        data["inspection"]["photos"] = [hashlib.sha256(p).hexdigest() for p in cmd.inspection.photos]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).digest()


BASE = AcceptParcelCommand(
    idempotency_key="key-SF0001", waybill_no="SF0001", sender_ref="sr_x", contract_customer_id="",
    sender_address=AddressIn("110101", "东华门街道 1 号"), sender_phone="", recipient_name="李秀英",
    recipient_phone="13912345678", recipient_address=AddressIn("310104", "漕溪北路 88 号"),
    items=(ItemIn("书籍", 2, 8800, "books"), ItemIn("T恤", 1, 9900, "clothing", "Nike")),
    inspection=InspectionIn(InspectionOutcome.INSPECTED), terminal_id="T-1")


@pytest.mark.parametrize("cmd", [
    BASE,
    replace(BASE, weight_g=1200),
    replace(BASE, inspection=InspectionIn(InspectionOutcome.PROHIBITED_FOUND, "knife", (b"\x89PNG1", b"jpg2"),
                                          datetime(2026, 12, 3, 8, 0, tzinfo=UTC))),
    replace(BASE, inspection=None, sender_address=None, items=()),
    replace(BASE, contract_customer_id="0b7c", sender_ref="", sender_phone="+86 138 0013 8000"),
])
def test_digest_is_unchanged(cmd: AcceptParcelCommand) -> None:
    assert cmd.digest() == _asdict_digest(cmd)


def test_digest_tells_requests_apart() -> None:
    assert BASE.digest() != replace(BASE, recipient_name="王芳").digest()
    assert BASE.digest() != replace(BASE, items=BASE.items[:1]).digest()
