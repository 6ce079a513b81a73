"""Ceiling (b): messages per second over a few long-lived bidirectional echo streams."""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.echo import PAYLOAD, STREAM
from bench.scenario import CallFailed, Scenario, Worker

STREAMS_PER_WORKER = 2


@dataclass
class _Stream:
    """One open stream; answers come back in order, so each resolves the oldest waiting message."""

    call: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    reader: asyncio.Task[None] | None = None

    async def read_all(self) -> None:
        """Resolves one waiting message per echo until the stream ends."""
        try:
            while (message := await self.call.read()) is not grpc.aio.EOF:
                fut = self.waiting.popleft()
                if fut.done():
                    continue
                if len(message) == len(PAYLOAD):
                    fut.set_result(None)
                else:
                    fut.set_exception(CallFailed("BAD_ECHO"))
        except grpc.aio.AioRpcError as exc:
            self._fail(exc)
        self._fail(CallFailed("STREAM_ENDED"))

    def _fail(self, exc: BaseException) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


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
        streams = [_Stream(method()) for _ in range(STREAMS_PER_WORKER)]
        for stream in streams:
            stream.reader = asyncio.create_task(stream.read_all())
        return streams, itertools.count()

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        streams, turns = state
        stream: _Stream = streams[next(turns) % len(streams)]
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with stream.lock:  # one write at a time per stream, and the waiting order is the write order
            stream.waiting.append(fut)
            await stream.call.write(PAYLOAD)
        await fut
        return None

    async def teardown(self, state: Any) -> None:
        for stream in state[0]:
            try:
                await stream.call.done_writing()
                await asyncio.wait_for(stream.reader, 5)
            except (grpc.aio.AioRpcError, TimeoutError, asyncio.CancelledError):
                stream.call.cancel()


SCENARIO = BidiEcho()
