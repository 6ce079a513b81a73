"""One LISTEN connection on a channel that comes back by itself, for the processes' live views of the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from gateway.core.errors import DomainError
from gateway.storage.db import CONNECT_TIMEOUT_S

log = logging.getLogger(__name__)
# What a lost database raises while reconnecting or catching up; anything else is a bug and is not retried.
RETRIED = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError)


class Listener:
    """Listens on `channel`, calling `on_notify(payload)` per notification. A lost connection is opened again with
    back-off (0.2 s doubling to 5 s), then `on_reconnect` runs (what was notified while away: a catch-up); both
    are retried until they succeed or the listener is closed."""

    def __init__(self, dsn: str, channel: str, on_notify: Callable[[str], None],
                 on_reconnect: Callable[[], Awaitable[None]]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self.connection: asyncpg.Connection | None = None
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Opens the listening connection; raises if the database cannot be reached."""
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.add_listener(self._channel, self._notified)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._lost)
        self.connection = conn

    def check(self) -> None:
        """Reconnects if the connection closed without its termination being reported (a poller's safety net)."""
        if self.connection is not None and self.connection.is_closed():
            self._lost(self.connection)

    async def close(self) -> None:
        """Stops listening and reconnecting."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing: the connection may already be gone
                await self.connection.close()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._on_notify(payload)

    def _lost(self, conn: object) -> None:
        if not self._closing and (self._reconnecting is None or self._reconnecting.done()):
            log.warning("%s listener lost its connection; reconnecting", self._channel)
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                if self.connection is None or self.connection.is_closed():
                    await self.start()
                await self._on_reconnect()
                log.info("%s listener reconnected", self._channel)
                return
            except RETRIED as exc:
                log.warning("%s listener: %s; retrying in %.1f s", self._channel, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
