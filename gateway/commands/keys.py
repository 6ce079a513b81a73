"""`python -m gateway keys new|status|rotate`: rotating the data-encryption and blind-index keys without downtime.

`keys new` prints a fresh key (base64 of 32 bytes). `keys status` counts, for every sealed column and blind
index, how many values are under each key id (ciphertexts name their key; a blind index is recomputed from its
sealed value under each configured index key), so an operator knows when a past key can be removed. `keys
rotate` walks every sealed column and blind index in batches and rewrites what is under a past key with the
current one: each batch is one transaction over rows it locked (rows a gateway holds are retried at the end,
never waited for inside a batch), only key columns are written, and a value already under the current key is
left alone, so it is safe to run while gateways serve, to interrupt and to run again. It repeats its walk until
a walk finds nothing left to re-key (new shipments can copy a not-yet-re-keyed verification's index while it
runs), then prints what each table had re-keyed and which key ids remain.

Both read DATABASE_URL and the keys (GATEWAY_DATA_KEY, GATEWAY_INDEX_KEY, GATEWAY_PAST_DATA_KEYS,
GATEWAY_PAST_INDEX_KEYS) from the environment, or make run's .var/env. Exit status: 0 done, 1 values left that no
configured key opens or a database failure, 2 a bad setting.

A verification's evidence record holds its blind indexes as logged; re-keying one keeps the logged values in
logged_document_bidx / logged_phone_bidx (migration 010) in the same transaction, so the log still verifies.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gateway.security.sealing import Sealer, UnknownKeyError, generate_key, sealer_of
from gateway.settings import ENVIRONMENT, Settings, SettingsError, load_settings

BATCH = 500
MAX_WALKS = 5
UNKNOWN = "unknown"  # a blind index no configured key gives, or one whose sealed value no key opens
_NUMBER_CONTEXTS = {"DOCUMENT_NUMBER": "document", "PHONE": "phone", "ORGANISATION_CODE": "organisation"}


@dataclass(frozen=True)
class Sealed:
    """A sealed column and its context."""

    column: str
    context: str


@dataclass(frozen=True)
class Indexed:
    """A blind-index column, its context, and the column (of the select) holding the sealed value it indexes."""

    column: str
    context: str
    source: str
    logged: str = ""  # the column keeping the value the evidence log recorded, if the row is evidence
    hex: bool = False  # stored as hex text (the blocklist) rather than bytes


@dataclass(frozen=True)
class Walked:
    """One table's rows as the walk reads them: its key, the select of a batch, and its key columns."""

    table: str
    key: str
    key_type: str
    select: str  # selects the key and every column named below; "{where}" and "{lock}" are filled in
    sealed: tuple[Sealed, ...]
    indexed: tuple[Indexed, ...]
    where: str = "true"
    context_of: Callable[[Mapping[str, Any]], str] | None = None  # a row's context when it varies (blocklist)


def _blocklist_context(row: Mapping[str, Any]) -> str:
    return _NUMBER_CONTEXTS[row["kind"]]


TABLES = (
    Walked("sender_verifications", "v.id", "bigint",
           "SELECT v.id AS key, v.document_enc, v.phone_enc, v.legacy_number_enc, v.document_bidx, v.phone_bidx"
           " FROM sender_verifications v WHERE {where} {lock}",
           (Sealed("document_enc", "document"), Sealed("phone_enc", "phone"), Sealed("legacy_number_enc", "document")),
           (Indexed("document_bidx", "document", "document_enc", logged="logged_document_bidx"),
            Indexed("phone_bidx", "phone", "phone_enc", logged="logged_phone_bidx"))),
    Walked("contract_customers", "c.id", "uuid",
           "SELECT c.id AS key, c.credit_code_enc, c.responsible_enc, c.phone_enc, c.credit_code_bidx,"
           " c.responsible_bidx, c.phone_bidx FROM contract_customers c WHERE {where} {lock}",
           (Sealed("credit_code_enc", "organisation"), Sealed("responsible_enc", "document"),
            Sealed("phone_enc", "phone")),
           (Indexed("credit_code_bidx", "organisation", "credit_code_enc"),
            Indexed("responsible_bidx", "document", "responsible_enc"), Indexed("phone_bidx", "phone", "phone_enc"))),
    # A shipment keeps no sealed document number: its sender's index is recomputed from the verification's (or
    # the contract customer's responsible person's) sealed number.
    Walked("shipments", "s.id", "uuid",
           "SELECT s.id AS key, s.sender_phone_enc, s.recipient_phone_enc, s.sender_phone_bidx,"
           " s.recipient_phone_bidx, s.sender_document_bidx,"
           " COALESCE(v.document_enc, c.responsible_enc) AS sender_document_source"
           " FROM shipments s LEFT JOIN sender_verifications v ON v.id = s.sender_verification_id"
           " LEFT JOIN contract_customers c ON c.id = s.contract_customer_id WHERE {where} {lock}",
           (Sealed("sender_phone_enc", "phone"), Sealed("recipient_phone_enc", "phone")),
           (Indexed("sender_phone_bidx", "phone", "sender_phone_enc"),
            Indexed("recipient_phone_bidx", "phone", "recipient_phone_enc"),
            Indexed("sender_document_bidx", "document", "sender_document_source"))),
    Walked("blocklist_entries", "b.id", "bigint",
           "SELECT b.id AS key, b.kind, b.retired_at IS NULL AS active, b.value_enc, b.match_value, b.dedup_key"
           " FROM blocklist_entries b WHERE {where} {lock}",
           (Sealed("value_enc", ""),),
           (Indexed("match_value", "", "value_enc", hex=True), Indexed("dedup_key", "", "value_enc", hex=True)),
           where="b.value_enc IS NOT NULL", context_of=_blocklist_context),
)
_ALIAS = {t.table: t.key.split(".")[0] for t in TABLES}


