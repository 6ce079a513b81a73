"""The blocklist's use cases: add, retire, get, list, import and dry-run screen, over two ports."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from gateway.core.blocklist import (
    DEFAULT_PAGE_SIZE,
    IMPORT_BATCH,
    MAX_AGENCY,
    MAX_LISTED_REJECTIONS,
    MAX_PAGE_SIZE,
    MAX_REASON,
    AddEntryCommand,
    BatchWritten,
    CheckedEntry,
    DryRun,
    EntryPage,
    ImportLine,
    ImportRejection,
    ImportSummary,
    ListQuery,
    StoredEntry,
    before_id,
    page_token,
    rejection,
    validate_entry,
)
from gateway.core.consignments import hit_record
from gateway.core.dry_run import BlindIndex, ScreenCommand, screen_consignment, validate_screen
from gateway.core.errors import FieldViolation, InvalidInput, NotFound, Violations
from gateway.core.model import Actor
from gateway.core.screening import Consignment, Entry, ScreeningResult

log = logging.getLogger(__name__)


class BlocklistRepositoryProtocol(Protocol):
    """Stores entries; every change bumps the list version and notifies in its own transaction."""

    async def add(self, entry: CheckedEntry, actor: Actor) -> StoredEntry: ...

    async def import_batch(self, entries: Sequence[CheckedEntry], actor: Actor) -> BatchWritten: ...

    async def retire(self, entry_id: int, reason: str, actor: Actor) -> StoredEntry: ...

    async def get(self, entry_id: int) -> StoredEntry | None: ...

    async def page(self, query: ListQuery, *, before: int | None, limit: int) -> list[StoredEntry]: ...

    async def current_version(self) -> int: ...


class LiveListProtocol(Protocol):
    """The in-memory list this process screens with, kept current through LISTEN/NOTIFY."""

    @property
    def version(self) -> int:
        """The list version the index was built from."""
        ...

    def screen(self, consignment: Consignment) -> ScreeningResult:
        """Screens against the current index."""
        ...

    def entry(self, entry_id: int) -> Entry | None:
        """An active entry by id (to explain a hit in the entry's own terms)."""
        ...

    async def catch_up(self) -> None:
        """Reads the changes since its version now, so this process sees its own writes at once."""
        ...

    def entries_added(self, entry_ids: list[int]) -> None:
        """Starts the background re-screening of stored parcels against these new entries."""
        ...


class _Tally:
    """Counts of an import in progress."""

    def __init__(self) -> None:
        self.added: list[int] = []
        self.duplicates = 0
        self.rejected: list[ImportRejection] = []
        self.rejected_count = 0
        self.version: int | None = None

    def reject(self, item: ImportRejection) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(item)


class BlocklistService:
    """The blocklist use cases: add, import, retire, get, list, and the dry-run screen."""

    def __init__(self, repo: BlocklistRepositoryProtocol, live: LiveListProtocol, *,
                 clock: Callable[[], datetime], batch_size: int = IMPORT_BATCH,
                 blind_index: BlindIndex | None = None) -> None:
        self._repo = repo
        self._live = live
        self._clock = clock
        self._batch_size = batch_size
        self._blind_index = blind_index

    async def add_entry(self, cmd: AddEntryCommand, actor: Actor) -> StoredEntry:
        """Validates and stores one entry; AlreadyExists if the same kind and value is active."""
        stored = await self._repo.add(validate_entry(cmd, now=self._clock()), actor)
        await self._publish([stored.id])
        return stored

    async def retire_entry(self, entry_id: int, reason: str, actor: Actor) -> StoredEntry:
        """Retires an entry, keeping who and why; WrongState if it already was."""
        v = Violations()
        v.number("id", entry_id, lo=1, hi=2**63 - 1)
        v.text("reason", reason, min_len=1, max_len=MAX_REASON, required=True, multiline=True)
        v.raise_if_any()
        stored = await self._repo.retire(entry_id, reason.strip(), actor)
        await self._publish([])
        return stored

    async def get_entry(self, entry_id: int) -> StoredEntry:
        """One entry; NotFound if there is none."""
        v = Violations()
        v.number("id", entry_id, lo=1, hi=2**63 - 1)
        v.raise_if_any()
        found = await self._repo.get(entry_id)
        if found is None:
            raise NotFound(f"no blocklist entry {entry_id}", field="id")
        return found

    async def list_entries(self, query: ListQuery) -> EntryPage:
        """A page of entries, newest first."""
        v = Violations()
        size = query.page_size or DEFAULT_PAGE_SIZE
        v.number("page_size", size, lo=1, hi=MAX_PAGE_SIZE)
        v.text("source_agency", query.agency, max_len=MAX_AGENCY)
        v.raise_if_any()
        found = await self._repo.page(query, before=before_id(query.page_token), limit=size + 1)
        more = len(found) > size
        entries = tuple(found[:size])
        return EntryPage(entries, page_token(entries[-1].id) if more else "")

    async def import_entries(self, source: AsyncIterable[AddEntryCommand | ImportLine],
                             actor: Actor) -> ImportSummary:
        """Adds many entries in batches (one transaction each); a bad entry is reported, never fatal."""
        tally, position = _Tally(), 0
        batch: list[CheckedEntry] = []
        try:
            async for item in source:
                position += 1
                line = item if isinstance(item, ImportLine) else ImportLine(position, item)
                checked = self._check_line(line, tally)
                if checked is not None:
                    batch.append(checked)
                if len(batch) >= self._batch_size:
                    await self._write(batch, actor, tally)
                    batch = []
            if batch:
                await self._write(batch, actor, tally)
        finally:
            await self._publish(tally.added)
        version = tally.version if tally.version is not None else await self._repo.current_version()
        return ImportSummary(len(tally.added), tally.duplicates, tuple(tally.rejected), tally.rejected_count,
                             version)

    def _check_line(self, line: ImportLine, tally: _Tally) -> CheckedEntry | None:
        if line.command is None:
            problem = line.problem or FieldViolation("", "could not be read")
            tally.reject(ImportRejection(line.position, problem.field, problem.description))
            return None
        try:
            return validate_entry(line.command, now=self._clock())
        except InvalidInput as error:
            tally.reject(rejection(line.position, error))
            return None

    async def _write(self, batch: list[CheckedEntry], actor: Actor, tally: _Tally) -> None:
        written = await self._repo.import_batch(batch, actor)
        tally.version = written.version
        for entry_id in written.ids:
            if entry_id is None:
                tally.duplicates += 1
            else:
                tally.added.append(entry_id)

    async def _publish(self, added: list[int]) -> None:
        # The write has committed: failing the call now would invite a retry that meets AlreadyExists. The
        # live list converges anyway through LISTEN/NOTIFY, so a failed catch-up is only logged.
        try:
            await self._live.catch_up()
        except Exception:
            log.warning("the live blocklist could not catch up after a write; NOTIFY will bring it", exc_info=True)
        if added:
            self._live.entries_added(added)

    def screen(self, cmd: ScreenCommand) -> DryRun:
        """Validates the consignment as acceptance would, then screens it against the live list; records nothing."""
        today = self._clock().date()
        hashes = validate_screen(cmd, today)
        if self._blind_index is None:
            raise RuntimeError("this BlocklistService was built without a blind index, so it cannot screen")
        consignment = screen_consignment(cmd, hashes, self._blind_index, today)
        # No await between reading the version and screening, so both describe the same index.
        version = self._live.version
        result = self._live.screen(consignment)
        hits = tuple(hit_record(h, self._live.entry(h.entry_id) if h.entry_id else None) for h in result.hits)
        return DryRun(result.outcome, hits, version)
