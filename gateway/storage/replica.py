"""Where Investigation's reads run: a streaming replica when DATABASE_REPLICA_URL is set, else the primary.

Only reads come here. A replica that cannot be reached (or that cancels a read for a recovery conflict) does
not fail the call: the read runs on the primary instead, and the replica is left alone for a few seconds
before it is tried again, so an outage costs one failed connect per RETRY_AFTER_S, not one per call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import asyncpg
from prometheus_client import Counter

from gateway.core.errors import StorageUnavailable
from gateway.core.investigation_records import AsOf
from gateway.storage.db import UNAVAILABLE_ERRORS, create_pool

log = logging.getLogger(__name__)
T = TypeVar("T")
Isolation = Literal["read_committed", "repeatable_read"]
RETRY_AFTER_S = 5.0
REPLICA_APPLICATION = "courier-gateway-replica"  # what the replica's pg_stat_activity calls our connections
READS = Counter("gateway_investigation_reads", "Investigation's reads by the server that served them: replica,"
                " primary (no replica set, or resting after a failure), or fallback (the replica failed this one)",
                ["served_by"])

# How current the server's data is, asked before the read so the read is at least that current. A primary has
# every write (now()). A standby that streams from its primary and has replayed all the WAL it received is
# current to within the streaming delay (now()); one that is behind (replay paused or slow, or the stream
# down) is current up to the commit time of the last transaction it replayed.
_FRESHNESS = """
SELECT pg_is_in_recovery() AS standby,
    CASE WHEN NOT pg_is_in_recovery() THEN now()
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
              AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN now()
         ELSE pg_last_xact_replay_timestamp() END AS as_of
"""
# A standby's refusals of one read, retried on the primary without resting the replica: 40001 is how a hot
# standby cancels a query whose rows replay must remove (a recovery conflict); an undefined table, column or
# function is a standby that has not yet replayed a migration the primary has.
_STANDBY_REFUSALS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError, asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.UndefinedColumnError, asyncpg.exceptions.UndefinedFunctionError)
_RETRY_ON_PRIMARY: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, StorageUnavailable, *_STANDBY_REFUSALS)


class ReadPool:
    """Runs read-only work on the replica, or on the primary when there is none or it fails."""

    def __init__(self, primary: asyncpg.Pool, replica: asyncpg.Pool | None = None, *,
                 retry_after_s: float = RETRY_AFTER_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._primary = primary
        self._replica = replica
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._resting_until = 0.0  # the replica is not tried again before this (clock's time)
        self._down = False  # said once per outage, not once per call

    async def read(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                   isolation: Isolation = "read_committed") -> tuple[T, AsOf]:
        """The work's result and how current it is, from one read-only transaction."""
        async def with_freshness(conn: asyncpg.Connection) -> tuple[T, AsOf]:
            row = await conn.fetchrow(_FRESHNESS)
            return await work(conn), AsOf(row["as_of"], bool(row["standby"]))

        return await self.run(with_freshness, isolation=isolation)

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                  isolation: Isolation = "read_committed") -> T:
        """The work's result from one read-only transaction, without asking how current it is."""
        if self._replica is not None and self._clock() >= self._resting_until:
            try:
                result = await _transaction(self._replica, work, isolation)
            except _RETRY_ON_PRIMARY as exc:
                self._failed(exc)
            else:
                if self._down:
                    self._down = False
                    log.info("DATABASE_REPLICA_URL: the replica answers again; Investigation reads go there")
                READS.labels("replica").inc()
                return result
            served_by = "fallback"
        else:
            served_by = "primary"
        result = await _transaction(self._primary, work, isolation)
        READS.labels(served_by).inc()
        return result

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, _STANDBY_REFUSALS):
            log.info("the replica refused a read (%s); it runs on the primary", type(exc).__name__)
            return
        self._resting_until = self._clock() + self._retry_after_s
        if not self._down:
            self._down = True
            log.warning("DATABASE_REPLICA_URL: the replica is unreachable (%s); Investigation reads go to the"
                        " primary, and the replica is tried again every %.0f s", type(exc).__name__,
                        self._retry_after_s)


async def _transaction(pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]],
                       isolation: Isolation) -> T:
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation=isolation):
        return await work(conn)


async def open_replica(dsn: str, **pool_options: Any) -> asyncpg.Pool:
    """The replica's pool; a replica down at start does not stop the gateway (reads use the primary until it
    answers), so then the pool starts empty and connects on first use."""
    try:
        return await create_pool(dsn, application_name=REPLICA_APPLICATION, **pool_options)
    except StorageUnavailable as exc:
        log.warning("DATABASE_REPLICA_URL: cannot reach the replica at start (%s); Investigation reads go to"
                    " the primary until it answers", exc)
        return await create_pool(dsn, application_name=REPLICA_APPLICATION, **{**pool_options, "min_size": 0})
