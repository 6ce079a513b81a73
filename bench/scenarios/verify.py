"""verify: VerifySender for the demo person; the gateway asks the authority simulator and records the call."""

from __future__ import annotations

from typing import Any

from bench.scenario import CallFailed, Scenario, Target, Worker
from bench.scenarios._requests import verify_request
from courier.v1 import acceptance_pb2, acceptance_pb2_grpc


class Verify(Scenario):
    """One VerifySender per call, answered VERIFIED (authority MATCH)."""

    name = "verify"
    ceiling = "unary_echo"
    floor = "floor_verify"
    order = 10
    # Issue 14: CPU per call against the floor (a bare handler doing the same work), not against a bare echo,
    # which no handler that does the work can come near.
    targets = (Target("floor_cpu_ratio", "<=", 1.3),)
    description = "VerifySender (authority simulator MATCH, one INSERT)"

    async def setup(self, worker: Worker) -> Any:
        stub = acceptance_pb2_grpc.AcceptanceStub(worker.channel)  # type: ignore[no-untyped-call]
        return stub, verify_request(f"T-BENCH-{worker.index:02d}"), worker

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        stub, request, worker = state
        answer = await stub.VerifySender(request, metadata=worker.metadata, timeout=worker.timeout_s)
        if answer.verdict != acceptance_pb2.VERDICT_VERIFIED:
            raise CallFailed("VERDICT_" + acceptance_pb2.Verdict.Name(answer.verdict))
        return None


SCENARIO = Verify()
