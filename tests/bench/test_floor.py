"""The floor (bench/ceilings/floor.py) as the bench runs it: its own process on a real database, calling the real
authority simulator, answering the bench's own requests, and doing the work it stands for (a row per call, the
personal fields sealed, not stored in the clear)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.procs import ChildProcess
from bench.scenarios._requests import DEMO_PERSON, accept_request, verify_request
from courier.v1 import acceptance_pb2, acceptance_pb2_grpc
from gateway.security.sealing import generate_key
from tests.conftest import REPO

PREFIX = "floor_test"


def _open(key: bytes, blob: bytes, context: bytes) -> str:
    return AESGCM(key).decrypt(blob[:12], blob[12:], context).decode()


@pytest.fixture
async def floor(db_dsn: str, authority_simulator: Any) -> AsyncIterator[tuple[acceptance_pb2_grpc.AcceptanceStub,
                                                                               bytes, Any]]:
    key = generate_key()
    env = {**os.environ, "DATABASE_URL": db_dsn, "IDENTITY_AUTHORITY_URL": authority_simulator.url,
           "IDENTITY_AUTHORITY_KEY": "test-key", "GATEWAY_DATA_KEY": base64.b64encode(key).decode()}
    child = await ChildProcess.start("floor", [sys.executable, "-m", "bench.ceilings.floor", "--port", "0",
                                               "--table-prefix", PREFIX], "floor listening on", env=env, cwd=REPO)
    channel = grpc.aio.insecure_channel(child.address())
    try:
        yield acceptance_pb2_grpc.AcceptanceStub(channel), key, authority_simulator  # type: ignore[no-untyped-call]
    finally:
        await channel.close()
        assert await child.stop() == 0, list(child.tail)


async def test_verify_asks_the_authority_and_records_the_numbers_sealed(db_dsn: str, floor: Any) -> None:
    stub, key, simulator = floor
    served = simulator.requests_served
    answer = await stub.VerifySender(verify_request("T-FLOOR-01"), timeout=10)
    assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED and answer.authority_result == "MATCH"
    assert simulator.requests_served == served + 1  # exactly one authority call per VerifySender
    conn = await asyncpg.connect(db_dsn)
    try:
        row = await conn.fetchrow(f"SELECT * FROM {PREFIX}_verifications WHERE id = $1", uuid.UUID(answer.sender_ref))
    finally:
        await conn.close()
    assert row is not None, "VerifySender answered without recording the check"
    assert row["authority_result"] == "MATCH" and row["authority_reference"].startswith("SIM-")
    for column, context, plain in (("document_enc", b"document", DEMO_PERSON["number"]),
                                   ("phone_enc", b"phone", DEMO_PERSON["phone"])):
        assert plain.encode() not in row[column], f"{column} holds the number in the clear"
        assert _open(key, row[column], context) == plain


async def test_the_authoritys_no_is_a_rejection(db_dsn: str, floor: Any) -> None:
    stub, _, _ = floor
    request = verify_request("T-FLOOR-01")
    request.name = "李四"  # not the holder of the demo number: the authority answers MISMATCH
    answer = await stub.VerifySender(request, timeout=10)
    assert answer.verdict == acceptance_pb2.VERDICT_REJECTED and answer.authority_result == "MISMATCH"
    assert not answer.sender_ref


async def test_accept_records_each_parcel_sealed_through_the_group_commit(db_dsn: str, floor: Any) -> None:
    stub, key, _ = floor
    verdict = await stub.VerifySender(verify_request("T-FLOOR-02"), timeout=10)
    requests = [accept_request(verdict.sender_ref, f"WB-FLOOR-{i:04d}", i, "T-FLOOR-02") for i in range(40)]
    # Concurrent callers share batches; each must still get its own committed row.
    answers = await asyncio.gather(*(stub.AcceptParcel(r, timeout=10) for r in requests))
    assert {a.decision for a in answers} == {acceptance_pb2.ACCEPT_DECISION_ACCEPTED}
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = {r["waybill_no"]: r for r in await conn.fetch(f"SELECT * FROM {PREFIX}_parcels")}
    finally:
        await conn.close()
    assert set(rows) == {r.waybill_no for r in requests}
    for request, answer in zip(requests, answers, strict=True):
        row = rows[request.waybill_no]
        assert str(row["id"]) == answer.shipment_id and row["sender_ref"] == verdict.sender_ref
        assert request.recipient.phone.encode() not in row["recipient_phone_enc"]
        assert _open(key, row["recipient_phone_enc"], b"phone") == request.recipient.phone
        assert _open(key, row["recipient_name_enc"], b"name") == request.recipient.name
    # A waybill already taken is refused by the table, and the caller hears of it instead of a false ACCEPTED.
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.AcceptParcel(requests[0], timeout=10)
