"""The time partitions of the events (migration 012): months created ahead, listed, archived past the retention, and
archives verified against the evidence log.

An archive is one gzip JSONL file: a manifest line, then one line per record with its leaf index, source, key, leaf
hash and canonical record (core/evidence/records.py). A partition is dropped only after its file, read back from
disk, matched the evidence log's leaf hash of every row and held exactly the partition's rows.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from gateway.core.evidence import merkle
from gateway.core.evidence.records import record_leaf_hash
from gateway.core.retention import add_months, archivable, month_start
from gateway.storage.evidence import SOURCES, EvidenceRepository, record_of
from gateway.storage.layout import partitioned

# Per partitioned table: its evidence source, the alias its source query uses, and the column of a row's own time.
_TABLES = {"shipment_events": ("E", "e", "recorded_at"), "audit_records": ("A", "a", "at")}
_CHUNK = 5000
FORMAT = "courier-partition-archive/1"
_ENSURE_LOCK = 0x70617274  # "part"


class ArchiveError(Exception):
    """A partition that cannot be archived (yet), or an archive file that cannot be read; the message says why."""


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned table, with its range (None for the default partition) and its size."""

    table: str
    name: str
    lower: datetime | None
    upper: datetime | None
    rows: int
    size_bytes: int
    newest: datetime | None

    def state(self, now: datetime, retention_months: int) -> str:
        """default, future, current, kept (inside the retention) or due (may be archived)."""
        if self.lower is None or self.upper is None:
            return "default"
        if self.lower > now:
            return "future"
        if self.upper > now:
            return "current"
        return "due" if archivable(self.upper, self.newest, now, retention_months) else "kept"


@dataclass
class ArchiveReport:
    """What verifying an archive found: records, how many matched their leaves and were proven, what failed."""

    path: str
    table: str = ""
    partition: str = ""
    records: int = 0
    matched: int = 0
    proven: int = 0
    tree_size: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every record matched its leaf and was proven in a signed tree head."""
        return not self.failures and self.matched == self.records == self.proven


async def ensure(conn: asyncpg.Connection, months_ahead: int, now: datetime | None = None) -> list[str]:
    """Creates this month's partition and the next months_ahead months' of every partitioned table; returns the new."""
    first = month_start(now or datetime.now(UTC))
    created = []
    async with conn.transaction():  # gateways starting together: one creates, the others then find the months
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _ENSURE_LOCK)
        for p in partitioned():
            for n in range(months_ahead + 1):
                month = add_months(first, n)
                if await conn.fetchval("SELECT courier_ensure_month($1, $2)", p.table, month):
                    created.append(f"{p.table}_p{month:%Y%m}")
    return created


_LIST = """
SELECT parent.relname AS table, child.relname AS name, pg_get_expr(child.relpartbound, child.oid) AS bound,
    pg_total_relation_size(child.oid) AS size_bytes
