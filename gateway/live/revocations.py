"""Instant revocation: one LISTEN connection per process that evicts a token from the door's cache at commit.

The database notifies 'token_revoked' whenever a token can lose its rights (migration 009): a revocation, a
changed expiry, a principal disabled or its roles changed. While the connection is down no notification can
arrive, so the cache is suspended (every call reads the database); on reconnecting it starts empty, which
catches up with whatever was revoked meanwhile. A heartbeat finds a connection that died silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import Gauge

from gateway.rpc.tokens import TokenCache

log = logging.getLogger(__name__)
CHANNEL = "token_revoked"
LISTENING = Gauge("gateway_token_revocations_listening", "1 while this process hears token revocations at once")
_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class RevocationListener:
    """Keeps a TokenCache honest: evicts on each notification, suspends it while not listening."""

    def __init__(self, cache: TokenCache, dsn: str, *, heartbeat_s: float = 2.0) -> None:
        self._cache = cache
        self._dsn = dsn
        self._heartbeat_s = heartbeat_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        cache.suspend()  # until the first LISTEN is in place

    async def start(self) -> None:
        """Starts listening (raising if the database cannot be reached), then keeps listening."""
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Stops listening; the cache stays suspended."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop()

    async def _connect(self) -> None:
        lost = asyncio.Event()  # this connection's own: a closed predecessor must not wake its successor
        conn = await asyncpg.connect(self._dsn, timeout=self._heartbeat_s * 2,
                                     server_settings={"application_name": "courier-gateway revocations"})
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self._lost = conn, lost
        self._cache.resume()  # after LISTEN: a revocation is either notified from now on, or read afresh
        LISTENING.set(1)

    async def _drop(self) -> None:
        self._cache.suspend()
        LISTENING.set(0)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it may be gone already
                await asyncio.wait_for(conn.close(), self._heartbeat_s)
            if not conn.is_closed():
                conn.terminate()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        kind, _, value = payload.partition(":")
        try:
            if kind == "t":
                self._cache.evict_token(bytes.fromhex(value))
                return
            if kind == "p":
                self._cache.evict_principal(int(value))
                return
        except ValueError:
            pass
        log.warning("token revocation with an unknown payload; forgetting every cached token")
        self._cache.clear()

    async def _supervise(self) -> None:
        delay = 0.2
        while not self._closing:
            if self._conn is not None:
                await self._watch(self._conn)
                log.warning("token revocation listener lost its connection; every call reads the database "
                            "until it is back")
                await self._drop()
            try:
                await self._connect()
                delay = 0.2
            except _LOST as exc:
                log.warning("token revocation listener: %s; retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Returns once the connection is lost, or stops answering the heartbeat."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._heartbeat_s)
                return
            try:
                await conn.fetchval("SELECT 1", timeout=self._heartbeat_s)
            except _LOST:
                return
