"""Keeps the months ahead partitioned: at the gateway's start and then daily, `partitions ensure` in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from gateway.storage.partitions import ensure

log = logging.getLogger(__name__)
DAY_S = 86400.0


class PartitionUpkeep:
    """Creates this month's and the next months' partitions now and every interval (one process at a time)."""

    def __init__(self, pool: asyncpg.Pool, months_ahead: int, *, interval_s: float = DAY_S) -> None:
        self._pool = pool
        self._ahead = months_ahead
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[str]:
        """One round; returns the partitions it created."""
        async with self._pool.acquire() as conn:
            created = await ensure(conn, self._ahead)
        if created:
            log.info("created partitions: %s", ", ".join(created))
        return created

    async def start(self) -> None:
        """Runs a round now (a failure is logged: the months ahead already exist), then one every interval."""
        await self._round()
        self._task = asyncio.get_running_loop().create_task(self._every())

    async def _round(self) -> None:
        try:
            await self.run_once()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("partitions ensure failed: %s; trying again in %.0f s", exc or type(exc).__name__,
                        self._interval)

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._round()

    async def close(self) -> None:
        """Stops the background rounds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
