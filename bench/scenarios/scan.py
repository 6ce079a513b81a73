"""scan: one StreamScans stream of DWS readings of seeded parcels, each acked with its routing decision.

The figure is events per second over a single stream (one load-generator process opens it; the others have
no work), against the bare bidirectional echo ceiling, and the decision latency (write to ack) at half that
rate. Every event is recorded (a scan row and a history event per parcel, group-committed), so this is the
whole path an adapter's reading takes.
"""

from __future__ import annotations

from typing import Any

from bench.scenario import BenchContext, Exhausted, Scenario, Target, Worker
from bench.seed import SeedPlan
from bench.streams import OrderedStream
from courier.v1 import inspection_pb2, inspection_pb2_grpc

DECISIONS = frozenset({inspection_pb2.ROUTING_DECISION_PASS, inspection_pb2.ROUTING_DECISION_DIVERT_TO_HOLD,
                       inspection_pb2.ROUTING_DECISION_REJECT})


def _acked(event: inspection_pb2.ScanEvent, ack: inspection_pb2.ScanAck) -> str | None:
    if ack.event_id != event.event_id or ack.decision not in DECISIONS:
        return "BAD_ACK"
    return "REPLAYED" if ack.replayed else None  # every event is new: a replay would mean a lost ack


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
        stream = OrderedStream(stub.StreamScans(metadata=worker.metadata), _acked).start()
        return stream, SeedPlan(worker.plan["prefix"], worker.plan["shipments"]), worker.plan["tag"]

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        if state is None:
            raise Exhausted
        stream, seed, tag = state
        event = inspection_pb2.ScanEvent(
            event_id=f"b{tag}-{i}"[-64:], device_id="DWS-BENCH-01", kind=inspection_pb2.SCAN_KIND_DWS,
            waybill_no=seed.waybill(i % seed.shipments), location="BENCH/line-1",
            measurements=inspection_pb2.Measurements(weight_g=800 + i % 400, length_mm=300, width_mm=200,
                                                     height_mm=120))
        await stream.send(event)
        return None

    async def teardown(self, state: Any) -> None:
        if state is not None:
            await state[0].close()


SCENARIO = Scan()
