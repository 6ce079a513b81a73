"""Each socket simulator against its adapter over a real socket, readings landing in a real queue file."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from courier.v1 import inspection_pb2 as pb
from inspection import metrics
from inspection.config import Connection, Device
from inspection.devices.dws import DwsAdapter
from inspection.devices.reader import ReaderAdapter
from inspection.devices.scale import Pairing, ScaleAdapter
from inspection.queue import AsyncQueue
from inspection.simulators.dws import DwsSimulator, record_for
from inspection.simulators.reader import ReaderSimulator
from inspection.simulators.scale import ScaleSimulator, parcel_plan


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[AsyncQueue]:
    """A real queue file."""
    q = AsyncQueue(tmp_path / "queue.sqlite")
    yield q
    await q.close()


@contextlib.asynccontextmanager
async def running(*jobs: Any) -> AsyncIterator[None]:
    """Runs adapter coroutines for the block, then cancels them."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def events(q: AsyncQueue, count: int, within: float = 10.0) -> list[pb.ScanEvent]:
    """The queue's first `count` events, waiting for them to arrive."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        found = [p.event for p in await q.pending(limit=1000)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(found)} of {count} events: {[(e.waybill_no, e.unreadable) for e in found]}")


def tcp(port: int) -> Connection:
    return Connection(host="127.0.0.1", port=port)


def summary(found: list[pb.ScanEvent]) -> list[tuple[str, int, str]]:
    return [(e.waybill_no, e.measurements.weight_g, e.unreadable.split(":")[0]) for e in found]


def counted(device: str, reason: str) -> Callable[[], float]:
    return lambda: metrics.UNREADABLE.labels(device=device, reason=reason)._value.get()


@pytest.mark.parametrize("command", ["SI", "SIR", "S"])
async def test_scale_station_pairs_codes_with_stable_weights(queue: AsyncQueue, command: str) -> None:
    plan = parcel_plan([("SF1000000001", 500), ("SF1000000002", 1250)]) + ["S:800", "S:800", "S:0"]
    plan += ["code:SF1000000003", *["S:0"] * 20] + ["code:SF1000000004", "D:100", "X", "S:640", "S:640", "S:0"]
    sim = ScaleSimulator(plan, interval_s=0.02)
    port = await sim.start(reader_port=0)
    scale = Device(f"scale-{command}", "scale", tcp(port), "HUB/line-1",
                   {"command": command, "poll_interval_s": 0.01, "reader": "reader-1", "pair_timeout_s": 0.5})
    reader = Device("reader-1", "reader", tcp(sim.reader_port), "HUB/line-1")
    pairing = Pairing(scale, queue)
    unknown = counted(scale.id, "UNKNOWN_STATUS")
    before = unknown()
    async with running(ScaleAdapter(scale, pairing).run(), pairing.run(),
                       ReaderAdapter(reader, queue, pairing.offer).run()):
        found = await events(queue, 5)
    await sim.close()
    assert summary(found) == [
        ("SF1000000001", 500, ""), ("SF1000000002", 1250, ""),
        ("", 800, "NO_CODE"),  # a weight with no code before it: never paired by guess
        ("SF1000000003", 0, "NO_WEIGHT"),  # a code with no weight within pair_timeout_s
        ("SF1000000004", 0, "UNKNOWN_STATUS"),  # the bad answer diverts the parcel; its later weight is not a 2nd
    ][: len(found)] and len(found) == 5
    assert all(e.kind == pb.SCAN_KIND_SCALE and e.location == "HUB/line-1" and e.event_id for e in found)
    assert len(found[4].raw_sha256) == 64 and unknown() == before + 1
    assert set(sim.commands) == {command}


async def test_scale_over_pyserial(queue: AsyncQueue) -> None:
    # pyserial's socket:// URL drives the serial code path (SerialLink) over a real socket.
    sim = ScaleSimulator(parcel_plan([("SF2000000001", 300)]), interval_s=0.02)
    port = await sim.start(reader_port=0)
    scale = Device("scale-serial", "scale", Connection(serial=f"socket://127.0.0.1:{port}", baud=9600), "HUB",
                   {"poll_interval_s": 0.01, "reader": "reader-s"})
    pairing = Pairing(scale, queue)
    async with running(ScaleAdapter(scale, pairing).run(),
                       ReaderAdapter(Device("reader-s", "reader", tcp(sim.reader_port), "HUB"), queue,
                                     pairing.offer).run()):
        found = await events(queue, 1)
    await sim.close()
    assert summary(found) == [("SF2000000001", 300, "")]


async def test_scale_reconnects_and_goes_on(queue: AsyncQueue) -> None:
    sim = ScaleSimulator(["junk", "S:0", "S:0"], interval_s=0.02)
    port = await sim.start()
    scale = Device("scale-alone", "scale", tcp(port), "HUB", {"poll_interval_s": 0.01})
    async with running(ScaleAdapter(scale, Pairing(scale, queue)).run()):
        first = await events(queue, 1)
        await sim.close()
        sim2 = ScaleSimulator(["S:0", "S:2000", "S:0"], interval_s=0.02)
        await sim2.start(port)
        found = await events(queue, 2)
    await sim2.close()
    assert summary(first) == [("", 0, "MALFORMED_LINE")]
    assert summary(found)[1] == ("", 2000, "NO_CODE")


async def test_dws_records_truncations_and_resends(queue: AsyncQueue) -> None:
    good = [record_for(i, f"SF30000000{i:02d}") for i in range(1, 4)]
    records = [good[0], record_for(9, "SF3000000009", "truncated"), good[1], record_for(10, "SF30000010",
               "unknown-status"), record_for(11, "", "junk"), good[2], good[2]]  # the last one resent
    sim = DwsSimulator(records, interval_s=0.02)
    port = await sim.start()
    device = Device("dws-1", "dws", tcp(port), "HUB/dws", {"record_timeout_s": 0.3})
    async with running(DwsAdapter(device, queue).run()):
        found = await events(queue, 6)
        await asyncio.sleep(0.3)
    await sim.close()
    assert [(w, r) for w, _, r in summary(found)] == [
        ("SF3000000001", ""), ("", "TRUNCATED_RECORD"), ("SF3000000002", ""), ("", "UNKNOWN_STATUS"),
        ("", "MALFORMED_RECORD"), ("SF3000000003", "")]
    assert len(await queue.pending(limit=100)) == 6, "the resent record became a second reading"
    m = found[0].measurements
    assert m.length_mm > 0 and m.width_mm > 0 and m.height_mm > 0 and m.weight_g > 0
    assert sim.answers == [b"\x06", b"\x15", b"\x06", b"\x15", b"\x06", b"\x06"]


async def test_dws_record_unanswered_is_resent_after_reconnect(queue: AsyncQueue) -> None:
    sim = DwsSimulator([record_for(1, "SF4000000001"), record_for(2, "SF4000000002")], interval_s=0.02,
                       answer_s=0.5)
    port = await sim.start()
    device = Device("dws-2", "dws", tcp(port), "HUB", {"record_timeout_s": 0.3})
    # An adapter that read the first record and went before answering: the station sends it again.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    first = await reader.readexactly(57)
    writer.close()
    async with running(DwsAdapter(device, queue).run()):
        found = await events(queue, 2)
    await sim.close()
    assert [e.waybill_no for e in found] == ["SF4000000001", "SF4000000002"]
    assert first == record_for(1, "SF4000000001")


async def test_reader_alone_sends_handheld_events(queue: AsyncQueue) -> None:
    sim = ReaderSimulator(["SF5000000001", "noread", "malformed", "lowercase-no", "SF5000000002"], interval_s=0.02)
    port = await sim.start()
    device = Device("hh-1", "reader", tcp(port), "HUB/desk")
    async with running(ReaderAdapter(device, queue).run()):
        found = await events(queue, 5)
    await sim.close()
    assert [(w, r) for w, _, r in summary(found)] == [
        ("SF5000000001", ""), ("", "NO_READ"), ("", "MALFORMED_LINE"), ("", "NOT_A_WAYBILL"), ("SF5000000002", "")]
    assert all(e.kind == pb.SCAN_KIND_HANDHELD for e in found)
    assert all(len(e.raw_sha256) == 64 for e in found[1:4]) and not found[0].raw_sha256