FROM pg_inherits i JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid
WHERE parent.relname = ANY($1::text[]) ORDER BY parent.relname, child.relname
"""


def _bounds(bound: str) -> tuple[datetime | None, datetime | None]:
    if bound == "DEFAULT":
        return None, None
    lo, hi = (part.split("'")[1] for part in bound.split(" TO "))
    return datetime.fromisoformat(lo), datetime.fromisoformat(hi)


async def list_partitions(conn: asyncpg.Connection) -> list[Partition]:
    """Every partition of the partitioned tables, oldest first, with exact row counts."""
    found = []
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL TIME ZONE 'UTC'")  # the bounds come back printed in the session's zone
        for r in await conn.fetch(_LIST, list(_TABLES)):
            column = _TABLES[r["table"]][2]
            rows, newest = await conn.fetchrow(f'SELECT count(*), max({column}) FROM "{r["name"]}"')
            lower, upper = _bounds(r["bound"])
            found.append(Partition(r["table"], r["name"], lower, upper, rows, r["size_bytes"], newest))
    return sorted(found, key=lambda p: (p.table, p.lower is None, p.lower or datetime.min.replace(tzinfo=UTC)))


def _manifest(p: Partition, rows: int) -> dict[str, Any]:
    assert p.lower is not None and p.upper is not None
    return {"format": FORMAT, "table": p.table, "partition": p.name, "source": _TABLES[p.table][0],
            "from": p.lower.isoformat(), "to": p.upper.isoformat(), "rows": rows,
            "archived_at": datetime.now(UTC).isoformat()}


async def _export_rows(conn: asyncpg.Connection, p: Partition) -> list[dict[str, Any]]:
    """The partition's rows as archive lines, each with its leaf; ArchiveError for a row not yet in the log."""
    code, alias, _ = _TABLES[p.table]
    source = SOURCES[code]
    key_column = next(x.partitioned_by for x in partitioned() if x.table == p.table)
    lines: list[dict[str, Any]] = []
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        cursor = await conn.cursor(
            f"{source.select} WHERE {alias}.{key_column} >= $1 AND {alias}.{key_column} < $2 ORDER BY {source.key}",
            p.lower, p.upper)
        while rows := await cursor.fetch(_CHUNK):
            keys = [r["key"] for r in rows]
            leaves = {r["source_key"]: r for r in await conn.fetch(
                "SELECT source_key, leaf_index, leaf_hash FROM evidence_leaves WHERE source = $1"
                " AND source_key = ANY($2::text[])", code, keys)}
            for r in rows:
                leaf = leaves.get(r["key"])
                if leaf is None:
                    raise ArchiveError(f"{p.name}: row {r['key']} is not in the evidence log yet; archive once the "
                                       "evidence appender (any running gateway) has taken it")
                lines.append({"leaf_index": leaf["leaf_index"], "source": code, "key": r["key"],
                              "leaf_hash": bytes(leaf["leaf_hash"]).hex(), "record": record_of(code, r)})
    return lines


def read_archive(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An archive's manifest and lines; ArchiveError if it is not one."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            manifest = json.loads(f.readline())
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable archive ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path}: not a {FORMAT} file")
    return manifest, lines


async def verify_archive(conn: asyncpg.Connection, path: Path) -> ArchiveReport:
    """Re-computes each archived record's leaf hash and checks it against the log's leaf and a signed head."""
    manifest, lines = await asyncio.to_thread(read_archive, path)
    report = ArchiveReport(str(path), manifest.get("table", ""), manifest.get("partition", ""), len(lines))
    if manifest.get("rows") != len(lines):
        report.failures.append(f"the manifest says {manifest.get('rows')} rows, the file holds {len(lines)}")
    head = await _latest_head(conn)
    report.tree_size = head[0] if head else 0
    for chunk in _chunks(lines, _CHUNK):
        await _verify_chunk(conn, chunk, head, report)
    return report


async def _latest_head(conn: asyncpg.Connection) -> tuple[int, bytes] | None:
    row = await conn.fetchrow("SELECT tree_size, root_hash FROM evidence_heads ORDER BY tree_size DESC LIMIT 1")
    return None if row is None else (row["tree_size"], bytes(row["root_hash"]))


