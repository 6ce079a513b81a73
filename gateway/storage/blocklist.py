"""The blocklist's entries and its version counter: every change bumps the version and notifies 'blocklist'.

All writers take the version row's lock first, so versions commit in order (a reader that has seen version
n has seen every change up to n) and no two writers can deadlock on entry rows.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag

from gateway.core.blocklist import SEAL_CONTEXTS, BatchWritten, CheckedEntry, EntrySource, ListQuery, StoredEntry
from gateway.core.errors import AlreadyExists, NotFound, WrongState
from gateway.core.model import Actor, Principal, Role
from gateway.core.screening import Action, Entry, EntryKind
from gateway.security.sealing import Sealer
from gateway.storage.db import translate_errors

# The bump and the notification in one statement; NOTIFY is delivered at commit, and not at all on rollback.
_BUMP = "UPDATE blocklist_version SET version = version + 1 RETURNING version, pg_notify('blocklist', version::text)"
_ACTIVE = "retired_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
_COLUMNS = (
    "id, kind, display_value, action, aliases, price_floor_fen, source_agency, source_case_no, source_legal_basis,"
    f" added_by_name, added_at, expires_at, retired_at, retired_by, retire_reason, version, ({_ACTIVE}) AS active,"
    " exclusions"
)
# Most entries have no aliases, and an empty text[] costs as much to decode as a full one; NULL costs nothing.
_LIVE_COLUMNS = ("id, kind, match_value, action, CASE WHEN aliases = '{}' THEN NULL ELSE aliases END,"
                 " price_floor_fen, display_value, CASE WHEN exclusions = '{}' THEN NULL ELSE exclusions END")
_INSERT_COLUMNS = (
    "kind, display_value, match_value, value_enc, dedup_key, action, aliases, price_floor_fen, source_agency,"
    " source_case_no, source_legal_basis, expires_at, exclusions, added_by, added_by_name, version"
)
_INSERT_ONE = (
    f"INSERT INTO blocklist_entries ({_INSERT_COLUMNS})"
    f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING {_COLUMNS}"
)
# Ids are drawn in the input CTE so each row learns its own id; a row missing from ins was a duplicate of an
# active entry (or of an earlier row of the same batch).
_INSERT_MANY = f"""
WITH input AS (
    SELECT nextval('blocklist_entries_id_seq') AS id, t.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bigint[],
                $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::text[]) WITH ORDINALITY
        AS t(kind, display_value, match_value, value_enc, dedup_key, action, aliases, price_floor_fen,
             source_agency, source_case_no, source_legal_basis, expires_at, exclusions, ord)
), ins AS (
    INSERT INTO blocklist_entries (id, {_INSERT_COLUMNS})
    SELECT id, kind, display_value, match_value, value_enc, dedup_key, action,
        ARRAY(SELECT jsonb_array_elements_text(aliases::jsonb)), price_floor_fen, source_agency, source_case_no,
        source_legal_basis, expires_at, ARRAY(SELECT jsonb_array_elements_text(exclusions::jsonb)), $14, $15, $16
    FROM input ORDER BY ord
    ON CONFLICT (kind, dedup_key) WHERE retired_at IS NULL DO NOTHING
    RETURNING id
)
SELECT ins.id FROM input LEFT JOIN ins ON ins.id = input.id ORDER BY input.ord
"""
# An expired entry still holds its key in the unique index until retired; a new entry with the same key
# retires it first, as the sweep would have.
_SWEEP_KEYS = (
    "UPDATE blocklist_entries SET retired_at = expires_at, retired_by = 'expiry', retire_reason = 'expired',"
    " version = $3 WHERE retired_at IS NULL AND expires_at <= now()"
    " AND (kind, dedup_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
_EXPIRED = "retired_at IS NULL AND expires_at <= now()"
log = logging.getLogger(__name__)


def stored_entry(row: asyncpg.Record) -> StoredEntry:
    """A row of blocklist_entries as the core's StoredEntry."""
    return StoredEntry(
        id=row["id"], kind=EntryKind(row["kind"]), display_value=row["display_value"], action=Action(row["action"]),
        source=EntrySource(row["source_agency"], row["source_case_no"], row["source_legal_basis"]),
        aliases=tuple(row["aliases"]), price_floor_fen=row["price_floor_fen"], added_by=row["added_by_name"],
        added_at=row["added_at"], expires_at=row["expires_at"], active=row["active"],
        retired_by=row["retired_by"] or "", retired_at=row["retired_at"], retire_reason=row["retire_reason"] or "",
        version=row["version"], exclusions=tuple(row["exclusions"]),
    )


