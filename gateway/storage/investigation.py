"""Investigators' reads (shipments in full, histories, the feed of leads) and the audit they leave."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from gateway.core.identity import DocumentType
from gateway.core.investigation import SearchQuery
from gateway.core.investigation_records import (
    AsOf,
    AuditEntry,
    AuditFound,
    AuditQuery,
    HistoryEventFound,
    HistoryFound,
    LeadCursor,
    LeadFilters,
    LeadFound,
    PartyView,
    ShipmentFound,
    VerificationFound,
)
from gateway.core.model import ParcelState, ReasonRecord
from gateway.security.sealing import Sealer
from gateway.storage.db import translate_errors
from gateway.storage.replica import ReadPool

_SHIPMENT = """
SELECT s.id::text AS id, s.waybill_no, s.decision, s.state, s.hold_reason, s.sender_name, s.sender_phone_enc,
    s.sender_region_code, s.sender_address, s.recipient_name, s.recipient_phone_enc, s.recipient_region_code,
    s.recipient_address, s.items, s.hits, s.created_at, s.contract_customer_id::text AS customer_id,
    s.sender_verification_id, v.document_type, v.document_enc, c.credit_code_enc, c.responsible_type,
    c.responsible_enc, EXISTS (SELECT 1 FROM leads l WHERE l.shipment_id = s.id) AS flagged
FROM shipments s
LEFT JOIN sender_verifications v ON v.id = s.sender_verification_id
LEFT JOIN contract_customers c ON c.id = s.contract_customer_id
"""
_EVENTS = """
SELECT e.seq, e.kind, e.from_state, e.to_state, e.principal, e.terminal_id, e.device_id, e.location, e.note,
    e.recorded_at, e.details, COALESCE(l.leaf_index, -1) AS leaf_index
FROM shipment_events e LEFT JOIN evidence_leaves l ON l.source = 'E' AND l.source_key = e.id::text
WHERE e.shipment_id = $1::uuid ORDER BY e.seq
"""
_VERIFICATION = """
SELECT id, verdict, document_type, document_enc, name, phone_enc, authority_result, in_person_check, terminal_id,
    created_at, reasons
FROM sender_verifications WHERE id = $1
"""
_LEADS = """
SELECT l.id, l.ins_xid AS xid, l.waybill_no, l.shipment_id::text AS shipment_id, l.kind, l.origin, l.reason,
    l.hits, l.created_at, s.sender_region_code, s.recipient_region_code
