"""Re-screening: parcels still in custody are screened again against entries added since, and held on a hit.

However an entry arrives (AddEntry, ImportEntries, the command-line import, or while no gateway ran), its
list version is above `rescreen_progress.version`. A process that hears of a change (NOTIFY, its own
write, the poll) takes an advisory lock, screens the undispatched parcels against the entries added since,
and moves the progress forward: one process does each piece of work, and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.core.consignments import hit_record
from gateway.core.custody import CustodyService
from gateway.core.errors import DomainError
from gateway.core.model import Actor
from gateway.core.screening import BlocklistIndex, Entry, Hit, Outcome, ScreeningPolicy
from gateway.live.blocklist import BlocklistSource
from gateway.storage.shipments import undispatched_consignments

log = logging.getLogger(__name__)
# A parcel accepted by another process in the moment before it heard of the new entries is caught by a
# second, narrower pass this much later.
SECOND_PASS_DELAY_S = 2.0
SECOND_PASS_OVERLAP = timedelta(seconds=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Entries screened against the parcels in custody per index: bounds the memory of a bulk import's re-screening.
RESCREEN_CHUNK = 50_000
_LOCK = 0x72736372  # "rscr": one re-screening at a time across every gateway process
_BEHIND = "SELECT p.version < v.version FROM rescreen_progress p, blocklist_version v"


class Rescreener:
    """Screens parcels not yet dispatched against newly added entries only, and holds those that hit."""

    def __init__(self, pool: asyncpg.Pool, source: BlocklistSource, custody: CustodyService, actor: Actor,
                 *, policy: ScreeningPolicy | None = None, poll_s: float = 5.0) -> None:
        self._pool = pool
        self._source = source
        self._custody = custody
        self._actor = actor
        self._policy = policy or ScreeningPolicy()
        self._poll_s = poll_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._wanted = asyncio.Event()
        self.held_total = 0

    def start(self) -> None:
        """Runs pending work now (entries added while no gateway ran), then on every wake and poll."""
        self._spawn(self._loop())
        self.wake()

    def wake(self) -> None:
        """Something was added: look for pending work soon (wakes coalesce)."""
        self._wanted.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._poll_s)
            self._wanted.clear()
            try:
                await self.run_pending()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError) as exc:
                # The progress row did not move: the next round redoes the same work.
                log.warning("re-screening postponed: %s", exc or type(exc).__name__)
                self._wanted.set()  # and soon, not only at the next poll
                await asyncio.sleep(min(self._poll_s, 1.0))
            except Exception:  # never let re-screening die silently
                log.exception("re-screening: unexpected error; trying again")

    async def run_pending(self) -> int:
        """Screens against every entry added since the recorded progress; returns how many parcels it held."""
        if not await self._pool.fetchval(_BEHIND):
            return 0
        held = 0
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return 0  # another process is at it, and loops until it has caught up
            try:
                while True:
                    done = await conn.fetchval("SELECT version FROM rescreen_progress")
                    current, added, _ = await self._source.changes_since(done)
                    if current <= done:
                        break
                    if added:
                        held += await self._screen(added)
                    await conn.execute("UPDATE rescreen_progress SET version = greatest(version, $1)", current)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        return held

    async def _screen(self, entries: list[Entry]) -> int:
        """Screens the parcels in custody against the entries, a chunk at a time so that a bulk import of a
        million entries never holds a second full index in memory beside the live one."""
        held = 0
        for at in range(0, len(entries), RESCREEN_CHUNK):
            chunk = entries[at:at + RESCREEN_CHUNK]
            index = await asyncio.to_thread(BlocklistIndex.build, chunk, self._policy)
            by_id = {e.id: e for e in chunk}
            started = datetime.now(UTC)
            held += await self._scan(index, by_id, EPOCH)
            self._spawn(self._second_pass(index, by_id, started - SECOND_PASS_OVERLAP))
        log.info("re-screened against %d new entries: %d parcels held", len(entries), held)
        return held

    async def _second_pass(self, index: BlocklistIndex, by_id: dict[int, Entry], since: datetime) -> None:
        await asyncio.sleep(SECOND_PASS_DELAY_S)
        try:
            await self._scan(index, by_id, since)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError) as exc:
            log.warning("re-screening's second pass failed: %s", exc)

    async def _scan(self, index: BlocklistIndex, by_id: dict[int, Entry], since: datetime) -> int:
        held = 0
        async for chunk in undispatched_consignments(self._pool, since):
            for waybill_no, c, decided in chunk:
                # An entry the parcel already hit (at acceptance, or a hold since) was decided on: a reviewer who
                # released it is not overruled by the same entry coming round again.
                hits = [h for h in index.screen(c).hits if h.action >= Outcome.HOLD and h.entry_id not in decided]
                if hits and await self._hold(waybill_no, hits, by_id):
                    held += 1
        self.held_total += held
        return held

    async def _hold(self, waybill_no: str, hits: list[Hit], by_id: dict[int, Entry]) -> bool:
        reason = "; ".join(h.explanation for h in hits)
        records = [hit_record(h, by_id.get(h.entry_id) if h.entry_id else None) for h in hits]
        try:
            moved = await self._custody.hold(waybill_no, reason, records, "RESCREEN", self._actor)
        except DomainError as exc:  # the parcel moved on meanwhile (dispatched, already held): nothing to do
            log.info("re-screen could not hold %s: %s", waybill_no, exc.message)
            return False
        return moved is not None

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancels re-screens still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
