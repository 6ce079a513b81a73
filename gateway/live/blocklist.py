"""The live in-memory blocklist that every screening in this process reads."""

from __future__ import annotations

import asyncio
import gc
import heapq
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from prometheus_client import Gauge

from gateway.core.consignments import strongest
from gateway.core.screening import (
    BlocklistIndex,
    Consignment,
    Entry,
    Outcome,
    ScreeningPolicy,
    ScreeningResult,
)
from gateway.live.notify import RETRIED, Listener

log = logging.getLogger(__name__)
VERSION = Gauge("gateway_blocklist_version", "The blocklist version this process screens against")
ENTRIES = Gauge("gateway_blocklist_entries", "Active entries in this process's index")
_EMPTY = ScreeningResult(outcome=Outcome.PASS, hits=())


class BlocklistSource(Protocol):
    """Where the live list reads from (BlocklistRepository)."""

    async def load_active(self) -> tuple[int, list[Entry]]: ...

    async def changes_since(self, version: int) -> tuple[int, list[Entry], list[int]]: ...

    async def current_version(self) -> int: ...

    async def retire_expired(self) -> int: ...

    async def expiring(self, after_version: int = 0) -> dict[int, datetime]: ...


class LiveBlocklist:
    """The active list in memory, kept current through LISTEN/NOTIFY; screening never waits on the database.

    A large base index is built at start; later additions go to a small delta index rebuilt on each
    change, and retirements to a set that filters hits. When the delta grows, the base is rebuilt in a
    thread and swapped in. A process that lost its listening connection reconnects and catches up from
    the version it last saw; a poll every few seconds is the safety net for anything else missed.
    """

    def __init__(self, source: BlocklistSource, dsn: str, *, policy: ScreeningPolicy | None = None,
                 poll_s: float = 5.0, compact_at: int = 20_000) -> None:
        self._source = source
        self._dsn = dsn
        self._policy = policy or ScreeningPolicy()
        self._poll_s = poll_s
        self._compact_at = compact_at
        self.version = 0
        self._base = BlocklistIndex.build((), self._policy)
        self._base_entries: dict[int, Entry] = {}
        self._delta_entries: dict[int, Entry] = {}
        self._delta = self._base
        self._retired: set[int] = set()
        self._lock = asyncio.Lock()
        self._listener = Listener(dsn, "blocklist", self._notified, self.catch_up)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        # (expiry as a POSIX time, entry id), soonest first: an entry stops hitting at its expiry, not at the
        # next sweep.
        self._expiring: list[tuple[float, int]] = []
        self._next_expiry = math.inf
        # Called whenever entries were added (by this process or another): re-screening wakes up.
        self.on_added: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._base_entries) + len(self._delta_entries) - len(self._retired)

    async def start(self) -> None:
        """Loads the list, builds the index (in a thread), and starts listening."""
        version, entries = await self._source.load_active()
        self._note_expiries(await self._source.expiring())
        self._base_entries = {e.id: e for e in entries}
        self._base = await asyncio.to_thread(_build_quietly, entries, self._policy)
        self._set_version(version)
        await self._listener.start()
        self._spawn(self._poll())
        log.info("blocklist loaded: %d entries, version %d", len(entries), version)

    async def close(self) -> None:
        """Stops listening and polling."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await self._listener.close()

    def screen(self, c: Consignment) -> ScreeningResult:
        """Screens against base and delta, leaving out retired entries and those past their expiry."""
        if self._next_expiry <= time.time():
            self._expire_due()
        hits = [h for h in self._base.screen(c).hits if h.entry_id not in self._retired]
        if self._delta_entries:
            hits += [h for h in self._delta.screen(c).hits if h.entry_id not in self._retired]
        if not hits:
            return _EMPTY
        return ScreeningResult(outcome=strongest(hits), hits=tuple(hits))

    async def catch_up(self) -> None:
        """Applies every change after the version this process has (after its own write, or a notification)."""
        async with self._lock:
            seen = self.version
            version, added, retired = await self._source.changes_since(seen)
            if version <= seen:
                return
            self._note_expiries(await self._source.expiring(seen))
            self._apply(added, retired)
            self._set_version(version)
        if added and self.on_added is not None:
            self.on_added()

    def _apply(self, added: Iterable[Entry], retired: Iterable[int]) -> None:
        for entry in added:
            self._delta_entries[entry.id] = entry
        for entry_id in retired:
            if self._delta_entries.pop(entry_id, None) is not None:
                self._retired.discard(entry_id)  # it may have been dropped at its expiry already
            elif entry_id in self._base_entries:
                self._retired.add(entry_id)
        self._delta = BlocklistIndex.build(self._delta_entries.values(), self._policy)
        if len(self._delta_entries) + len(self._retired) > self._compact_at:
            self._spawn(self._compact())

    async def _compact(self) -> None:
        async with self._lock:
            merged = {k: v for k, v in self._base_entries.items() if k not in self._retired}
            merged.update(self._delta_entries)
            base = await asyncio.to_thread(_build_quietly, list(merged.values()), self._policy)
            self._base, self._base_entries = base, merged
            self._delta_entries, self._retired = {}, set()
            self._delta = BlocklistIndex.build((), self._policy)
            ENTRIES.set(len(self))

    def entries_added(self, entry_ids: list[int]) -> None:
        """After this process added entries (and caught up): re-screen parcels still in custody."""
        if entry_ids and self.on_added is not None:
            self.on_added()

    def _note_expiries(self, expiries: dict[int, datetime]) -> None:
        for entry_id, at in expiries.items():
            heapq.heappush(self._expiring, (at.timestamp(), entry_id))
        self._next_expiry = self._expiring[0][0] if self._expiring else math.inf

    def _expire_due(self) -> None:
        """Drops entries whose expiry has passed, and asks the database to retire them (which notifies all)."""
        now = time.time()
        while self._expiring and self._expiring[0][0] <= now:
            _, entry_id = heapq.heappop(self._expiring)
            if entry_id in self._base_entries or entry_id in self._delta_entries:
                self._retired.add(entry_id)
        self._next_expiry = self._expiring[0][0] if self._expiring else math.inf
        if not self._closing:
            self._spawn(self._sweep())

    async def _sweep(self) -> None:
        try:
            await self._source.retire_expired()
        except RETRIED as exc:
            log.warning("blocklist expiry sweep failed: %s", exc)

    async def _catch_up_quietly(self) -> None:
        """catch_up for a notification: a failure (the database went away) is left to the poll and the
        reconnect, which catch up from the same version."""
        try:
            await self.catch_up()
        except RETRIED as exc:
            log.warning("blocklist catch-up postponed: %s", exc)

    def entry(self, entry_id: int) -> Entry | None:
        """An active entry by id."""
        if entry_id in self._retired:
            return None
        return self._delta_entries.get(entry_id) or self._base_entries.get(entry_id)

    def _set_version(self, version: int) -> None:
        self.version = version
        VERSION.set(version)
        ENTRIES.set(len(self))

    def _notified(self, payload: str) -> None:
        if int(payload) > self.version:
            self._spawn(self._catch_up_quietly())

    async def _poll(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._poll_s)
            try:
                # Expiry is a matter of time, not of a change: sweeping it into a retirement notifies
                # every process. Several processes sweeping at once is safe.
                await self._source.retire_expired()
                if await self._source.current_version() > self.version:
                    await self.catch_up()
            except RETRIED as exc:
                log.warning("blocklist poll failed: %s", type(exc).__name__)
            self._listener.check()  # the safety net for a lost connection whose termination went unreported

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _build_quietly(entries: Iterable[Entry], policy: ScreeningPolicy) -> BlocklistIndex:
    """Builds an index with the cyclic garbage collector paused, then freezes what survived.

    A million-entry build allocates millions of objects that all live on: the collector found
    nothing to free yet cost about a quarter of the build, and each later full collection over them
    stalled the event loop for a second or more. gc.freeze() moves them out of its sight for good.
    """
    gc.disable()
    try:
        index = BlocklistIndex.build(entries, policy)
    finally:
        gc.enable()
    gc.freeze()
    return index
