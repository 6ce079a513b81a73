"""A parcel's two global keys (waybill number, idempotency key) kept unique by tables of their own (migration 011):
a parcel that lost one key to another leaves the other free, so AcceptParcel answers exactly as before."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc

from courier.v1 import acceptance_pb2
from gateway.core.model import Role
from tests.e2e.requests import accept_request, verify_request, waybill

T = Role.TERMINAL


async def _counts(gw) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return (await conn.fetchval("SELECT count(*) FROM shipments"),
                await conn.fetchval("SELECT count(*) FROM shipment_waybills"),
                await conn.fetchval("SELECT count(*) FROM shipment_idempotency_keys"))
    finally:
        await conn.close()


async def _race(gw, requests):  # type: ignore[no-untyped-def]
    results = await asyncio.gather(*(gw.acceptance.AcceptParcel(r, metadata=gw.md(T)) for r in requests),
                                   return_exceptions=True)
    wins = [r for r in results if isinstance(r, acceptance_pb2.AcceptParcelResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) + len(losses) == len(requests), results
    return wins, losses


async def test_losers_of_a_waybill_race_leave_their_keys_free(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = (await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))).sender_ref
    number = waybill()
    requests = [accept_request(ref, waybill_no=number, idempotency_key=f"wrace-{i:04d}-{number}") for i in range(16)]
    wins, losses = await _race(gateway, requests)
    assert len(wins) == 1 and {e.code() for e in losses} == {grpc.StatusCode.ALREADY_EXISTS}
    assert all("waybill" in e.details() for e in losses)
    assert await _counts(gateway) == (1, 1, 1)  # no key of a loser stayed behind
    # A losing key is free: with a waybill of its own the same key is accepted now.
    first = await _first_key(gateway, wins[0].shipment_id)
    free = next(r.idempotency_key for r in requests if r.idempotency_key != first)
    again = accept_request(ref, idempotency_key=free, waybill_no=waybill())
    answer = await gateway.acceptance.AcceptParcel(again, metadata=gateway.md(T))
    assert answer.shipment_id != wins[0].shipment_id
    assert await _counts(gateway) == (2, 2, 2)


async def _first_key(gw, shipment_id: str) -> str:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        key: str = await conn.fetchval("SELECT idempotency_key FROM shipment_idempotency_keys"
                                       " WHERE shipment_id = $1::uuid", shipment_id)
        return key
    finally:
        await conn.close()


async def test_losers_of_a_key_race_leave_their_waybills_free(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = (await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))).sender_ref
    key = f"krace-{waybill()}"
    requests = [accept_request(ref, idempotency_key=key, waybill_no=waybill()) for _ in range(12)]
    wins, losses = await _race(gateway, requests)
    assert len(wins) == 1 and {e.code() for e in losses} == {grpc.StatusCode.ALREADY_EXISTS}
    assert all("idempotency_key" in e.details() for e in losses)
    assert await _counts(gateway) == (1, 1, 1)
    free = next(r.waybill_no for r in requests if r.waybill_no != wins[0].waybill_no)
    answer = await gateway.acceptance.AcceptParcel(accept_request(ref, waybill_no=free), metadata=gateway.md(T))
    assert answer.waybill_no == free
    assert await _counts(gateway) == (2, 2, 2)
