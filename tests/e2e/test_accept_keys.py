"""The two global keys of a parcel under the one-statement insert: no key is ever left naming no parcel."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest

from courier.v1 import acceptance_pb2
from gateway.core.model import Role
from tests.e2e.requests import accept_request, verify_request, waybill

T = Role.TERMINAL


async def _ref(gw) -> str:  # type: ignore[no-untyped-def]
    answer = await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED, answer
    return answer.sender_ref


async def _keys(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """(shipments, waybill keys, idempotency keys)."""
    row = await conn.fetchrow("SELECT (SELECT count(*) FROM shipments) AS s, (SELECT count(*) FROM shipment_waybills)"
                              " AS w, (SELECT count(*) FROM shipment_idempotency_keys) AS k")
    return row["s"], row["w"], row["k"]


async def test_a_reused_key_with_a_new_waybill_leaves_that_waybill_free(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await _ref(gateway)
    first = accept_request(ref)
    await gateway.acceptance.AcceptParcel(first, metadata=gateway.md(T))
    number = waybill()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(accept_request(ref, waybill_no=number,
                                                             idempotency_key=first.idempotency_key),
                                              metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS and "idempotency_key" in caught.value.details()
    answer = await gateway.acceptance.AcceptParcel(accept_request(ref, waybill_no=number), metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        assert await _keys(conn) == (2, 2, 2)
    finally:
        await conn.close()


async def test_racing_accepts_of_one_waybill_leave_no_stray_keys(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await _ref(gateway)
    number = waybill()
    requests = [accept_request(ref, waybill_no=number, idempotency_key=f"race-{i:04d}-{number}") for i in range(16)]
    results = await asyncio.gather(*(gateway.acceptance.AcceptParcel(r, metadata=gateway.md(T)) for r in requests),
                                   return_exceptions=True)
    assert sum(isinstance(r, acceptance_pb2.AcceptParcelResponse) for r in results) == 1
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        assert await _keys(conn) == (1, 1, 1)
    finally:
        await conn.close()


async def test_a_key_taken_by_a_concurrent_transaction_frees_the_waybill(gateway) -> None:  # type: ignore[no-untyped-def]
    """Another writer (say, a second gateway process) takes the parcel's idempotency key after the insert's
    snapshot: the one statement fails on the orphaned waybill and the batch is written again in a transaction
    that frees it, so the answer is ALREADY_EXISTS and the waybill stays free."""
    ref = await _ref(gateway)
    request = accept_request(ref)
    other = await asyncpg.connect(gateway.settings.database_url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("INSERT INTO shipment_idempotency_keys (idempotency_key, shipment_id) VALUES ($1, $2)",
                            request.idempotency_key, uuid.uuid4())
        call = asyncio.ensure_future(gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T)))
        # The gateway's insert waits on the uncommitted key; it then finds it taken by a committed transaction.
        for _ in range(100):
            waiting = await other.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                           " AND application_name = 'courier-gateway'")
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the gateway's insert never waited on the concurrent key"
        await tx.commit()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert await other.fetchval("SELECT count(*) FROM shipment_waybills WHERE waybill_no = $1",
                                    request.waybill_no) == 0
        await other.execute("DELETE FROM shipment_idempotency_keys WHERE idempotency_key = $1", request.idempotency_key)
    finally:
        await other.close()
    again = await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert again.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED and again.waybill_no == request.waybill_no