class _NothingChanged(Exception):
    """Raised inside a transaction that changed nothing, to roll back its version bump (no empty NOTIFY)."""


_KINDS = {k.value: k for k in EntryKind}
_ACTIONS = {a.value: a for a in Action}


def live_entry(row: Sequence[Any]) -> Entry:
    """A row of _LIVE_COLUMNS as the screening core's Entry (numbers as their blind index, label masked)."""
    entry_id, kind, match_value, action, aliases, price_floor, display, exclusions = row
    return Entry(entry_id, _KINDS[kind], match_value, _ACTIONS[action], tuple(aliases) if aliases else (),
                 price_floor, display, exclusions=tuple(exclusions) if exclusions else ())


class BlocklistRepository:
    """Owns the SQL of blocklist_entries and blocklist_version."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer) -> None:
        self._pool = pool
        self._sealer = sealer
        # While past index keys are configured, a number entry's sealed value is read too, so that it also
        # matches under every key (an entry not yet re-keyed still hits a party keyed with the current key).
        self._live_columns = _LIVE_COLUMNS + (", value_enc" if sealer.rotating else "")

    def _live_entry(self, row: Sequence[Any]) -> Entry:
        """A live row as an Entry; during a rotation, a number also under its blind index by every index key."""
        entry = live_entry(row[:8])
        if len(row) < 9 or row[8] is None or entry.kind not in SEAL_CONTEXTS:
            return entry
        context = SEAL_CONTEXTS[entry.kind]
        try:
            number = self._sealer.open(row[8], context=context)
        except (InvalidTag, ValueError):
            log.warning("blocklist entry %d: its sealed value does not open with the configured keys", entry.id)
            return entry
        keys = [k.hex() for k in self._sealer.blind_indexes(context, number)]
        return replace(entry, aliases=tuple(k for k in keys if k != entry.value))

    def _sealed(self, entry: CheckedEntry) -> tuple[str, bytes | None, str]:
        """(match value, sealed value, dedup key): numbers become their blind index and a sealed blob."""
        context = entry.seal_context
        if context is None:
            return entry.canonical, None, entry.dedup_key
        key = self._sealer.blind_index(context, entry.canonical).hex()
        return key, self._sealer.seal(entry.canonical, context=context), key

    def _past_keys(self, entry: CheckedEntry) -> list[str]:
        """A number's dedup keys under the past index keys (none outside a rotation, or for other kinds)."""
        context = entry.seal_context
        if context is None or not self._sealer.rotating:
            return []
        return [k.hex() for k in self._sealer.blind_indexes(context, entry.canonical)[1:]]

    @staticmethod
    async def _listed_before(conn: asyncpg.Connection, kinds: list[str], keys: list[str]) -> set[tuple[str, str]]:
        """Which (kind, dedup key) pairs an active entry holds: during a rotation, the same number listed under a
        past index key by an entry not yet re-keyed is a duplicate too."""
        if not keys:
            return set()
        rows = await conn.fetch(
            f"SELECT kind, dedup_key FROM blocklist_entries WHERE {_ACTIVE}"
            " AND (kind, dedup_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))", kinds, keys)
        return {(r["kind"], r["dedup_key"]) for r in rows}

    def _row(self, e: CheckedEntry) -> tuple[Any, ...]:
        match_value, value_enc, dedup_key = self._sealed(e)
        return (e.kind.value, e.display, match_value, value_enc, dedup_key, e.action.value, e.aliases,
                e.price_floor_fen, e.source.agency, e.source.case_no, e.source.legal_basis, e.expires_at,
                e.exclusions)

    @translate_errors
    async def add(self, entry: CheckedEntry, actor: Actor) -> StoredEntry:
        """Stores one entry; AlreadyExists (field "value") if an active entry has the same kind and value."""
        row = self._row(entry)
        past = self._past_keys(entry)
        async with self._pool.acquire() as conn, conn.transaction():
            version = await conn.fetchval(_BUMP)
            if await self._listed_before(conn, [row[0]] * len(past), past):
                raise AlreadyExists(f"an active {entry.kind.value} entry has this value", field="value")
            await conn.execute(_SWEEP_KEYS, [row[0]], [row[4]], version)
            try:
                stored = await conn.fetchrow(_INSERT_ONE, *row, actor.principal.id, actor.principal.name, version)
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"an active {entry.kind.value} entry has this value", field="value") from None
        return stored_entry(stored)

    @translate_errors
    async def import_batch(self, entries: Sequence[CheckedEntry], actor: Actor) -> BatchWritten:
        """Stores a batch in one transaction; duplicates are skipped (id None). No change, no version bump."""
        past = [self._past_keys(e) for e in entries]
        ids: list[int | None] = [None] * len(entries)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(_BUMP)
                listed = await self._listed_before(conn, [e.kind.value for e, keys in zip(entries, past, strict=True)
                                                          for _ in keys], [k for keys in past for k in keys])
                fresh = [n for n, e in enumerate(entries) if not any((e.kind.value, k) in listed for k in past[n])]
                if not fresh:
                    raise _NothingChanged
                columns = [list(c) for c in zip(*(self._row(entries[n]) for n in fresh), strict=True)]
                columns[6] = [json.dumps(list(aliases)) for aliases in columns[6]]
                columns[12] = [json.dumps(list(exclusions)) for exclusions in columns[12]]
                await conn.execute(_SWEEP_KEYS, columns[0], columns[4], version)
                written = [r["id"] for r in await conn.fetch(
                    _INSERT_MANY, *columns, actor.principal.id, actor.principal.name, version)]
                for n, entry_id in zip(fresh, written, strict=True):
                    ids[n] = entry_id
                if all(i is None for i in ids):
                    raise _NothingChanged
        except _NothingChanged:
            return BatchWritten(ids, await self.current_version())
        return BatchWritten(ids, version)

    @translate_errors
    async def retire(self, entry_id: int, reason: str, actor: Actor) -> StoredEntry:
        """Retires an entry; NotFound for an unknown id, WrongState if it was already retired."""
        async with self._pool.acquire() as conn, conn.transaction():
            version = await conn.fetchval(_BUMP)
            row = await conn.fetchrow(
                "UPDATE blocklist_entries SET retired_at = now(), retired_by = $2, retire_reason = $3, version = $4"
                f" WHERE id = $1 AND retired_at IS NULL RETURNING {_COLUMNS}",
                entry_id, actor.principal.name, reason, version,
            )
            if row is None:
                retired = await conn.fetchval("SELECT retired_at FROM blocklist_entries WHERE id = $1", entry_id)
                if retired is None:
                    raise NotFound(f"no blocklist entry {entry_id}", field="id")
                raise WrongState(f"entry {entry_id} was already retired on {retired:%Y-%m-%d}", field="id")
        return stored_entry(row)

    @translate_errors
    async def retire_expired(self) -> int:
        """Turns every expired entry into a retirement (a change that bumps and notifies); returns how many."""
        if not await self._pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM blocklist_entries WHERE {_EXPIRED})"):
            return 0
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                version = await conn.fetchval(_BUMP)
                status = await conn.execute(
                    "UPDATE blocklist_entries SET retired_at = expires_at, retired_by = 'expiry',"
                    f" retire_reason = 'expired', version = $1 WHERE {_EXPIRED}", version)
                if status == "UPDATE 0":  # another process swept them first
                    raise _NothingChanged
        except _NothingChanged:
            return 0
        return int(status.split()[-1])

    @translate_errors
    async def get(self, entry_id: int) -> StoredEntry | None:
        """One entry by id."""
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM blocklist_entries WHERE id = $1", entry_id)
        return None if row is None else stored_entry(row)

    @translate_errors
    async def page(self, query: ListQuery, *, before: int | None, limit: int) -> list[StoredEntry]:
        """Up to limit entries, newest first, below the keyset position before."""
        where: list[str] = ["true"]
        args: list[Any] = []
        if query.kind is not None:
            args.append(query.kind.value)
            where.append(f"kind = ${len(args)}")
        if query.agency:
            args.append(query.agency)
            where.append(f"source_agency = ${len(args)}")
        if query.active is not None:
            where.append(_ACTIVE if query.active else f"NOT ({_ACTIVE})")
        if before is not None:
            args.append(before)
            where.append(f"id < ${len(args)}")
        args.append(limit)
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM blocklist_entries WHERE {' AND '.join(where)} ORDER BY id DESC"
            f" LIMIT ${len(args)}", *args)
        return [stored_entry(r) for r in rows]

    @translate_errors
    async def current_version(self) -> int:
        """The list's version."""
        version: int = await self._pool.fetchval("SELECT version FROM blocklist_version")
        return version

    @translate_errors
    async def load_active(self, *, fetch: int = 20_000) -> tuple[int, list[Entry]]:
        """The version and every active entry, read in one snapshot (streamed through a cursor)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            version: int = await conn.fetchval("SELECT version FROM blocklist_version")
            cursor = await conn.cursor(f"SELECT {self._live_columns} FROM blocklist_entries WHERE {_ACTIVE}")
            entries: list[Entry] = []
            # A million new objects would set off many full collections, each walking all of them: a third of
            # the load time. Nothing here makes cycles, so collection waits until the list is built.
            collecting = gc.isenabled()
            gc.disable()
            try:
                while rows := await cursor.fetch(fetch):
                    entries += map(self._live_entry if self._sealer.rotating else live_entry, rows)
            finally:
                if collecting:
                    gc.enable()
        return version, entries

    @translate_errors
    async def changes_since(self, version: int) -> tuple[int, list[Entry], list[int]]:
        """The version now, entries added since version, and ids retired or expired since (one snapshot)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            current: int = await conn.fetchval("SELECT version FROM blocklist_version")
            if current <= version:
                return current, [], []
            rows = await conn.fetch(
                f"SELECT {self._live_columns}, ({_ACTIVE}) AS active FROM blocklist_entries WHERE version > $1",
                version)
            expired = await conn.fetch(f"SELECT id FROM blocklist_entries WHERE {_EXPIRED}")
        added = [self._live_entry(tuple(r)[:-1]) for r in rows if r["active"]]
        retired = [r["id"] for r in rows if not r["active"]] + [r["id"] for r in expired]
        return current, added, list(dict.fromkeys(retired))

    @translate_errors
    async def expiring(self, after_version: int = 0) -> dict[int, datetime]:
        """When each active entry that has an expiry (and changed after a version) stops applying."""
        rows = await self._pool.fetch(
            "SELECT id, expires_at FROM blocklist_entries"
            " WHERE retired_at IS NULL AND expires_at IS NOT NULL AND version > $1", after_version)
        return {r["id"]: r["expires_at"] for r in rows}

    @translate_errors
    async def ensure_principal(self, name: str) -> Principal:
        """The named principal, created (admin, without a token) if new: the author of command-line imports."""
        row = await self._pool.fetchrow(
            "INSERT INTO principals (name, roles) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET name = EXCLUDED.name RETURNING id, roles", name, [Role.ADMIN.value])
        return Principal(row["id"], name, frozenset(Role(r) for r in row["roles"]))
