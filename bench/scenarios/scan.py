"""scan: one StreamScans stream of DWS readings of seeded parcels, each acked with its routing decision.

The figure is events per second over a single stream (one load-generator process opens it; the others have
no work), against the bare bidirectional echo ceiling, and the decision latency (write to ack) at half that
rate. Every event is recorded (a scan row and a history event per parcel, group-committed), so this is the
whole path an adapter's reading takes.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.scenario import BenchContext, CallFailed, Exhausted, Scenario, Target, Worker
from bench.seed import SeedPlan
from courier.v1 import inspection_pb2, inspection_pb2_grpc

DECISIONS = frozenset({inspection_pb2.ROUTING_DECISION_PASS, inspection_pb2.ROUTING_DECISION_DIVERT_TO_HOLD,
                       inspection_pb2.ROUTING_DECISION_REJECT})


@dataclass
class _Stream:
    """The one open stream: acks come back in order, so each resolves the oldest waiting event."""

    call: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: collections.deque[tuple[str, asyncio.Future[None]]] = field(default_factory=collections.deque)
    reader: asyncio.Task[None] | None = None

    async def read_all(self) -> None:
        """Resolves one waiting event per ack until the stream ends."""
        try:
            while (ack := await self.call.read()) is not grpc.aio.EOF:
                event_id, fut = self.waiting.popleft()
                if fut.done():
                    continue
                if ack.event_id != event_id or ack.decision not in DECISIONS or ack.replayed:
                    fut.set_exception(CallFailed("BAD_ACK"))
                else:
                    fut.set_result(None)
        except grpc.aio.AioRpcError as exc:
            self._fail(CallFailed(exc.code().name))
        self._fail(CallFailed("STREAM_ENDED"))

    def _fail(self, exc: BaseException) -> None:
        while self.waiting:
            _, fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


class Scan(Scenario):
    """Each call is one ScanEvent written to the stream and its ScanAck read back."""

    name = "scan"
    ceiling = "bidi_echo"
    unit = "events"
    order = 40
    needs_seed = True
    workers = 1
    description = "one StreamScans stream: DWS readings of seeded parcels, each recorded and decided"
    targets = (Target("ratio", ">=", 0.5), Target("open.p99_ms", "<=", 10.0))

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        if ctx.seed is None:
            raise RuntimeError("scan needs seeded parcels: run with a seed")
        return {"prefix": ctx.seed.prefix, "shipments": ctx.seed.shipments, "tag": ctx.run_tag}

    async def setup(self, worker: Worker) -> Any:
        if worker.index != 0:
            return None  # one stream in all (workers = 1): the other load generators make no calls
        assert worker.channel is not None
        stub = inspection_pb2_grpc.InspectionStub(worker.channel)  # type: ignore[no-untyped-call]
        stream = _Stream(stub.StreamScans(metadata=worker.metadata))
        stream.reader = asyncio.create_task(stream.read_all())
        seed = SeedPlan(worker.plan["prefix"], worker.plan["shipments"])
        return stream, seed, worker.plan["tag"], itertools.count()

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        if state is None:
            raise Exhausted
        stream, seed, tag, _ = state
        event = inspection_pb2.ScanEvent(
            event_id=f"b{tag}-{i}"[-64:], device_id="DWS-BENCH-01", kind=inspection_pb2.SCAN_KIND_DWS,
            waybill_no=seed.waybill(i % seed.shipments), location="BENCH/line-1",
            measurements=inspection_pb2.Measurements(weight_g=800 + i % 400, length_mm=300, width_mm=200,
                                                     height_mm=120))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with stream.lock:  # one write at a time, and the waiting order is the write order
            stream.waiting.append((event.event_id, fut))
            await stream.call.write(event)
        await fut
        return None

    async def teardown(self, state: Any) -> None:
        if state is None:
            return
        stream = state[0]
        try:
            await stream.call.done_writing()
            await asyncio.wait_for(stream.reader, 10)
        except (grpc.aio.AioRpcError, TimeoutError, asyncio.CancelledError):
            stream.call.cancel()


SCENARIO = Scan()