@dataclass
class TableReport:
    """What a walk found in one table: rows seen and re-keyed, values per key id, rows left and why."""

    rows: int = 0
    rekeyed: int = 0
    data: Counter[str] = field(default_factory=Counter)  # data key id -> sealed values
    index: Counter[str] = field(default_factory=Counter)  # index key id -> blind indexes
    busy: list[Any] = field(default_factory=list)  # keys of rows a gateway held when the batch ran
    problems: list[str] = field(default_factory=list)


class _Unopenable(Exception):
    """A sealed value no configured key opens."""


def _open(sealer: Sealer, blob: bytes, context: str) -> str:
    try:
        return sealer.open(blob, context=context)
    except (InvalidTag, UnknownKeyError, ValueError):
        raise _Unopenable from None


def _stored(value: Any, spec: Indexed) -> bytes | None:
    if value is None:
        return None
    return bytes.fromhex(value) if spec.hex else bytes(value)


def examine(sealer: Sealer, spec: Walked, row: Mapping[str, Any], report: TableReport) -> dict[str, Any]:
    """Counts a row's values per key id and answers the columns to change to put it under the current keys."""
    context_of = spec.context_of
    changes: dict[str, Any] = {}
    opened: dict[str, str | None] = {}
    for sealed in spec.sealed:
        blob = row[sealed.column]
        if blob is None:
            continue
        blob = bytes(blob)
        context = context_of(row) if context_of else sealed.context
        report.data[Sealer.key_id_of(blob)] += 1
        try:
            opened[sealed.column] = _open(sealer, blob, context)
        except _Unopenable:
            opened[sealed.column] = None
            report.problems.append(f"{spec.table} {row['key']}: {sealed.column} opens with no configured key")
            continue
        if not sealer.is_current(blob):
            changes[sealed.column] = sealer.seal(opened[sealed.column] or "", context=context)
    for indexed in spec.indexed:
        stored = _stored(row[indexed.column], indexed)
        if stored is None:
            continue
        context = context_of(row) if context_of else indexed.context
        if indexed.source not in opened:
            blob = row[indexed.source]
            try:
                opened[indexed.source] = _open(sealer, bytes(blob), context) if blob is not None else None
            except _Unopenable:
                opened[indexed.source] = None
        plaintext = opened[indexed.source]
        if plaintext is None:
            report.index[UNKNOWN] += 1
            continue
        found = sealer.index_key_id_of(stored, context, plaintext)
        report.index[found or UNKNOWN] += 1
        if found is None:
            report.problems.append(f"{spec.table} {row['key']}: {indexed.column} is no configured key's index of"
                                   " its sealed value (left as it is)")
        elif found != sealer.index_key_id:
            new = sealer.blind_index(context, plaintext)
            changes[indexed.column] = new.hex() if indexed.hex else new
    return changes


def _update_sql(spec: Walked, columns: Sequence[str]) -> str:
    logged = {i.column: i.logged for i in spec.indexed if i.logged}
    sets = [f"{c} = ${n + 2}" for n, c in enumerate(columns)]
    # The values the evidence log recorded are kept the first time a row's index changes (SET reads the old row).
    sets += [f"{logged[c]} = COALESCE({logged[c]}, {c})" for c in columns if c in logged]
    return f"UPDATE {spec.table} SET {', '.join(sets)} WHERE id = $1::{spec.key_type}"


