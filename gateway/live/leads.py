"""The lead feed's wake-up call: one LISTEN connection per process, shared by every watcher in it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from gateway.storage.db import CONNECT_TIMEOUT_S

log = logging.getLogger(__name__)


class LeadListener:
    """Wakes watchers when a lead commits (NOTIFY 'leads'); a watcher also wakes after its timeout, so a lost
    connection or a lead still waiting for an older transaction to end only delays it."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._event = asyncio.Event()
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Opens the listening connection."""
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.add_listener("leads", self._notified)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def _notified(self, conn: object = None, pid: int = 0, channel: str = "", payload: str = "") -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()  # every watcher waiting now wakes; later ones wait on the fresh event

    def _lost(self, conn: object) -> None:
        if not self._closing and (self._reconnecting is None or self._reconnecting.done()):
            log.warning("lead listener lost its connection; reconnecting")
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                await self.start()
                self._notified()  # leads may have committed while we were away: watchers look now
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lead listener: %s; retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def wait(self, timeout_s: float) -> None:
        """Returns when a lead may have been added, or after timeout_s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)

    async def close(self) -> None:
        """Stops listening."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing: the connection may already be gone
                await self._conn.close()
