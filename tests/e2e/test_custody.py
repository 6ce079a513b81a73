"""Custody moves end to end: allowed moves append events; every other move changes nothing."""

from __future__ import annotations

import json

import asyncpg
import grpc
import pytest

from courier.v1 import acceptance_pb2, common_pb2, custody_pb2
from gateway.core.model import Role
from tests.e2e.requests import accept_request, move, verify_request

T, S = Role.TERMINAL, Role.SCANNER


async def accepted(gw, **overrides) -> str:  # type: ignore[no-untyped-def]
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
    answer = await gw.acceptance.AcceptParcel(accept_request(ref, **overrides), metadata=gw.md(T))
    return answer.waybill_no


async def history(gw, number: str) -> list[str]:  # type: ignore[no-untyped-def]
    view = await gw.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=number), metadata=gw.md(T))
    return [e.kind for e in view.events]


async def test_store_then_dispatch(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await accepted(gateway)
    stored = await gateway.custody.StoreParcel(move(number), metadata=gateway.md(T))
    assert (stored.from_state, stored.state, stored.event_seq) == (
        common_pb2.PARCEL_STATE_ACCEPTED, common_pb2.PARCEL_STATE_STORED, 2)
    sent = await gateway.custody.DispatchParcel(move(number, device_id="DWS-7"), metadata=gateway.md(S))
    assert sent.state == common_pb2.PARCEL_STATE_DISPATCHED and sent.event_seq == 3
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=number), metadata=gateway.md(T))
    assert [e.kind for e in view.events] == ["ACCEPTED", "STORED", "DISPATCHED"]
    assert view.events[2].actor.principal == "test-scanner" and view.events[2].actor.device_id == "DWS-7"
    assert view.events[1].location == "BJ-01"


async def test_dispatch_may_skip_storage(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await accepted(gateway)
    sent = await gateway.custody.DispatchParcel(move(number), metadata=gateway.md(T))
    assert sent.from_state == common_pb2.PARCEL_STATE_ACCEPTED and sent.state == common_pb2.PARCEL_STATE_DISPATCHED


async def _refused(gw) -> str:  # type: ignore[no-untyped-def]
    inspection = acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_PROHIBITED_FOUND)
    return await accepted(gw, inspection=inspection)


async def _stored(gw) -> str:  # type: ignore[no-untyped-def]
    number = await accepted(gw)
    await gw.custody.StoreParcel(move(number), metadata=gw.md(T))
    return number


async def _dispatched(gw) -> str:  # type: ignore[no-untyped-def]
    number = await accepted(gw)
    await gw.custody.DispatchParcel(move(number), metadata=gw.md(T))
    return number


async def _held(gw) -> str:  # type: ignore[no-untyped-def]
    number = await accepted(gw)
    conn = await asyncpg.connect(gw.settings.database_url)
    await conn.execute("UPDATE shipments SET state = 'HELD', hold_reason = 'test hold' WHERE waybill_no = $1", number)
    await conn.close()
    return number


ILLEGAL = [
    ("StoreParcel", _stored, "STORED"),
    ("StoreParcel", _dispatched, "DISPATCHED"),
    ("DispatchParcel", _dispatched, "DISPATCHED"),
    ("StoreParcel", _refused, "refused"),
    ("DispatchParcel", _refused, "refused"),
    ("StoreParcel", _held, "held (test hold)"),
    ("DispatchParcel", _held, "held (test hold)"),
]


