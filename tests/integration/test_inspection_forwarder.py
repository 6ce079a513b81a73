"""The forwarder against a real gateway: in order, acks marked in the queue, decisions on the board, resends
answered with the first ack and never recorded twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from courier.v1 import inspection_pb2 as pb
from inspection import metrics
from inspection.forwarder import Backoff, Forwarder
from inspection.queue import AsyncQueue
from inspection.routing import Decision, RoutingBoard
from tests.e2e.requests import accept_request, verify_request


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[AsyncQueue]:
    """A real queue file."""
    q = AsyncQueue(tmp_path / "queue.sqlite")
    yield q
    await q.close()


async def accepted(gw) -> str:  # type: ignore[no-untyped-def]
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md("terminal"))).sender_ref
    return (await gw.acceptance.AcceptParcel(accept_request(ref), metadata=gw.md("terminal"))).waybill_no


async def drained(q: AsyncQueue, within: float = 15.0) -> None:
    """Waits until every event in the queue is acknowledged."""
    for _ in range(int(within / 0.05)):
        if q.sync.depth() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{q.sync.depth()} events never acknowledged")


async def scan_rows(gw) -> list[str]:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return [r["event_id"] for r in await conn.fetch("SELECT event_id FROM scan_events ORDER BY recorded_at")]
    finally:
        await conn.close()


def forwarder(gw, q: AsyncQueue, board: RoutingBoard) -> Forwarder:  # type: ignore[no-untyped-def]
    return Forwarder(q, f"127.0.0.1:{gw.port}", gw.tokens["scanner"], board, Backoff(0.05, 0.5), ack_timeout_s=10)


async def test_events_go_in_order_and_each_ack_is_kept(gateway, queue: AsyncQueue) -> None:  # type: ignore[no-untyped-def]
    known = await accepted(gateway)
    ids = [await queue.put(pb.ScanEvent(device_id="dws-1", kind=pb.SCAN_KIND_DWS, waybill_no=known,
                                        measurements=pb.Measurements(weight_g=900))),
           await queue.put(pb.ScanEvent(device_id="dws-1", kind=pb.SCAN_KIND_DWS, waybill_no="SF999999999999")),
           await queue.put(pb.ScanEvent(device_id="scale-1", kind=pb.SCAN_KIND_SCALE, unreadable="NO_CODE",
                                        raw_sha256="ab" * 32))]
    board, seen = RoutingBoard(), []
    board.subscribe(seen.append)
    task = asyncio.create_task(forwarder(gateway, queue, board).run())
    try:
        await drained(queue)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [d.event_id for d in seen] == ids
    assert [(d.decision, d.reasons[:1]) for d in seen] == [
        ("PASS", ()), ("DIVERT_TO_HOLD", (seen[1].reasons[0],)), ("DIVERT_TO_HOLD", (seen[2].reasons[0],))]
    assert seen[1].reasons[0].startswith("UNKNOWN_WAYBILL") and seen[2].reasons[0].startswith("DEVICE_OUTPUT")
    latest = board.latest("dws-1")
    assert isinstance(latest, Decision) and latest.event_id == ids[1]
    assert "SF999999999999 DIVERT_TO_HOLD" in latest.line()
    assert [row[1:] for row in queue.sync.rows()] == [("acked", "PASS"), ("acked", "DIVERT_TO_HOLD"),
                                                     ("acked", "DIVERT_TO_HOLD")]
    # Each recorded once; events of one batch share their recorded_at, so the order is the acks' (above).
    assert sorted(await scan_rows(gateway)) == sorted(ids) and metrics.QUEUE_DEPTH._value.get() == 0


async def test_an_event_recorded_but_not_acked_is_resent_and_answered_again(gateway, queue: AsyncQueue) -> None:  # type: ignore[no-untyped-def]
    known = await accepted(gateway)
    event_id = await queue.put(pb.ScanEvent(device_id="reader-1", kind=pb.SCAN_KIND_HANDHELD, waybill_no=known))
    # The gateway recorded it, and the ack never reached the adapter (a crash or a cut between the two).
    (event,) = [p.event for p in await queue.pending()]
    await gateway.inspection.RecordInspection(pb.InspectionRecord(event=event), metadata=gateway.md("scanner"))
    board = RoutingBoard()
    task = asyncio.create_task(forwarder(gateway, queue, board).run())
    try:
        await drained(queue)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    latest = board.latest("reader-1")
    assert latest is not None and latest.replayed and latest.decision == "PASS"
    assert await scan_rows(gateway) == [event_id], "the resend was recorded twice"


async def test_a_wrong_token_keeps_everything_queued(gateway, queue: AsyncQueue) -> None:  # type: ignore[no-untyped-def]
    await queue.put(pb.ScanEvent(device_id="dws-1", kind=pb.SCAN_KIND_DWS, waybill_no="SF999999999998"))
    fwd = Forwarder(queue, f"127.0.0.1:{gateway.port}", "not-a-token", RoutingBoard(), Backoff(0.05, 0.2))
    task = asyncio.create_task(fwd.run())
    await asyncio.sleep(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert queue.sync.depth() == 1 and await scan_rows(gateway) == []
    assert fwd.backoff.attempt >= 2, "it gave up instead of retrying"