def _chunks(items: Sequence[dict[str, Any]], n: int) -> Iterator[Sequence[dict[str, Any]]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _index(line: Any) -> int:
    index = line.get("leaf_index") if isinstance(line, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else -1


async def _verify_chunk(conn: asyncpg.Connection, chunk: Sequence[dict[str, Any]], head: tuple[int, bytes] | None,
                        report: ArchiveReport) -> None:
    indexes = [_index(line) for line in chunk]
    stored_leaves = {r["leaf_index"]: r for r in await conn.fetch(
        "SELECT leaf_index, source, source_key, leaf_hash FROM evidence_leaves WHERE leaf_index = ANY($1::bigint[])",
        indexes)}
    provable = [i for i in indexes if head and 0 <= i < head[0]]
    ranges = [r for i in provable for r in merkle.needed_for_inclusion(i, head[0])] if head else []
    stored = await EvidenceRepository.stored(conn, ranges) if ranges else {}
    for index, line in zip(indexes, chunk, strict=True):
        label = f"leaf {index} ({line.get('source')}:{line.get('key')})"
        try:
            computed = record_leaf_hash(line["record"])
        except Exception as exc:  # a record the canonical form cannot hold is a failed record, not a crash
            report.failures.append(f"{label}: record is not canonical JSON ({exc})")
            continue
        leaf = stored_leaves.get(index)
        if leaf is None or (leaf["source"], leaf["source_key"]) != (line.get("source"), line.get("key")):
            report.failures.append(f"{label}: the evidence log has no such leaf")
            continue
        if computed != bytes(leaf["leaf_hash"]) or computed.hex() != line.get("leaf_hash"):
            report.failures.append(f"{label}: the record does not hash to the log's leaf")
            continue
        report.matched += 1
        if head is None or index >= head[0]:
            report.failures.append(f"{label}: no signed tree head covers it yet")
            continue
        proof = merkle.inclusion_proof(index, head[0], stored)
        if merkle.verify_inclusion(computed, index, head[0], proof, head[1]):
            report.proven += 1
        else:
            report.failures.append(f"{label}: the inclusion proof does not reach the signed head's root")


@dataclass(frozen=True)
class Archived:
    """A partition archived to a file and dropped."""

    partition: str
    path: Path
    rows: int


async def archive(conn: asyncpg.Connection, retention_months: int, out_dir: Path, *, now: datetime | None = None,
                  only: str = "") -> list[Archived]:
    """Archives every partition past the retention (or only the one named, which must be past it): export, verify
    the file against the log, then detach and drop the partition."""
    now = now or datetime.now(UTC)
    parts = [p for p in await list_partitions(conn) if not only or p.name == only]
    if only and not parts:
        raise ArchiveError(f"{only}: no such partition (see `partitions list`)")
    done = []
    for p in parts:
        state = p.state(now, retention_months)
        if state != "due":
            if only:
                raise ArchiveError(f"{p.name}: is {state}, inside the retention of {retention_months} months "
                                   "(records are kept at least 36 months); not archived")
            continue
        done.append(await _archive_one(conn, p, out_dir))
    return done


def _write_archive(path: Path, manifest: dict[str, Any], lines: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as f:
        f.write(json.dumps(manifest, sort_keys=True) + "\n")
        for line in lines:
            f.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
    with open(partial, "rb") as raw:
        os.fsync(raw.fileno())  # on disk before the rows are gone
    os.replace(partial, path)
    return path


async def _archive_one(conn: asyncpg.Connection, p: Partition, out_dir: Path) -> Archived:
    lines = await _export_rows(conn, p)
    path = await asyncio.to_thread(_write_archive, out_dir / f"{p.name}.jsonl.gz", _manifest(p, len(lines)), lines)
    report = await verify_archive(conn, path)
    if not report.ok:
        raise ArchiveError(f"{p.name}: the archive did not verify ({'; '.join(report.failures[:3])}); kept the "
                           f"partition, file at {path}")
    async with conn.transaction():
        await conn.execute(f'LOCK TABLE "{p.name}" IN ACCESS EXCLUSIVE MODE')
        count = await conn.fetchval(f'SELECT count(*) FROM "{p.name}"')
        if count != len(lines):
            raise ArchiveError(f"{p.name}: holds {count} rows now, {len(lines)} were archived; kept, try again")
        await conn.execute(f'ALTER TABLE "{p.table}" DETACH PARTITION "{p.name}"')
        await conn.execute(f'DROP TABLE "{p.name}"')
    return Archived(p.name, path, len(lines))
