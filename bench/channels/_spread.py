"""The mixin behind bench/channels/: a scenario's calls spread over CONNECTIONS channels of each load generator,
call i on connection i mod CONNECTIONS, to the plan's "target"."""

from __future__ import annotations

from typing import Any

import grpc

from bench.scenario import Worker
from courier.v1 import acceptance_pb2_grpc

CONNECTIONS = 8  # per load generator; each channel its own connection (channels otherwise share one)


class OverConnections:
    """Put before a scenario class whose state starts with its Acceptance stub: that stub becomes one of many."""

    async def setup(self, worker: Worker) -> Any:
        # The plan names the gateway measured (the harness's own channel to it stays unused).
        channels = [grpc.aio.insecure_channel(worker.plan["target"], options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(CONNECTIONS)]
        stubs = [acceptance_pb2_grpc.AcceptanceStub(c) for c in channels]  # type: ignore[no-untyped-call]
        inner = await super().setup(worker)  # type: ignore[misc]
        return stubs, tuple(inner[1:]), channels

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        stubs, rest, _ = state
        result: dict[str, float] | None = await super().call((stubs[i % len(stubs)], *rest), i)  # type: ignore[misc]
        return result

    async def teardown(self, state: Any) -> None:
        for channel in state[2]:
            await channel.close()
