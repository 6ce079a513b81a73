"""Group commit: many concurrent requests' writes in one transaction, each answered only after the commit.

A lane takes items from concurrent callers. When a writer slot is free it starts at once (no waiting for
a batch to fill); while the slots are busy, new items queue and go together in the next transaction.
So at low load a call costs one transaction as before, and under load the cost of a commit (and of each
round trip) is shared by everyone who arrived during the previous one. Durability is not traded: a
caller's future resolves only after COMMIT returned.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg
from prometheus_client import Histogram

from gateway.core.errors import StorageUnavailable
from gateway.storage.db import is_unavailable

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH_SIZES = Histogram("gateway_group_commit_batch_size", "Items per group-commit batch (a transaction, or one"
                        " statement that writes or looks up many), by lane (its writer's name)", ["lane"],
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))

# Writes one batch on a connection inside an open transaction; returns one result per item, in order.
BatchWriter = Callable[[asyncpg.Connection, Sequence[Item]], Awaitable[list[Result]]]


class GroupCommitLane(Generic[Item, Result]):
    """One kind of write (say, acceptances), batched across concurrent callers."""

    def __init__(self, pool: asyncpg.Pool, write: BatchWriter[Item, Result], *, max_batch: int,
                 writers: int = 2, single_statement: bool = False) -> None:
        self._pool = pool
        # A writer that issues exactly one statement needs no BEGIN/COMMIT round trips: PostgreSQL commits
        # a lone statement atomically, and answers only after the commit is durable.
        self._single = single_statement
        self._write = write
        self._max = max_batch
        self._writers = writers
        self._running = 0
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sizes = BATCH_SIZES.labels(getattr(write, "__qualname__", "lane").lstrip("_"))

    async def submit(self, item: Item) -> Result:
        """Queues the item and waits until the transaction that wrote it has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running < self._writers:
            self._running += 1
            # A context of its own: the writer serves many calls, so it must not log as the one that started it.
            task = asyncio.get_running_loop().create_task(self._drain(), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A caller that gives up cancels only its own future: the write runs in the lane's task, shared with the
        # others, and settling skips a future already done (no shield needed, nor the task one would create).
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max:]
                self._sizes.observe(len(batch))
                try:
                    await self._commit(batch)
                except Exception as error:  # a bug in the lane itself: its waiters must not wait forever
                    log.exception("group commit failed unexpectedly")
                    for _, future in batch:
                        _settle_error(future, error)
        finally:
            self._running -= 1

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._transaction([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch writer returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:  # the gateway is stopping: nobody is left waiting for an answer
            for _, future in batch:
                _settle_error(future, StorageUnavailable("the gateway stopped before the write committed; retry"))
            raise
        except Exception as error:
            if is_unavailable(error) or len(batch) == 1:
                # The database is gone (or the one item failed): every waiter gets the error, none an answer.
                # Whether a lost COMMIT took effect is unknown; callers retry with their idempotency keys.
                for _, future in batch:
                    _settle_error(future, error)
                return
            for one in batch:  # the batch failed as a whole: find out whose item it was
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _transaction(self, items: list[Item]) -> list[Result]:
        async with self._pool.acquire() as conn:
            if self._single:
                return await self._write(conn, items)
            async with conn.transaction():
                return await self._write(conn, items)


def _settle_error(future: asyncio.Future[Result], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
