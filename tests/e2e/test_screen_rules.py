"""Screen validates exactly as acceptance does, and hits speak the entry's language."""

from __future__ import annotations

import grpc
import pytest

from courier.v1 import acceptance_pb2, blocklist_pb2, common_pb2
from gateway.core.model import Role
from tests.e2e.requests import bad_fields
from tests.e2e.test_screening import accept, add_entry, items

R = Role.REVIEWER
HUGE = "字" * 100_000
STRING_FIELDS = (
    "sender_name", "sender_document_number", "sender_phone", "sender_credit_code", "sender_address.region_code",
    "sender_address.detail", "recipient.name", "recipient.phone", "recipient.address.region_code",
    "recipient.address.detail", "items[0].description", "items[0].category", "items[0].brand",
)


def _valid() -> blocklist_pb2.ScreenRequest:
    return blocklist_pb2.ScreenRequest(
        sender_name="王小明", sender_document_number="110101199003071233", sender_phone="13800138000",
        sender_credit_code="91110108MA01AB2C3T",
        sender_address=common_pb2.Address(region_code="110101", detail="东华门街道 1 号"),
        recipient=acceptance_pb2.Recipient(name="李秀英", phone="13912345678", address=common_pb2.Address(
            region_code="310104", detail="漕溪北路 88 号")),
        items=[acceptance_pb2.Item(description="运动鞋", category="shoes", brand="Nike", quantity=1,
                                   declared_value_fen=59900)])


def _set(request: blocklist_pb2.ScreenRequest, path: str, value: str) -> None:
    *parents, last = path.replace("[0]", "").split(".")
    target = request
    for name in parents:
        target = getattr(target, name)[0] if name == "items" else getattr(target, name)
    setattr(target, last, value)


def test_the_thirteen_string_fields_are_all_covered() -> None:
    def strings(descriptor, prefix=""):  # type: ignore[no-untyped-def]
        for f in descriptor.fields:
            if f.message_type is not None:
                yield from strings(f.message_type, f"{prefix}{f.name}{'[0]' if f.is_repeated else ''}.")
            elif f.type == f.TYPE_STRING:
                yield prefix + f.name
    assert set(strings(blocklist_pb2.ScreenRequest.DESCRIPTOR)) == set(STRING_FIELDS)


async def test_the_valid_consignment_passes(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.blocklist.Screen(_valid(), metadata=gateway.md(R))
    assert answer.outcome == common_pb2.SCREENING_OUTCOME_PASS


@pytest.mark.parametrize("field", STRING_FIELDS)
async def test_an_oversized_string_is_refused_naming_its_field(gateway, field: str) -> None:  # type: ignore[no-untyped-def]
    request = _valid()
    _set(request, field, HUGE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.blocklist.Screen(request, metadata=gateway.md(R))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(caught.value), bad_fields(caught.value)


async def test_all_oversized_at_once_names_every_field(gateway) -> None:  # type: ignore[no-untyped-def]
    request = _valid()
    for field in STRING_FIELDS:
        _set(request, field, HUGE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.blocklist.Screen(request, metadata=gateway.md(R))
    assert set(STRING_FIELDS) <= set(bad_fields(caught.value))


async def test_an_empty_screen_is_refused_and_acceptance_rules_apply(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.blocklist.Screen(blocklist_pb2.ScreenRequest(), metadata=gateway.md(R))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request" in bad_fields(caught.value)
    no_quantity = blocklist_pb2.ScreenRequest(items=[acceptance_pb2.Item(description="高仿包")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.blocklist.Screen(no_quantity, metadata=gateway.md(R))
    assert "items[0].quantity" in bad_fields(caught.value)
    partial = blocklist_pb2.ScreenRequest(recipient=acceptance_pb2.Recipient(name="李秀英"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.blocklist.Screen(partial, metadata=gateway.md(R))
    assert {"recipient.phone", "recipient.address"} <= set(bad_fields(caught.value))


async def test_hits_carry_the_entrys_kind_and_action(gateway) -> None:  # type: ignore[no-untyped-def]
    refuse = blocklist_pb2.ENTRY_ACTION_REFUSE
    keyword = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻", action=refuse)
    name = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_PERSON_NAME, value="王小明", action=refuse)
    answer = await gateway.blocklist.Screen(blocklist_pb2.ScreenRequest(
        sender_name="王小明", items=items("复刻球鞋")), metadata=gateway.md(R))
    by_id = {h.entry_id: h for h in answer.hits}
    assert by_id[keyword.id].entry_kind == blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD
    assert by_id[keyword.id].entry_action == refuse and by_id[keyword.id].kind == "GOODS_KEYWORD"
    # A name alone asks only for HOLD, though its entry says REFUSE: both are told.
    assert by_id[name.id].action == common_pb2.SCREENING_OUTCOME_HOLD and by_id[name.id].entry_action == refuse
    accepted = await accept(gateway, items=items("复刻外套"))
    assert accepted.hits[0].entry_kind == blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD
    assert accepted.hits[0].entry_action == refuse


async def test_a_reviewer_adds_exclusion_contexts_to_a_keyword(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="原单",
                            exclusions=["原单价"])
    assert list(entry.exclusions) == ["原单价"]
    assert list((await gateway.blocklist.GetEntry(blocklist_pb2.GetEntryRequest(id=entry.id),
                                                  metadata=gateway.md(R))).exclusions) == ["原单价"]
    innocent = await gateway.blocklist.Screen(blocklist_pb2.ScreenRequest(items=items("按原单价退款的配件")),
                                              metadata=gateway.md(R))
    assert innocent.outcome == common_pb2.SCREENING_OUTCOME_PASS
    slang = await gateway.blocklist.Screen(blocklist_pb2.ScreenRequest(items=items("外贸原单 包")),
                                           metadata=gateway.md(R))
    assert slang.outcome == common_pb2.SCREENING_OUTCOME_HOLD and slang.hits[0].entry_id == entry.id
    held = await accept(gateway, items=items("原单价退 原单 T恤"))  # one innocent, one genuine occurrence
    assert held.decision == acceptance_pb2.ACCEPT_DECISION_HELD


async def test_an_exclusion_that_could_never_apply_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="高仿", exclusions=["绿植"])
    assert "exclusions[0]" in bad_fields(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_PHONE, value="13700001111", exclusions=["137"])
    assert "exclusions" in bad_fields(caught.value)
