"""The door's limits over real channels: rate limits per role, open streams per principal, and deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from courier.v1 import common_pb2, custody_pb2, inspection_pb2
from gateway.core.model import Principal, Role
from gateway.rpc.limits import DoorLimits
from gateway.settings import Settings, SettingsError, load_settings
from gateway.storage.db import create_pool
from gateway.storage.principals import PrincipalRepository
from tests.conftest import RunningGateway, b64key, make_tokens
from tests.e2e.requests import accept_request, move, verify_request

T, S, R, A = Role.TERMINAL, Role.SCANNER, Role.REVIEWER, Role.ADMIN
UNKNOWN = custody_pb2.GetParcelRequest(waybill_no="SF000000000000")  # NOT_FOUND: answered past the door


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[RunningGateway]:
    """A real gateway on a free port for these settings, with a token per role."""
    from gateway.server import create_server

    built = await create_server(settings)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield RunningGateway(built.port, channel, settings, await make_tokens(settings.database_url))
    finally:
        await channel.close()
        await built.stop(0.5)


def rate_limits(value: str) -> tuple[tuple[str, float, int], ...]:
    """RATE_LIMITS as the environment gives it, read by the settings loader."""
    env = {"DATABASE_URL": "postgresql://unused", "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key(),
           "RATE_LIMITS": value}
    return load_settings(env).rate_limits


async def add_token(gw: RunningGateway, name: str, *roles: Role) -> tuple[tuple[str, str], ...]:
    """Metadata for a new principal holding these roles."""
    pool = await create_pool(gw.settings.database_url, min_size=1, max_size=1)
    try:
        _, token = await PrincipalRepository(pool).create_token(name, frozenset(roles))
    finally:
        await pool.close()
    return (("authorization", f"Bearer {token}"),)


async def code_of(gw: RunningGateway, metadata: Any) -> grpc.aio.AioRpcError | None:
    """The error of one GetParcel of an unknown waybill (NOT_FOUND when let through), or None."""
    try:
        await gw.custody.GetParcel(UNKNOWN, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as err:
        return err
    return None


async def passes(gw: RunningGateway, metadata: Any, times: int) -> int:
    """How many of `times` calls in a row got past the limits."""
    passed = 0
    for _ in range(times):
        err = await code_of(gw, metadata)
        if err is None or err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            passed += 1
    return passed


def retry_delay(err: grpc.aio.AioRpcError) -> float:
    """The google.rpc.RetryInfo delay of a refused call, in seconds."""
    status = rpc_status.from_call(err)
    assert status is not None, "no rich status"
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError("no RetryInfo in the status details")


@pytest.mark.parametrize(("value", "said"), [
    ("terminal=0/5", "needs a rate above 0 and a burst of at least 1"),
    ("terminal=5/0", "needs a rate above 0 and a burst of at least 1"),
    ("courier=5/5", "'courier=5/5' is not ROLE=RATE/BURST with ROLE one of admin, investigator"),
    ("terminal=fast", "'terminal=fast' is not ROLE=RATE/BURST (calls per second"),
])
def test_a_bad_rate_limit_is_refused_naming_the_setting(value: str, said: str) -> None:
    with pytest.raises(SettingsError) as caught:
        rate_limits(value)
    assert str(caught.value).startswith("RATE_LIMITS: ") and said in str(caught.value)


def test_a_role_set_off_is_never_limited_and_a_bare_rate_is_its_own_burst() -> None:
    limits = rate_limits("terminal=off, scanner=3")
    assert dict((role, (rate, burst)) for role, rate, burst in limits)["scanner"] == (3.0, 3)
    door = DoorLimits.from_settings(limits, 1)
    door.admit(Principal(1, "unlimited", frozenset({T})))
    for _ in range(20_000):
        door.admit(Principal(1, "unlimited", frozenset({T})))


async def test_the_rate_limit_trips_exactly_past_the_burst_with_retry_info_then_refills(settings: Settings) -> None:
    async with serving(replace(settings, rate_limits=rate_limits("terminal=1/5"))) as gw:
        md = gw.md(T)
        started = time.monotonic()
        for _ in range(5):
            err = await code_of(gw, md)
            assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND  # the burst: all let through
        refused = await code_of(gw, md)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, "the burst took longer than one refill; the test cannot tell"
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate limit exceeded" in refused.details() and "retry in" in refused.details()
        delay = retry_delay(refused)
        # One call per second: the next token is under a second away, less what the burst took on the server
        # (at most what it took here, where the clock started first).
        assert 1.0 - elapsed - 0.01 <= delay <= 1.0
        pushback = dict(refused.trailing_metadata() or ())["grpc-retry-pushback-ms"]
        assert int(pushback) == max(1, round(delay * 1000)) or abs(int(pushback) - delay * 1000) <= 1
        await asyncio.sleep(delay)
        after = await code_of(gw, md)
        assert after is not None and after.code() == grpc.StatusCode.NOT_FOUND  # refilled by one token
        again = await code_of(gw, md)
        assert again is not None and again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # and by one only


async def test_rates_are_per_role_per_principal_and_the_most_generous_role_wins(settings: Settings) -> None:
    limits = rate_limits("terminal=0.1/3,reviewer=0.1/6")
    assert dict((role, (rate, burst)) for role, rate, burst in limits)["admin"] == (2000.0, 4000)  # default kept
    async with serving(replace(settings, rate_limits=limits)) as gw:
        both = await add_token(gw, "terminal-and-reviewer", T, R)
        other_terminal = await add_token(gw, "terminal-2", T)
        assert await passes(gw, gw.md(T), 5) == 3
        assert await passes(gw, gw.md(R), 8) == 6
        assert await passes(gw, both, 8) == 6  # the reviewer's larger burst, not the terminal's
        assert await passes(gw, other_terminal, 4) == 3  # a bucket of its own, not the first terminal's
        assert await passes(gw, gw.md(A), 20) == 20  # admin keeps its default, far above this
        err = await code_of(gw, gw.md(A))
        assert err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED  # counted, then refused


def scan(event_id: str) -> inspection_pb2.ScanEvent:
    """A DWS reading of a waybill the gateway does not know (recorded, answered DIVERT_TO_HOLD)."""
    return inspection_pb2.ScanEvent(event_id=event_id, device_id="DWS-01", kind=inspection_pb2.SCAN_KIND_DWS,
                                    waybill_no="SF000000000001", location="SH-HUB-02/line-3")


class OpenStream:
    """A StreamScans call kept open; proven running by one acked event."""

    def __init__(self, gw: RunningGateway, metadata: Any, *, deadline_s: float = 30) -> None:
        # Serialised by hand, so that a test may also write bytes that are not a ScanEvent at all.
        open_call = gw.channel.stream_stream("/courier.v1.Inspection/StreamScans", request_serializer=bytes,
                                             response_deserializer=inspection_pb2.ScanAck.FromString)
        self.call = open_call(metadata=metadata, timeout=deadline_s)

    async def acked(self, event_id: str) -> inspection_pb2.ScanAck:
        await self.call.write(scan(event_id).SerializeToString())
        return await self.call.read()


async def refused_stream(gw: RunningGateway, metadata: Any) -> grpc.aio.AioRpcError:
    """The error answering a stream opened past the cap."""
    extra = OpenStream(gw, metadata)
    try:
        await extra.acked("evt-extra-0001")
    except grpc.aio.AioRpcError as err:
        return err
    extra.call.cancel()
    raise AssertionError("the stream past the cap was let through")


async def until_open(gw: RunningGateway, metadata: Any, event_id: str, *, deadline_s: float = 30) -> OpenStream:
    """A new stream, retried briefly while the gateway is still counting one that just ended."""
    deadline = time.monotonic() + 3
    while True:
        stream = OpenStream(gw, metadata, deadline_s=deadline_s)
        try:
            await stream.acked(event_id)
            return stream
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_open_streams_are_capped_per_principal_and_released_however_they_end(settings: Settings) -> None:
    async with serving(replace(settings, max_streams_per_principal=2)) as gw:
        md = gw.md(S)
        first, second = OpenStream(gw, md), OpenStream(gw, md)
        assert (await first.acked("evt-a-000001")).event_id == "evt-a-000001"
        await second.acked("evt-b-000001")
        err = await refused_stream(gw, md)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many open streams" in err.details()
        other = OpenStream(gw, await add_token(gw, "scanner-2", S))  # another principal has slots of its own
        await other.acked("evt-o-000001")
        other.call.cancel()

        first.call.cancel()  # cancelled by the client
        first = await until_open(gw, md, "evt-c-000001")
        assert (await refused_stream(gw, md)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        await second.call.write(b"\xff\xff\xff")  # ended by an error: not protobuf
        try:
            await second.call.read()
        except grpc.aio.AioRpcError as bad:
            assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            raise AssertionError("a bad event was acked")
        second = await until_open(gw, md, "evt-d-000001")

        for stream in (first, second):
            stream.call.cancel()
        expiring = [await until_open(gw, md, "evt-e-000001", deadline_s=1.5),  # ended by their deadline
                    await until_open(gw, md, "evt-e-000002", deadline_s=1.5)]
        assert (await refused_stream(gw, md)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for stream in expiring:
            assert await stream.call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        done = [await until_open(gw, md, "evt-f-000001"), await until_open(gw, md, "evt-f-000002")]
        assert (await refused_stream(gw, md)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # back to exactly 2
        for stream in done:
            await stream.call.done_writing()
            assert await stream.call.code() == grpc.StatusCode.OK  # ended normally
        await until_open(gw, md, "evt-g-000001")


async def test_a_call_whose_deadline_passes_at_the_door_never_runs(settings: Settings,
                                                                    authority_simulator: Any) -> None:
    s = replace(settings, identity_authority_url=authority_simulator.url, identity_authority_key="test-key")
    async with serving(s) as gw:
        await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))  # the path works
        served = authority_simulator.requests_served
        locker = await asyncpg.connect(s.database_url)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")  # the token look-up waits
            try:
                await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T), timeout=0.5)
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            else:
                raise AssertionError("the call was answered while its token could not be read")
            await asyncio.sleep(0.5)
            await tx.rollback()
            await asyncio.sleep(1.0)  # had the handler been started, it would run now
            assert await locker.fetchval("SELECT count(*) FROM sender_verifications") == 1
            assert authority_simulator.requests_served == served
        finally:
            await locker.close()


async def test_a_started_call_past_its_deadline_stops_and_writes_nothing(settings: Settings,
                                                                          authority_simulator: Any) -> None:
    s = replace(settings, identity_authority_url=authority_simulator.url, identity_authority_key="test-key")
    async with serving(s) as gw:
        ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
        number = (await gw.acceptance.AcceptParcel(accept_request(ref), metadata=gw.md(T))).waybill_no
        locker = await asyncpg.connect(s.database_url)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("SELECT 1 FROM shipments WHERE waybill_no = $1 FOR UPDATE", number)
            try:
                await gw.custody.StoreParcel(move(number), metadata=gw.md(T), timeout=0.5)
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            else:
                raise AssertionError("the move went through a locked row")
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            for _ in range(40):  # the handler was cancelled, and with it its statement: nothing waits on the row
                if await locker.fetchval(waiting) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await locker.fetchval(waiting) == 0
            await tx.rollback()
            await asyncio.sleep(0.5)
            state = await locker.fetchval("SELECT state FROM shipments WHERE waybill_no = $1", number)
            kinds = await locker.fetch("SELECT e.kind FROM shipment_events e JOIN shipments s ON s.id = e.shipment_id"
                                       " WHERE s.waybill_no = $1 ORDER BY e.seq", number)
            assert state == "ACCEPTED" and [k["kind"] for k in kinds] == ["ACCEPTED"]
        finally:
            await locker.close()
        stored = await gw.custody.StoreParcel(move(number), metadata=gw.md(T), timeout=10)  # unlocked, it works
        assert stored.state == common_pb2.PARCEL_STATE_STORED
