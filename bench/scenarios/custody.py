"""custody: StoreParcel of seeded ACCEPTED parcels, each waybill once (a second store would be refused)."""

from __future__ import annotations

from typing import Any

from bench.scenario import BenchContext, CallFailed, Exhausted, Scenario, Worker
from bench.scenarios._requests import store_request
from bench.seed import SeedPlan
from courier.v1 import common_pb2, custody_pb2_grpc


class Custody(Scenario):
    """ACCEPTED -> STORED for one seeded parcel per call: a locked read, an update and an event append."""

    name = "custody"
    ceiling = "unary_echo"
    order = 30
    needs_seed = True
    description = "StoreParcel of a seeded ACCEPTED parcel"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        if ctx.seed is None or ctx.seed.accepted_count == 0:
            raise RuntimeError("custody needs seeded ACCEPTED parcels: run with a seed")
        return {"prefix": ctx.seed.prefix, "shipments": ctx.seed.shipments}

    async def setup(self, worker: Worker) -> Any:
        seed = SeedPlan(worker.plan["prefix"], worker.plan["shipments"])
        stub = custody_pb2_grpc.CustodyStub(worker.channel)  # type: ignore[no-untyped-call]
        return stub, seed, f"SC-BENCH-{worker.index:02d}", worker

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        stub, seed, device, worker = state
        if i >= seed.accepted_count:
            raise Exhausted
        answer = await stub.StoreParcel(store_request(seed.accepted_waybill(i), device), metadata=worker.metadata,
                                        timeout=worker.timeout_s)
        if answer.state != common_pb2.PARCEL_STATE_STORED:
            raise CallFailed("STATE_" + common_pb2.ParcelState.Name(answer.state))
        return None


SCENARIO = Custody()
