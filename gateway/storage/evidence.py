"""The evidence log in PostgreSQL: leaves taken from the record tables in commit order, stored subtree hashes,
signed tree heads, and each record's canonical form read back from its row.

A record's canonical form (core/evidence/records.py) is built here from the row, the same way when it is
appended and whenever it is exported, so a row changed afterwards no longer matches its leaf:

- shipment_events -> {"type": "shipment_event", "shipment_id", "waybill_no", "seq", "kind", "from_state",
  "to_state", "principal", "terminal_id", "device_id", "location", "note", "details", "recorded_at"}
- scan_events of no known parcel (a scan of a known parcel is its shipment_event) -> {"type": "scan_event",
  "event_id", "device_id", "terminal_id", "kind", "waybill_no", "decision", "ack", "recorded_at"}
- sender_verifications -> {"type": "verification", "verification_id", "verdict", "document_type",
  "document_key" (the blind index, hex: never the number; the one the row had when logged, see migration 010),
  "document_masked", "name", "phone_key",
  "phone_masked", "authority_result", "in_person_check", "terminal_id", "reasons", "facts", "recorded_at"}
- audit_records -> {"type": "audit", "audit_id", "principal", "method", "case_no", "filters", "returned",
  "status", "shipment_ids", "recorded_at"}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.core.evidence.merkle import StoredRange
from gateway.core.evidence.records import format_time
from gateway.core.evidence_service import Head
from gateway.storage.db import translate_errors


@dataclass(frozen=True)
class Source:
    """One table whose rows are evidence: how to read its rows in feed order and build their records."""

    code: str
    select: str
    key: str  # the row's key column, as the leaf's source_key
    numeric: bool
    where: str = "true"


_E = """SELECT e.id::text AS key, e.ins_xid AS xid, e.shipment_id::text AS shipment_id, s.waybill_no, e.seq,
    e.kind, e.from_state, e.to_state, e.principal, e.terminal_id, e.device_id, e.location, e.note, e.details,
    e.recorded_at FROM shipment_events e JOIN shipments s ON s.id = e.shipment_id"""
_S = """SELECT s.event_id AS key, s.ins_xid AS xid, s.event_id, s.device_id, s.terminal_id, s.kind,
    s.waybill_no, s.decision, s.ack, s.recorded_at FROM scan_events s"""
# A verification's keys as logged: after an index-key rotation re-keyed the row, the values it had then
# (logged_*, migration 010), so the record stays the one in the log.
_V = """SELECT v.id::text AS key, v.ins_xid AS xid, v.id, v.verdict, v.document_type,
    COALESCE(v.logged_document_bidx, v.document_bidx) AS document_bidx, v.document_masked, v.name,
    COALESCE(v.logged_phone_bidx, v.phone_bidx) AS phone_bidx, v.phone_masked, v.authority_result, v.in_person_check,
    v.terminal_id, v.reasons, v.facts, v.created_at FROM sender_verifications v"""
_A = """SELECT a.id::text AS key, a.ins_xid AS xid, a.id, a.principal, a.method, a.case_no, a.filters,
    a.returned, a.status, a.shipment_ids::text[] AS shipment_ids, a.at FROM audit_records a"""
SOURCES = {
    "E": Source("E", _E, "e.id", True), "S": Source("S", _S, "s.event_id", False, "s.shipment_id IS NULL"),
    "V": Source("V", _V, "v.id", True), "A": Source("A", _A, "a.id", True),
}
_ALIAS = {"E": "e", "S": "s", "V": "v", "A": "a"}


def record_of(code: str, r: asyncpg.Record) -> dict[str, Any]:
    """A row of a source table as its canonical record."""
    if code == "E":
        return {"type": "shipment_event", "shipment_id": r["shipment_id"], "waybill_no": r["waybill_no"],
                "seq": r["seq"], "kind": r["kind"], "from_state": r["from_state"], "to_state": r["to_state"],
                "principal": r["principal"], "terminal_id": r["terminal_id"], "device_id": r["device_id"],
                "location": r["location"], "note": r["note"], "details": r["details"],
                "recorded_at": format_time(r["recorded_at"])}
    if code == "S":
        return {"type": "scan_event", "event_id": r["event_id"], "device_id": r["device_id"],
                "terminal_id": r["terminal_id"], "kind": r["kind"], "waybill_no": r["waybill_no"],
                "decision": r["decision"], "ack": r["ack"], "recorded_at": format_time(r["recorded_at"])}
    if code == "V":
        return {"type": "verification", "verification_id": r["id"], "verdict": r["verdict"],
                "document_type": r["document_type"], "document_key": _hex(r["document_bidx"]),
                "document_masked": r["document_masked"], "name": r["name"], "phone_key": _hex(r["phone_bidx"]),
                "phone_masked": r["phone_masked"], "authority_result": r["authority_result"],
                "in_person_check": r["in_person_check"], "terminal_id": r["terminal_id"], "reasons": r["reasons"],
                "facts": r["facts"], "recorded_at": format_time(r["created_at"])}
    return {"type": "audit", "audit_id": r["id"], "principal": r["principal"], "method": r["method"],
            "case_no": r["case_no"], "filters": r["filters"], "returned": r["returned"], "status": r["status"],
            "shipment_ids": list(r["shipment_ids"]), "recorded_at": format_time(r["at"])}


def _hex(value: bytes | None) -> str:
    return value.hex() if value else ""


@dataclass(frozen=True)
class PendingRow:
    """A settled row not yet in the log: its source, key, position in the feed, and canonical record."""

    source: str
    key: str
    xid: int
    record: dict[str, Any]


class EvidenceRepository:
    """Owns the SQL of evidence_leaves, evidence_nodes, evidence_cursors and evidence_heads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @translate_errors
    async def pending(self, conn: asyncpg.Connection, limit: int) -> list[PendingRow]:
        """Settled rows after each source's cursor (every transaction that could insert before them has ended)."""
        horizon = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())")
        cursors = {r["source"]: r for r in await conn.fetch("SELECT source, last_xid AS xid, last_key"
                                                               " FROM evidence_cursors")}
        found: list[PendingRow] = []
        for code, source in SOURCES.items():
            cursor = cursors[code]
            key = (cursor["last_key"] or "0") if source.numeric else cursor["last_key"]
            cast = "::bigint" if source.numeric else ""
            alias = _ALIAS[code]
            rows = await conn.fetch(
                f"{source.select} WHERE {source.where} AND ({alias}.ins_xid, {source.key}) > ($1::xid8, $2{cast})"
                f" AND {alias}.ins_xid < $3::xid8 ORDER BY {alias}.ins_xid, {source.key} LIMIT {int(limit)}",
                cursor["xid"], int(key) if source.numeric else key, horizon)  # xid8 travels as an int
            found += [PendingRow(code, r["key"], int(r["xid"]), record_of(code, r)) for r in rows]
        return found

    @staticmethod
    async def tree_size(conn: asyncpg.Connection) -> int:
        """How many leaves the log holds."""
        size: int = await conn.fetchval("SELECT COALESCE(max(leaf_index) + 1, 0) FROM evidence_leaves")
        return size

    @staticmethod
    async def stored(conn: asyncpg.Connection, ranges: Sequence[StoredRange]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of these ranges (level 0: the leaves)."""
        found: dict[tuple[int, int], bytes] = {}
        leaves = [(r.start, r.stop) for r in ranges if r.level == 0]
        nodes = [(r.level, r.start, r.stop) for r in ranges if r.level > 0]
        if leaves:
            rows = await conn.fetch(
                "SELECT l.leaf_index, l.leaf_hash FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)"
                " JOIN evidence_leaves l ON l.leaf_index >= r.lo AND l.leaf_index < r.hi",
                [a for a, _ in leaves], [b for _, b in leaves])
            found.update({(0, r["leaf_index"]): bytes(r["leaf_hash"]) for r in rows})
        if nodes:
            rows = await conn.fetch(
                "SELECT n.level, n.idx, n.hash FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(lv, lo, hi)"
                " JOIN evidence_nodes n ON n.level = r.lv AND n.idx >= r.lo AND n.idx < r.hi",
                [a for a, _, _ in nodes], [b for _, b, _ in nodes], [c for _, _, c in nodes])
            found.update({(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
        return found

    @staticmethod
    async def write(conn: asyncpg.Connection, first: int, rows: Sequence[PendingRow], hashes: Sequence[bytes],
                    nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Appends the leaves (from index first), the completed stored nodes and the cursors, in one transaction."""
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO evidence_leaves (leaf_index, source, source_key, leaf_hash)"
                " SELECT * FROM unnest($1::bigint[], $2::char(1)[], $3::text[], $4::bytea[])",
                list(range(first, first + len(rows))), [r.source for r in rows], [r.key for r in rows],
                list(hashes))
            if nodes:
                await conn.execute(
                    "INSERT INTO evidence_nodes (level, idx, hash)"
                    " SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
                    [n[0] for n in nodes], [n[1] for n in nodes], [n[2] for n in nodes])
            last: dict[str, PendingRow] = {r.source: r for r in rows}
            for row in last.values():
                await conn.execute("UPDATE evidence_cursors SET last_xid = $2::xid8, last_key = $3 WHERE source = $1",
                                   row.source, row.xid, row.key)

    @translate_errors
    async def latest_head(self) -> Head | None:
        """The newest signed tree head."""
        row = await self._pool.fetchrow("SELECT * FROM evidence_heads ORDER BY tree_size DESC, signed_at DESC LIMIT 1")
        return None if row is None else Head(row["tree_size"], bytes(row["root_hash"]), row["signed_at"],
                                                row["key_id"], row["note"])

    @translate_errors
    async def head_at(self, size: int) -> Head | None:
        """A signed tree head of exactly this size, if one was signed."""
        row = await self._pool.fetchrow("SELECT * FROM evidence_heads WHERE tree_size = $1 ORDER BY signed_at DESC"
                                        " LIMIT 1", size)
        return None if row is None else Head(row["tree_size"], bytes(row["root_hash"]), row["signed_at"],
                                                row["key_id"], row["note"])

    @translate_errors
    async def save_head(self, head: Head) -> None:
        """Keeps a signed tree head (a second signing at the same size by the same key is a no-op)."""
        await self._pool.execute(
            "INSERT INTO evidence_heads (tree_size, root_hash, signed_at, key_id, note) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING", head.tree_size, head.root_hash, head.signed_at, head.key_id, head.note)

    @translate_errors
    async def read_stored(self, ranges: Sequence[StoredRange]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of these ranges, on a connection of the pool."""
        async with self._pool.acquire() as conn:
            return await self.stored(conn, ranges)

    @translate_errors
    async def current_size(self) -> int:
        """How many leaves the log holds."""
        async with self._pool.acquire() as conn:
            return await self.tree_size(conn)

    @translate_errors
    async def leaf_record(self, index: int) -> tuple[dict[str, Any], bytes] | None:
        """A leaf's record, rebuilt from its row now, and the leaf hash stored when it was appended."""
        leaf = await self._pool.fetchrow("SELECT source, source_key, leaf_hash FROM evidence_leaves"
                                         " WHERE leaf_index = $1", index)
        if leaf is None:
            return None
        found = await self.records(leaf["source"], [leaf["source_key"]])
        record = found.get(leaf["source_key"])
        return (record, bytes(leaf["leaf_hash"])) if record is not None else None

    @translate_errors
    async def records(self, code: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of these rows of one source, rebuilt from the rows as they are now."""
        source = SOURCES[code]
        cast = "::bigint[]" if source.numeric else "::text[]"
        values: list[Any] = [int(k) for k in keys] if source.numeric else list(keys)
        rows = await self._pool.fetch(f"{source.select} WHERE {source.key} = ANY($1{cast})", values)
        return {r["key"]: record_of(code, r) for r in rows}

    @translate_errors
    async def leaves_of(self, code: str, keys: Sequence[str]) -> dict[str, int]:
        """The leaf index of each of these rows that is in the log."""
        rows = await self._pool.fetch("SELECT source_key, leaf_index FROM evidence_leaves WHERE source = $1"
                                      " AND source_key = ANY($2::text[])", code, list(keys))
        return {r["source_key"]: r["leaf_index"] for r in rows}

    @translate_errors
    async def shipment_rows(self, shipment_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """The event ids and verification ids of these shipments, in history order."""
        events = await self._pool.fetch("SELECT id::text AS id FROM shipment_events WHERE shipment_id = ANY($1::uuid[])"
                                        " ORDER BY shipment_id, seq", list(shipment_ids))
        verifications = await self._pool.fetch(
            "SELECT DISTINCT sender_verification_id::text AS id FROM shipments WHERE id = ANY($1::uuid[])"
            " AND sender_verification_id IS NOT NULL", list(shipment_ids))
        return [r["id"] for r in events], [r["id"] for r in verifications]

    @translate_errors
    async def audit_rows(self, case_no: str) -> list[str]:
        """The audit records of a case, oldest first."""
        rows = await self._pool.fetch("SELECT id::text AS id FROM audit_records WHERE case_no = $1 ORDER BY id",
                                      case_no)
        return [r["id"] for r in rows]

    @translate_errors
    async def shipment_of(self, waybill_no: str) -> str | None:
        """A waybill's shipment id."""
        found: str | None = await self._pool.fetchval("SELECT id::text FROM shipments WHERE waybill_no = $1",
                                                       waybill_no)
        return found
