"""Ceiling (b): messages per second over a few long-lived bidirectional echo streams."""

from __future__ import annotations

import itertools
from typing import Any

from bench.echo import PAYLOAD, STREAM
from bench.scenario import Scenario, Worker
from bench.streams import OrderedStream

STREAMS_PER_WORKER = 2


def _echoed(sent: bytes, answer: bytes) -> str | None:
    return None if len(answer) == len(sent) else "BAD_ECHO"


class BidiEcho(Scenario):
    """Each call is one message written to a stream and its echo read back; streams are shared by the calls."""

    name = "bidi_echo"
    server = "echo"
    unit = "messages"
    open_loop = False
    order = 20
    description = f"bare grpc.aio bidi echo, 100 B, {STREAMS_PER_WORKER} streams per load generator"

    async def setup(self, worker: Worker) -> Any:
        assert worker.channel is not None
        method = worker.channel.stream_stream(STREAM)
        return [OrderedStream(method(), _echoed).start() for _ in range(STREAMS_PER_WORKER)], itertools.count()

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        streams, turns = state
        await streams[next(turns) % len(streams)].send(PAYLOAD)
        return None

    async def teardown(self, state: Any) -> None:
        for stream in state[0]:
            await stream.close()


SCENARIO = BidiEcho()