# A sender's recent recipients follow the shipments they came from: (old sender, old recipient) -> (new, new).
_MOVE_RECIPIENTS = """
WITH m AS (SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[]) AS m(os, orc, ns, nrc)),
moved AS (DELETE FROM sender_recipients r USING m WHERE r.sender_bidx = m.os AND r.recipient_bidx = m.orc
          AND (m.os, m.orc) IS DISTINCT FROM (m.ns, m.nrc) RETURNING m.ns, r.day, m.nrc)
INSERT INTO sender_recipients (sender_bidx, day, recipient_bidx) SELECT DISTINCT ns, day, nrc FROM moved
ON CONFLICT DO NOTHING
"""


class Walker:
    """Walks the tables in batches; with write, re-keys what is under a past key."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer, *, write: bool, batch: int = BATCH,
                 advance: Callable[[str, int], None] = lambda table, n: None) -> None:
        self._pool = pool
        self._sealer = sealer
        self._write = write
        self._batch = batch
        self._advance = advance

    async def count(self, spec: Walked) -> int:
        """How many rows the walk of a table reads."""
        alias = _ALIAS[spec.table]
        found: int = await self._pool.fetchval(f"SELECT count(*) FROM {spec.table} {alias} WHERE {spec.where}")
        return found

    async def walk(self, spec: Walked) -> TableReport:
        """One walk of a table, batch by batch (each one transaction); rows held by others are retried at the end."""
        report = TableReport()
        after: Any = None
        while True:
            async with self._pool.acquire() as conn:
                keys = await self._next_keys(conn, spec, after)
                if not keys:
                    break
                await self._batch_of(conn, spec, keys, report, wait=False)
            after = keys[-1]
            self._advance(spec.table, len(keys))
        busy, report.busy = report.busy, []
        if busy:
            async with self._pool.acquire() as conn:
                await self._batch_of(conn, spec, busy, report, wait=True)
        return report

    async def _next_keys(self, conn: asyncpg.Connection, spec: Walked, after: Any) -> list[Any]:
        cond = f"{spec.where} AND {spec.key} > $1::{spec.key_type}" if after is not None else spec.where
        alias = _ALIAS[spec.table]
        args = [after] if after is not None else []
        rows = await conn.fetch(f"SELECT {spec.key} AS key FROM {spec.table} {alias} WHERE {cond}"
                                f" ORDER BY {spec.key} LIMIT {int(self._batch)}", *args)
        return [r["key"] for r in rows]

    async def _batch_of(self, conn: asyncpg.Connection, spec: Walked, keys: Sequence[Any], report: TableReport,
                        *, wait: bool) -> None:
        alias = _ALIAS[spec.table]
        lock = "" if not self._write else f"FOR UPDATE OF {alias}" + ("" if wait else " SKIP LOCKED")
        select = spec.select.format(where=f"{spec.key} = ANY($1::{spec.key_type}[])", lock=lock)
        async with conn.transaction():
            rows = await conn.fetch(select, list(keys))
            if self._write and not wait:
                locked = {r["key"] for r in rows}
                report.busy += [k for k in keys if k not in locked]
            report.rows += len(rows)
            updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            moves: list[tuple[bytes, bytes, bytes, bytes]] = []
            for row in rows:
                changes = examine(self._sealer, spec, row, report)
                if not changes or not self._write:
                    continue
                if spec.table == "blocklist_entries" and not await self._may_rekey(conn, row, changes, report):
                    continue
                columns = tuple(sorted(changes))
                updates.setdefault(columns, []).append((row["key"], *(changes[c] for c in columns)))
                report.rekeyed += 1
                if spec.table == "shipments" and row["sender_document_bidx"] is not None:
                    moves.append((bytes(row["sender_document_bidx"]), bytes(row["recipient_phone_bidx"]),
                                  changes.get("sender_document_bidx", bytes(row["sender_document_bidx"])),
                                  changes.get("recipient_phone_bidx", bytes(row["recipient_phone_bidx"]))))
            for columns, values in updates.items():
                await conn.executemany(_update_sql(spec, columns), values)
            if moves:
                await conn.execute(_MOVE_RECIPIENTS, *(list(c) for c in zip(*moves, strict=True)))

    @staticmethod
    async def _may_rekey(conn: asyncpg.Connection, row: Mapping[str, Any], changes: Mapping[str, Any],
                         report: TableReport) -> bool:
        """An active entry re-keyed onto the key of another active entry (the same number added again under the
        new key while this one was not yet re-keyed) would break the list's uniqueness: left, and reported."""
        if not row["active"] or "dedup_key" not in changes:
            return True
        other = await conn.fetchval(
            "SELECT id FROM blocklist_entries WHERE kind = $1 AND dedup_key = $2 AND retired_at IS NULL AND id <> $3",
            row["kind"], changes["dedup_key"], row["key"])
        if other is None:
            return True
        report.problems.append(f"blocklist entry {row['key']} lists the same number as entry {other}: retire one of"
                               " them, then run keys rotate again")
        return False


