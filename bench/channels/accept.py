"""accept over CONNECTIONS connections per load generator, call i on connection i mod CONNECTIONS; the plan's
"target" says where they go."""

from __future__ import annotations

from typing import Any

import grpc

from bench.scenario import Worker
from bench.scenarios.accept import Accept
from courier.v1 import acceptance_pb2_grpc

CONNECTIONS = 8  # per load generator; each channel its own connection (channels otherwise share one)


class AcceptOverConnections(Accept):
    """The accept scenario, its calls spread over several connections of each load generator."""

    description = f"VerifySender + AcceptParcel (fresh waybill each), {CONNECTIONS} connections per load generator"

    async def setup(self, worker: Worker) -> Any:
        # The plan names the gateway measured (the harness's own channel to it stays unused).
        channels = [grpc.aio.insecure_channel(worker.plan["target"], options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(CONNECTIONS)]
        stubs = [acceptance_pb2_grpc.AcceptanceStub(c) for c in channels]  # type: ignore[no-untyped-call]
        _, verify, terminal, _ = await super().setup(worker)
        return stubs, verify, terminal, worker, channels

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        stubs, verify, terminal, worker, _ = state
        return await super().call((stubs[i % len(stubs)], verify, terminal, worker), i)

    async def teardown(self, state: Any) -> None:
        for channel in state[4]:
            await channel.close()


SCENARIO = AcceptOverConnections()
