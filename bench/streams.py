"""One open bidirectional stream shared by many calls: answers come back in order, so each resolves the
oldest waiting call. The echo ceiling and the scan scenario both drive their streams this way."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.scenario import CallFailed

# Given what was written and what came back: None when the answer is right, else the error code to count.
Check = Callable[[Any, Any], str | None]


@dataclass
class OrderedStream:
    """A stream, the calls waiting on it in write order, and the task reading its answers."""

    call: Any
    check: Check
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: collections.deque[tuple[Any, asyncio.Future[None]]] = field(default_factory=collections.deque)
    reader: asyncio.Task[None] | None = None

    def start(self) -> OrderedStream:
        """Starts reading answers; returns itself."""
        self.reader = asyncio.create_task(self._read_all())
        return self

    async def send(self, message: Any) -> None:
        """Writes one message and waits for its answer (raising CallFailed for a wrong one)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with self.lock:  # one write at a time, and the waiting order is the write order
            self.waiting.append((message, fut))
            await self.call.write(message)
        await fut

    async def close(self) -> None:
        """Half-closes and waits for the last answers (cancelling the call if they do not come)."""
        try:
            await self.call.done_writing()
            if self.reader is not None:
                await asyncio.wait_for(self.reader, 10)
        except (grpc.aio.AioRpcError, TimeoutError, asyncio.CancelledError):
            self.call.cancel()

    async def _read_all(self) -> None:
        try:
            while (answer := await self.call.read()) is not grpc.aio.EOF:
                sent, fut = self.waiting.popleft()
                if fut.done():
                    continue
                problem = self.check(sent, answer)
                if problem is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(CallFailed(problem))
        except grpc.aio.AioRpcError as exc:
            self._fail(CallFailed(exc.code().name))
        self._fail(CallFailed("STREAM_ENDED"))

    def _fail(self, exc: BaseException) -> None:
        while self.waiting:
            _, fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)