@dataclass
class Outcome:
    """A status or rotation over every table."""

    tables: dict[str, TableReport]
    current: tuple[str, str]  # the current data and index key ids
    walks: int = 1

    def totals(self) -> tuple[Counter[str], Counter[str]]:
        """Values per data key id and per index key id, over every table."""
        data: Counter[str] = Counter()
        index: Counter[str] = Counter()
        for report in self.tables.values():
            data.update(report.data)
            index.update(report.index)
        return data, index

    def as_json(self, sealer: Sealer) -> dict[str, Any]:
        """The outcome as JSON: key ids, each table's counts, and problems."""
        data, index = self.totals()
        return {"current": {"data": sealer.data_key_id, "index": sealer.index_key_id},
                "past": {"data": list(sealer.data_key_ids[1:]), "index": list(sealer.index_key_ids[1:])},
                "data": dict(data), "index": dict(index), "walks": self.walks,
                "tables": {name: {"rows": r.rows, "rekeyed": r.rekeyed, "data": dict(r.data), "index": dict(r.index),
                                  "problems": r.problems} for name, r in self.tables.items()}}

    @property
    def left(self) -> int:
        """How many values are under anything but the current keys, after the last walk."""
        return sum(sum(n for k, n in r.data.items() if k != self.current[0])
                   + sum(n for k, n in r.index.items() if k != self.current[1]) for r in self.tables.values())


