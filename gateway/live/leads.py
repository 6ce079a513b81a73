"""The lead feed's wake-up call: one LISTEN connection per process, shared by every watcher in it."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.live.notify import Listener


class LeadListener:
    """Wakes watchers when a lead commits (NOTIFY 'leads'); a watcher also wakes after its timeout, so a lost
    connection or a lead still waiting for an older transaction to end only delays it."""

    def __init__(self, dsn: str) -> None:
        self._event = asyncio.Event()
        self._listener = Listener(dsn, "leads", self._wake, self._woken_after_reconnect)

    async def start(self) -> None:
        """Opens the listening connection."""
        await self._listener.start()

    def _wake(self, payload: str = "") -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()  # every watcher waiting now wakes; later ones wait on the fresh event

    async def _woken_after_reconnect(self) -> None:
        self._wake()  # leads may have committed while we were away: watchers look now

    async def wait(self, timeout_s: float) -> None:
        """Returns when a lead may have been added, or after timeout_s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)

    async def close(self) -> None:
        """Stops listening."""
        await self._listener.close()
