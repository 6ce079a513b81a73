"""Ceiling (a): a bare grpc.aio unary echo of 100 bytes, on uvloop, in its own process."""

from __future__ import annotations

from typing import Any

from bench.echo import PAYLOAD, UNARY
from bench.scenario import CallFailed, Scenario, Worker


class UnaryEcho(Scenario):
    """The most unary calls per second grpc.aio serves here: the ceiling of every unary scenario."""

    name = "unary_echo"
    server = "echo"
    open_loop = False
    order = 10
    description = "bare grpc.aio unary echo, 100 B"

    async def setup(self, worker: Worker) -> Any:
        assert worker.channel is not None
        return worker.channel.unary_unary(UNARY), worker.timeout_s

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        method, timeout = state
        if len(await method(PAYLOAD, timeout=timeout)) != len(PAYLOAD):
            raise CallFailed("BAD_ECHO")
        return None


SCENARIO = UnaryEcho()