async def run_walks(pool: asyncpg.Pool, sealer: Sealer, *, write: bool, console: Console,
                    batch: int = BATCH) -> Outcome:
    """Status (write False: one read-only walk) or rotation (walks until one finds nothing to re-key)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    rekeyed: Counter[str] = Counter()
    walks = 0
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}
        walker = Walker(pool, sealer, write=write, batch=batch,
                        advance=lambda table, n: progress.advance(tasks[table], n))
        while True:
            walks += 1
            verb = "re-keying" if write else "counting"
            suffix = f" (walk {walks})" if walks > 1 else ""
            for spec in TABLES:
                tasks[spec.table] = progress.add_task(f"{verb} {spec.table}{suffix}", total=await walker.count(spec))
            tables = {}
            for spec in TABLES:
                tables[spec.table] = await walker.walk(spec)
                progress.update(tasks[spec.table], completed=tables[spec.table].rows)
            changed = sum(r.rekeyed for r in tables.values())
            rekeyed.update({name: r.rekeyed for name, r in tables.items()})
            if not write or changed == 0 or walks >= MAX_WALKS:
                break
    for name, report in tables.items():
        report.rekeyed = rekeyed[name]
    return Outcome(tables, (sealer.data_key_id, sealer.index_key_id), walks)


def _label(kid: str, current: str, past: Sequence[str]) -> str:
    if kid == current:
        return f"{kid} (current)"
    if kid in past:
        return f"{kid} (past)"
    named = {"v1": "v1 (sealed before key ids)", UNKNOWN: "unknown (no configured key)"}
    return named.get(kid, f"{kid} (not configured)")


def show(outcome: Outcome, sealer: Sealer, console: Console, *, rotated: bool) -> None:
    """Per table: rows, rows re-keyed, values per key id; then the totals and what is left."""
    table = Table("table", "rows", *(["re-keyed"] if rotated else []), "sealed values by data key",
                  "blind indexes by index key")
    for name, r in outcome.tables.items():
        data = ", ".join(f"{_label(k, sealer.data_key_id, sealer.data_key_ids)}: {n}"
                         for k, n in sorted(r.data.items()))
        index = ", ".join(f"{_label(k, sealer.index_key_id, sealer.index_key_ids)}: {n}"
                          for k, n in sorted(r.index.items()))
        table.add_row(name, str(r.rows), *([str(r.rekeyed)] if rotated else []), data or "-", index or "-")
    console.print(table)
    for r in outcome.tables.values():
        for problem in r.problems:
            console.print(f"[red]problem:[/] {problem}")
    left = outcome.left
    if left:
        console.print(f"{left} values are still under other keys than the current ones: keep the past keys"
                      + (" and run keys rotate" if not rotated else " and run keys rotate again"))
    else:
        console.print(f"every value is under the current keys (data {sealer.data_key_id}, index"
                      f" {sealer.index_key_id}): GATEWAY_PAST_DATA_KEYS and GATEWAY_PAST_INDEX_KEYS can be removed")


async def _run(settings: Any, *, write: bool, console: Console, out: Console, as_json: bool, batch: int) -> int:
    from gateway.storage.db import create_pool

    sealer = sealer_of(settings)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        outcome = await run_walks(pool, sealer, write=write, console=console, batch=batch)
    finally:
        await pool.close()
    if as_json:
        out.print_json(json.dumps(outcome.as_json(sealer)))
    else:
        show(outcome, sealer, out, rotated=write)
    unopenable = any("opens with no configured key" in p for r in outcome.tables.values() for p in r.problems)
    return 1 if unopenable else 0


def run(action: str, *, as_json: bool = False, batch: int = BATCH, environ: Mapping[str, str] | None = None) -> int:
    """`keys status` or `keys rotate` with the environment's settings (and make run's .var/env)."""
    from gateway.commands.dev import dev_env
    from gateway.core.errors import DomainError

    err = Console(stderr=True)
    try:
        settings = load_settings(dev_env(environ))
    except SettingsError as error:
        err.print(f"gateway: bad setting: {error}")
        return 2
    try:
        return asyncio.run(_run(settings, write=action == "rotate", console=err, out=Console(), as_json=as_json,
                                batch=batch))
    except (DomainError, OSError, asyncpg.PostgresError) as error:
        err.print(f"gateway: keys {action} stopped: {error}; batches already written are kept, run it again")
        return 1


def run_new(signing_name: str | None = None) -> int:
    """Prints a fresh key, base64 of 32 random bytes; with a signing name, an Ed25519 evidence-signing key as the
    settings take it, and its verifier key (what goes into EVIDENCE_PAST_KEYS once it is rotated out)."""
    if signing_name is None:
        print(base64.b64encode(generate_key()).decode())
        return 0
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from gateway.core.evidence.checkpoint import verifier_key

    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    print(f"EVIDENCE_SIGNING_KEY={base64.b64encode(raw).decode()}")
    print(f"EVIDENCE_KEY_NAME={signing_name}")
    print(f"# verifier key: {verifier_key(signing_name, private.public_key())}")
    return 0


def run_verifier_key(environ: Mapping[str, str] | None = None) -> int:
    """Prints the verifier key of the configured EVIDENCE_SIGNING_KEY (and EVIDENCE_KEY_NAME): before a signing key
    is replaced, this line is added to EVIDENCE_PAST_KEYS so heads it signed keep verifying."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.commands.dev import dev_env
    from gateway.core.evidence.checkpoint import verifier_key

    err = Console(stderr=True)
    env = dev_env(environ)
    try:
        values = {var: ENVIRONMENT[var][1](var, env[var]) for var in ("EVIDENCE_SIGNING_KEY", "EVIDENCE_KEY_NAME")
                  if env.get(var)}
    except SettingsError as error:
        err.print(f"gateway: bad setting: {error}")
        return 2
    if "EVIDENCE_SIGNING_KEY" not in values:
        err.print("gateway: EVIDENCE_SIGNING_KEY: required but not set")
        return 2
    private = Ed25519PrivateKey.from_private_bytes(values["EVIDENCE_SIGNING_KEY"])
    print(verifier_key(values.get("EVIDENCE_KEY_NAME", Settings.evidence_key_name), private.public_key()))
    return 0


def register(sub: Any) -> None:
    """Adds the `keys` command group: new, status, rotate."""
    keys = sub.add_parser("keys", help="rotate the data-encryption and blind-index keys without downtime")
    actions = keys.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="print a fresh key (base64 of 32 bytes)")
    new.add_argument("--signing", metavar="KEY_NAME", default=None,
                     help="an Ed25519 evidence-signing key of this name instead, with its verifier key")
    new.set_defaults(func=lambda args: run_new(args.signing))
    verifier = actions.add_parser("verifier-key", help="print the verifier key of the configured"
                                  " EVIDENCE_SIGNING_KEY (to keep in EVIDENCE_PAST_KEYS when it is replaced)")
    verifier.set_defaults(func=lambda args: run_verifier_key())
    for name, what in (("status", "count the values under each key id"),
                       ("rotate", "re-key every value still under a past key, in batches, while gateways serve")):
        action = actions.add_parser(name, help=what)
        action.add_argument("--json", action="store_true", help="print the counts as JSON")
        action.add_argument("--batch", type=int, default=BATCH, help=f"rows per transaction (default {BATCH})")
        action.set_defaults(func=lambda args: run(args.action, as_json=args.json, batch=args.batch))

