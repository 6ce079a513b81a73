"""The evidence log's background work in each gateway process: appending settled records, signing tree heads.

One process at a time appends (an advisory lock): it takes the rows every source table has settled since
its cursor, hashes their canonical records, and writes the leaves, the subtree hashes they complete and
the cursors in one transaction. Acceptance never waits for it; its batches keep the tree append cheap
however fast records arrive. Tree heads are signed at an interval when the tree grew, and on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import Gauge

from gateway.core.errors import DomainError
from gateway.core.evidence.merkle import needed_for_append, stored_nodes_completed
from gateway.core.evidence.records import record_leaf_hash
from gateway.core.evidence_service import EvidenceService
from gateway.storage.evidence import EvidenceRepository

log = logging.getLogger(__name__)
LOG_SIZE = Gauge("gateway_evidence_log_size", "Leaves in the evidence log, as this process last appended or read")
_LOCK = 0x65766964  # "evid": one appender at a time across every gateway process
BATCH = 5_000
# A round of at most this many records is hashed in the event loop (about 10 µs a record): handing it to a
# thread would cost more in wake-ups and GIL hand-overs (the loop can wait a whole switch interval, 5 ms, for the
# GIL back) than the hashing itself. A bigger round, a backlog after an outage say, goes to a thread.
INLINE_HASHES = 256


class EvidenceAppender:
    """Appends settled records to the log every interval (and signs heads every head interval)."""

    def __init__(self, pool: asyncpg.Pool, repo: EvidenceRepository, service: EvidenceService, *,
                 interval_s: float = 0.25, head_interval_s: float = 60.0) -> None:
        self._pool = pool
        self._repo = repo
        self._service = service
        self._interval = interval_s
        self._head_interval = head_interval_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Starts appending and signing in the background."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self._interval, self.append_pending)),
                       loop.create_task(self._every(self._head_interval, self._sign))]

    async def _every(self, seconds: float, work: object) -> None:
        while True:
            try:
                await work()  # type: ignore[operator]
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError) as exc:
                # The database went away (or the batch failed): nothing was appended, the cursors did not
                # move, and the next round takes the same records again.
                log.warning("evidence log: %s; trying again", exc or type(exc).__name__)
            except Exception:  # never let the appender die: a dead appender is a log that silently stops
                log.exception("evidence log: unexpected error; trying again")
            await asyncio.sleep(seconds)

    async def _sign(self) -> None:
        await self._service.sign_if_grown()

    async def append_pending(self) -> int:
        """Appends every settled record not yet in the log; returns how many leaves were added."""
        added = 0
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                # Another process is appending; the gauge still says how big the log is (an index's max).
                LOG_SIZE.set(await self._repo.tree_size(conn))
                return 0
            try:
                while batch := await self._repo.pending(conn, BATCH):
                    added += await self._append(conn, batch)
                if not added:  # from the first round on, not only after this process appended
                    LOG_SIZE.set(await self._repo.tree_size(conn))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        return added

    async def _append(self, conn: asyncpg.Connection, batch: list) -> int:  # type: ignore[type-arg]
        size = await self._repo.tree_size(conn)
        def leaves() -> list[bytes]:
            return [record_leaf_hash(r.record) for r in batch]

        hashes = leaves() if len(batch) <= INLINE_HASHES else await asyncio.to_thread(leaves)
        stored = await self._repo.stored(conn, needed_for_append(size, size + len(batch)))
        stored.update({(0, size + i): h for i, h in enumerate(hashes)})
        nodes = stored_nodes_completed(size, size + len(batch), stored)
        await self._repo.write(conn, size, batch, hashes, nodes)
        LOG_SIZE.set(size + len(batch))
        return len(batch)

    async def close(self) -> None:
        """Stops the background work."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