@pytest.mark.parametrize(("rpc", "make", "said"), ILLEGAL, ids=[f"{r}-{m.__name__[1:]}" for r, m, _ in ILLEGAL])
async def test_illegal_move_is_failed_precondition_and_changes_nothing(gateway, rpc, make, said) -> None:  # type: ignore[no-untyped-def]
    number = await make(gateway)
    before = await history(gateway, number)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(gateway.custody, rpc)(move(number), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert said in caught.value.details()
    assert await history(gateway, number) == before


async def test_unknown_waybill_is_not_found(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.StoreParcel(move("SF000000000000"), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_move_without_terminal_or_device_is_invalid(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await accepted(gateway)
    request = custody_pb2.CustodyMoveRequest(waybill_no=number)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.StoreParcel(request, metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await history(gateway, number) == ["ACCEPTED"]


async def test_concurrent_stores_move_once(gateway) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    number = await accepted(gateway)
    results = await asyncio.gather(*(gateway.custody.StoreParcel(move(number), metadata=gateway.md(T))
                                     for _ in range(10)), return_exceptions=True)
    assert sum(isinstance(r, custody_pb2.CustodyMoveResponse) for r in results) == 1
    assert await history(gateway, number) == ["ACCEPTED", "STORED"]


def review(number: str, reason: str = "checked with the brand owner", case_no: str = "CASE-2026-7"):  # type: ignore[no-untyped-def]
    return custody_pb2.ReviewDecisionRequest(waybill_no=number, reason=reason, case_no=case_no)


async def _leads(gw) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return [(r["kind"], r["origin"]) for r in await conn.fetch("SELECT kind, origin FROM leads ORDER BY id")]
    finally:
        await conn.close()


async def test_released_parcel_can_be_stored_and_the_decision_is_recorded(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await _held(gateway)
    released = await gateway.custody.ReleaseHold(review(number), metadata=gateway.md(Role.REVIEWER))
    assert released.state == common_pb2.PARCEL_STATE_ACCEPTED
    await gateway.custody.StoreParcel(move(number), metadata=gateway.md(T))
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=number), metadata=gateway.md(T))
    assert [e.kind for e in view.events] == ["ACCEPTED", "RELEASED", "STORED"]
    assert view.events[1].note == "checked with the brand owner" and view.events[1].actor.principal == "test-reviewer"
    assert view.hold_reason == ""


async def test_refused_after_review_is_terminal_and_a_lead(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await _held(gateway)
    await gateway.custody.ConfirmHold(review(number, "pending the brand owner"), metadata=gateway.md(Role.REVIEWER))
    refused = await gateway.custody.RefuseParcel(review(number), metadata=gateway.md(Role.REVIEWER))
    assert refused.state == common_pb2.PARCEL_STATE_REFUSED
    assert await history(gateway, number) == ["ACCEPTED", "HOLD_CONFIRMED", "REFUSED"]
    assert await _leads(gateway) == [("REFUSED", "REVIEW")]
    conn = await asyncpg.connect(gateway.settings.database_url)
    details = await conn.fetchval("SELECT details FROM shipment_events WHERE kind = 'REFUSED'")
    await conn.close()
    assert json.loads(details) == {"case_no": "CASE-2026-7"}  # an object, not a JSON string
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.ReleaseHold(review(number), metadata=gateway.md(Role.REVIEWER))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_review_needs_reason_and_case(gateway) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.requests import bad_fields

    number = await _held(gateway)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.ReleaseHold(review(number, reason="", case_no=""), metadata=gateway.md(Role.REVIEWER))
    assert set(bad_fields(caught.value)) == {"reason", "case_no"}
    assert await history(gateway, number) == ["ACCEPTED"]


async def test_release_of_a_parcel_not_held_is_failed_precondition(gateway) -> None:  # type: ignore[no-untyped-def]
    number = await accepted(gateway)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.ReleaseHold(review(number), metadata=gateway.md(Role.REVIEWER))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_two_reviewers_deciding_one_parcel_at_once_both_land_in_order(gateway) -> None:  # type: ignore[no-untyped-def]
    # Both decisions are valid from HELD; the second waits for the first's lock and must take the next seq,
    # not the one its own snapshot would suggest (which answered INTERNAL: a duplicate seq).
    import asyncio

    from courier.v1 import inspection_pb2

    number = await accepted(gateway)
    for round_ in range(30):
        record = inspection_pb2.InspectionRecord(event=inspection_pb2.ScanEvent(
            event_id=f"race-{round_:04d}-x", kind=inspection_pb2.SCAN_KIND_MANUAL, waybill_no=number),
            terminal_id="T-0001", prohibited_found=True)
        held = await gateway.inspection.RecordInspection(record, metadata=gateway.md(T))
        assert held.ack.state == common_pb2.PARCEL_STATE_HELD, held
        decision = custody_pb2.ReviewDecisionRequest(waybill_no=number, reason="looked", case_no="C-9")
        answers = await asyncio.gather(*(gateway.custody.ConfirmHold(decision, metadata=gateway.md(Role.REVIEWER))
                                         for _ in range(3)),
                                       gateway.custody.ReleaseHold(decision, metadata=gateway.md(Role.REVIEWER)),
                                       return_exceptions=True)
        for answer in answers:
            if isinstance(answer, grpc.aio.AioRpcError):
                assert answer.code() == grpc.StatusCode.FAILED_PRECONDITION, answer.details()
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=number), metadata=gateway.md(T))
    assert [e.seq for e in view.events] == list(range(1, len(view.events) + 1))
