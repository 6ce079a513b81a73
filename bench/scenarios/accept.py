"""accept: VerifySender then AcceptParcel of a fresh waybill; the pair is one call, AcceptParcel also alone."""

from __future__ import annotations

import time
from typing import Any

from bench.scenario import BenchContext, CallFailed, Scenario, Target, Worker
from bench.scenarios._requests import accept_request, verify_request
from courier.v1 import acceptance_pb2, acceptance_pb2_grpc


class Accept(Scenario):
    """The counter's whole path: verify the sender, then accept an inspected parcel from them."""

    name = "accept"
    ceiling = "unary_echo"
    floor = "floor_accept"
    order = 20
    targets = (Target("floor_cpu_ratio", "<=", 1.3), Target("open.p99_ms", "<=", 25.0))
    description = "VerifySender + AcceptParcel (fresh waybill each)"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        return {"prefix": f"BA{ctx.run_tag}-"}

    async def setup(self, worker: Worker) -> Any:
        terminal = f"T-BENCH-{worker.index:02d}"
        stub = acceptance_pb2_grpc.AcceptanceStub(worker.channel)  # type: ignore[no-untyped-call]
        return stub, verify_request(terminal), terminal, worker

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        stub, verify, terminal, worker = state
        t0 = time.perf_counter()
        verdict = await stub.VerifySender(verify, metadata=worker.metadata, timeout=worker.timeout_s)
        if verdict.verdict != acceptance_pb2.VERDICT_VERIFIED:
            raise CallFailed("VERDICT_" + acceptance_pb2.Verdict.Name(verdict.verdict))
        t1 = time.perf_counter()
        request = accept_request(verdict.sender_ref, f"{worker.plan['prefix']}{i:010d}", i, terminal)
        answer = await stub.AcceptParcel(request, metadata=worker.metadata, timeout=worker.timeout_s)
        if answer.decision != acceptance_pb2.ACCEPT_DECISION_ACCEPTED:
            raise CallFailed("DECISION_" + acceptance_pb2.AcceptDecision.Name(answer.decision))
        return {"VerifySender": t1 - t0, "AcceptParcel": time.perf_counter() - t1}


SCENARIO = Accept()
