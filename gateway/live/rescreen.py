"""Re-screening: when entries are added, parcels still in custody are screened again and held on a hit."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.core.consignments import hit_record
from gateway.core.custody import CustodyService
from gateway.core.errors import DomainError
from gateway.core.model import Actor
from gateway.core.screening import BlocklistIndex, Entry, Outcome, ScreeningPolicy
from gateway.storage.shipments import undispatched_consignments

log = logging.getLogger(__name__)
# A parcel accepted by another process in the moment before it heard of the new entries is caught by a
# second, narrower pass this much later.
SECOND_PASS_DELAY_S = 2.0
SECOND_PASS_OVERLAP = timedelta(seconds=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Rescreener:
    """Screens parcels not yet dispatched against newly added entries only, and holds those that hit."""

    def __init__(self, pool: asyncpg.Pool, custody: CustodyService, actor: Actor,
                 policy: ScreeningPolicy | None = None) -> None:
        self._pool = pool
        self._custody = custody
        self._actor = actor
        self._policy = policy or ScreeningPolicy()
        self._tasks: set[asyncio.Task[None]] = set()
        self.held_total = 0

    def schedule(self, entries: list[Entry]) -> None:
        """Starts a background re-screen against these entries."""
        task = asyncio.get_running_loop().create_task(self.run(entries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, entries: list[Entry]) -> int:
        """Both passes; returns how many parcels were held."""
        index = BlocklistIndex.build(entries, self._policy)
        started = datetime.now(UTC)
        held = await self._scan(index, EPOCH)
        await asyncio.sleep(SECOND_PASS_DELAY_S)
        held += await self._scan(index, started - SECOND_PASS_OVERLAP)
        log.info("re-screened against %d new entries: %d parcels held", len(entries), held)
        return held

    async def _scan(self, index: BlocklistIndex, since: datetime) -> int:
        held = 0
        async for chunk in undispatched_consignments(self._pool, since):
            for waybill_no, c in chunk:
                hits = [h for h in index.screen(c).hits if h.action >= Outcome.HOLD]
                if hits and await self._hold(waybill_no, hits):
                    held += 1
        self.held_total += held
        return held

    async def _hold(self, waybill_no: str, hits: list) -> bool:  # type: ignore[type-arg]
        reason = "; ".join(h.explanation for h in hits)
        try:
            moved = await self._custody.hold(waybill_no, reason, [hit_record(h) for h in hits], "RESCREEN",
                                             self._actor)
        except DomainError as exc:  # the parcel moved on meanwhile (dispatched, already held): nothing to do
            log.info("re-screen could not hold %s: %s", waybill_no, exc.message)
            return False
        return moved is not None

    async def close(self) -> None:
        """Cancels re-screens still running."""
        for task in list(self._tasks):
            task.cancel()