FROM leads l JOIN shipments s ON s.id = l.shipment_id
"""
# The feed gives a lead only once every transaction that could insert one before it has ended: its position
# (ins_xid, id) is then final, so a client's cursor never passes a lead that commits late.
_SETTLED = "l.ins_xid < pg_snapshot_xmin(pg_current_snapshot())"


def _open(sealer: Sealer, blob: bytes | None, context: str) -> str:
    return sealer.open(blob, context=context) if blob else ""


def _document_type(name: str | None) -> DocumentType | None:
    return DocumentType[name] if name and name in DocumentType.__members__ else None


class InvestigationRepository:
    """Owns the SQL of investigators' reads and of audit_records; opens sealed numbers for them.

    The audit is written, listed and gathered for an export on the primary: a record must be on the primary
    before its call is answered, and an export must hold every shipment the case's audit names so far.
    """

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer, reads: ReadPool | None = None) -> None:
        self._pool = pool  # the primary: every write (the audit), and the reads that must see the latest write
        # Searches, histories and the lead feed: a replica's when one is set (storage/replica.py).
        self._reads = reads or ReadPool(pool)
        self._sealer = sealer

    def _shipment(self, r: asyncpg.Record) -> ShipmentFound:
        s = self._sealer
        sender = PartyView(
            name=r["sender_name"], document_type=_document_type(r["document_type"] or r["responsible_type"]),
            document_number=_open(s, r["document_enc"] or r["responsible_enc"], "document"),
            phone=_open(s, r["sender_phone_enc"], "phone"), region_code=r["sender_region_code"],
            address=r["sender_address"], credit_code=_open(s, r["credit_code_enc"], "organisation"))
        recipient = PartyView(name=r["recipient_name"], phone=_open(s, r["recipient_phone_enc"], "phone"),
                              region_code=r["recipient_region_code"], address=r["recipient_address"])
        return ShipmentFound(r["id"], r["waybill_no"], r["decision"], ParcelState(r["state"]), r["hold_reason"],
                             sender, recipient, tuple(r["items"]), r["created_at"], r["flagged"],
                             r["customer_id"] or "")

    @translate_errors
    async def search(self, query: SearchQuery) -> tuple[list[ShipmentFound], AsOf]:
        """Up to limit + 1 shipments matching every filter, newest first, after the keyset position."""
        where, args = _conditions(query)
        sql = (f"{_SHIPMENT} WHERE {' AND '.join(where) or 'true'}"
               f" ORDER BY s.created_at DESC, s.id DESC LIMIT {query.limit + 1}")

        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await conn.fetch(sql, *args))

        rows, as_of = await self._reads.read(work)
        return [self._shipment(r) for r in rows], as_of

    @translate_errors
    async def history(self, waybill_no: str) -> HistoryFound | None:
        """One shipment with its verification, hits, events (with their leaves) and leads, and how current."""
        async def work(conn: asyncpg.Connection) -> tuple[asyncpg.Record, list[asyncpg.Record],
                                                          asyncpg.Record | None, list[asyncpg.Record]] | None:
            row = await conn.fetchrow(f"{_SHIPMENT} WHERE s.waybill_no = $1", waybill_no)
            if row is None:
                return None
            events = await conn.fetch(_EVENTS, row["id"])
            verification = await conn.fetchrow(_VERIFICATION, row["sender_verification_id"]) \
                if row["sender_verification_id"] else None
            leads = await conn.fetch(f"{_LEADS} WHERE l.shipment_id = $1::uuid ORDER BY l.id", row["id"])
            return row, list(events), verification, list(leads)

        # One snapshot (repeatable read) for the shipment and all it refers to, and for how current it is.
        found, as_of = await self._reads.read(work, isolation="repeatable_read")
        if found is None:
            return None
        row, events, verification, leads = found
        return HistoryFound(self._shipment(row), self._verification(verification), tuple(row["hits"]),
                            tuple(_event(e) for e in events), tuple(_lead(r) for r in leads), as_of)

    def _verification(self, r: asyncpg.Record | None) -> VerificationFound | None:
        if r is None:
            return None
        return VerificationFound(
            r["id"], r["verdict"], _document_type(r["document_type"]), _open(self._sealer, r["document_enc"],
                                                                              "document"),
            r["name"], _open(self._sealer, r["phone_enc"], "phone"), r["authority_result"], r["in_person_check"],
            r["terminal_id"], r["created_at"], tuple(ReasonRecord(**x) for x in r["reasons"]))

    @translate_errors
    async def leads_after(self, cursor: LeadCursor | None, filters: LeadFilters, limit: int) -> list[LeadFound]:
        """Settled leads after the cursor that pass the filters, in feed order."""
        where, args = [_SETTLED], list[Any]()
        if cursor is not None:
            args += [cursor.xid, cursor.lead_id]
            where.append("(l.ins_xid, l.id) > ($1::xid8, $2)")
        if filters.kinds:
            args.append(list(filters.kinds))
            where.append(f"l.kind = ANY(${len(args)}::text[])")
        if filters.origins:
            args.append(list(filters.origins))
            where.append(f"l.origin = ANY(${len(args)}::text[])")
        if filters.region_prefixes:
            args.append([p + "%" for p in filters.region_prefixes])
            where.append(f"(s.sender_region_code LIKE ANY(${len(args)}::text[])"
                         f" OR s.recipient_region_code LIKE ANY(${len(args)}::text[]))")
        sql = f"{_LEADS} WHERE {' AND '.join(where)} ORDER BY l.ins_xid, l.id LIMIT {int(limit)}"
        rows = await self._reads.run(lambda conn: conn.fetch(sql, *args))
        return [_lead(r) for r in rows]

    @translate_errors
    async def newest_lead(self) -> LeadCursor | None:
        """The position of 'now' in the feed: every lead whose transaction has ended lies before it."""
        xmin = await self._reads.run(lambda conn: conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())"))
        return LeadCursor(int(xmin) - 1, 2**62)

    @translate_errors
    async def audit(self, entry: AuditEntry) -> None:
        """Writes one audit record (committed before the call is answered)."""
        await self._pool.execute(
            "INSERT INTO audit_records (principal_id, principal, method, case_no, filters, returned, status,"
            " shipment_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::uuid[])",
            entry.principal_id, entry.principal, entry.method, entry.case_no, entry.filters, entry.returned,
            entry.status, list(entry.shipment_ids))

    @translate_errors
    async def audit_page(self, query: AuditQuery) -> list[AuditFound]:
        """Audit records newest first, filtered, below the keyset position."""
        where, args = ["true"], list[Any]()
        for column, value, op in (("case_no", query.case_no, "="), ("principal", query.principal, "="),
                                  ("at", query.from_time, ">="), ("at", query.to_time, "<"),
                                  ("id", query.before_id, "<")):
            if value:
                args.append(value)
                where.append(f"a.{column} {op} ${len(args)}")
        rows = await self._pool.fetch(
            "SELECT a.id, a.principal, a.method, a.case_no, a.filters, a.returned, a.status, a.at,"
            " COALESCE(l.leaf_index, -1) AS leaf_index FROM audit_records a LEFT JOIN evidence_leaves l"
            f" ON l.source = 'A' AND l.source_key = a.id::text WHERE {' AND '.join(where)}"
            f" ORDER BY a.id DESC LIMIT {int(query.limit)}", *args)
        return [AuditFound(r["id"], r["principal"], r["method"], r["case_no"], r["filters"], r["returned"],
                           r["status"], r["at"], r["leaf_index"]) for r in rows]

    @translate_errors
    async def case_shipments(self, case_no: str) -> list[str]:
        """Every shipment an audited call under the case returned, in the order first returned."""
        rows = await self._pool.fetch(
            "SELECT id::text AS id FROM (SELECT unnest(shipment_ids) AS id, min(a.id) AS first FROM audit_records a"
            " WHERE case_no = $1 AND status = 'OK' GROUP BY 1) t ORDER BY first", case_no)
        return [r["id"] for r in rows]


def _conditions(q: SearchQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    def keys(current: bytes, past: tuple[bytes, ...]) -> str:
        # During an index-key rotation a row may still carry a past key's index: match any of the candidates.
        return f"= {arg(current)}" if not past else f"= ANY({arg([current, *past])}::bytea[])"

    if q.document_key:
        where.append(f"s.sender_document_bidx {keys(q.document_key, q.document_past_keys)}")
    if q.phone_key:
        key = keys(q.phone_key, q.phone_past_keys)
        where.append(f"(s.sender_phone_bidx {key} OR s.recipient_phone_bidx {key})")
    if q.name_keys:
        keys = arg(list(q.name_keys))
        where.append(f"(s.sender_name_keys && {keys}::text[] OR s.recipient_name_keys && {keys}::text[])")
    if q.waybill_no:
        where.append(f"s.waybill_no = {arg(q.waybill_no)}")
    if q.origin_prefix:
        where.append(f"s.sender_region_code LIKE {arg(q.origin_prefix + '%')}")
    if q.destination_prefix:
        where.append(f"s.recipient_region_code LIKE {arg(q.destination_prefix + '%')}")
    if q.from_time:
        where.append(f"s.created_at >= {arg(q.from_time)}")
    if q.to_time:
        where.append(f"s.created_at < {arg(q.to_time)}")
    if q.flagged_only:
        where.append("EXISTS (SELECT 1 FROM leads l WHERE l.shipment_id = s.id)")
    if q.after:
        where.append(f"(s.created_at, s.id) < ({arg(q.after[0])}, {arg(q.after[1])}::uuid)")
    return where, args


def _event(e: asyncpg.Record) -> HistoryEventFound:
    return HistoryEventFound(
        e["seq"], e["kind"], ParcelState(e["from_state"]) if e["from_state"] else None, ParcelState(e["to_state"]),
        e["principal"], e["terminal_id"], e["device_id"], e["location"], e["note"], e["recorded_at"],
        e["details"] if isinstance(e["details"], dict) else json.loads(e["details"]), e["leaf_index"])


def _lead(r: asyncpg.Record) -> LeadFound:
    return LeadFound(LeadCursor(int(r["xid"]), r["id"]), r["id"], r["waybill_no"], r["shipment_id"], r["kind"],
                     r["origin"], r["reason"], tuple(r["hits"]), r["created_at"], r["sender_region_code"],
                     r["recipient_region_code"])
