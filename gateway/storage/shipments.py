"""Shipments and their append-only events: acceptance writes and custody moves."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.core.acceptance import AcceptResult, Decision, ShipmentRecord
from gateway.core.consignments import PartyFacts, consignment
from gateway.core.custody import MoveResult, ParcelView
from gateway.core.identity import mask_name
from gateway.core.investigation import name_keys
from gateway.core.model import Actor, EventRecord, ParcelState, ReasonRecord, StoredEvent
from gateway.core.screening import Consignment
from gateway.security.sealing import Sealer
from gateway.storage.batching import GroupCommitLane
from gateway.storage.blobs import BlobStore
from gateway.storage.db import translate_errors

# One statement for a whole batch of acceptances: the global keys, the shipments, their first events, their photos.
# The waybill number and the idempotency key are kept unique by tables of their own (migration 011: on Citus a
# unique constraint must hold the distribution column); a parcel is written only if both of its keys were free.
# A row whose waybill or key was already taken (or is taken by an earlier row of the same batch) is left out before
# any key is written (fresh), so it leaves nothing behind and comes back missing from the answer. Only a concurrent
# transaction that takes one of a row's keys after this statement's snapshot can still leave the row holding one
# key and not the other (an orphan); the statement then fails as a whole (_FAIL_ON_ORPHAN) and the batch is written
# again in a transaction that frees such keys (_KEEP_ORPHANS, _FREE_ORPHANS). So the usual batch is one statement,
# with no BEGIN and COMMIT round trips, and no key ever names a parcel that does not exist. Keys are taken in sorted
# order, so that two batches never wait on each other (a deadlock).
_INSERT_MANY = """
WITH input AS (
    SELECT gen_random_uuid() AS id, t.*
    FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::bigint[], $10::uuid[], $11::text[], $12::bytea[], $13::bytea[], $14::bytea[], $15::text[],
                $16::text[], $17::text[], $18::text[], $19::bytea[], $20::bytea[], $21::text[], $22::text[],
                $23::text[], $24::text[], $25::text[], $26::text[], $27::bigint[], $40::text[], $41::bigint[],
                $42::int[], $43::text[], $44::text[])
        WITH ORDINALITY
        AS t(waybill_no, idempotency_key, request_digest, decision, state, hold_reason, reasons, hits,
             sender_verification_id, contract_customer_id, sender_name, sender_document_bidx, sender_phone_enc,
             sender_phone_bidx, sender_phone_masked, sender_region_code, sender_address, recipient_name,
             recipient_phone_enc, recipient_phone_bidx, recipient_phone_masked, recipient_region_code,
             recipient_address, items, inspection, terminal_id, principal_id, image_hashes, weight_g, last_seq,
             sender_name_keys, recipient_name_keys, ord)
), fresh AS (
    SELECT id, waybill_no, idempotency_key FROM input
    WHERE NOT EXISTS (SELECT 1 FROM shipment_waybills t WHERE t.waybill_no = input.waybill_no)
      AND NOT EXISTS (SELECT 1 FROM shipment_idempotency_keys t WHERE t.idempotency_key = input.idempotency_key)
      AND NOT EXISTS (SELECT 1 FROM input o WHERE o.ord < input.ord
                      AND (o.waybill_no = input.waybill_no OR o.idempotency_key = input.idempotency_key))
), w AS (
    INSERT INTO shipment_waybills (waybill_no, shipment_id) SELECT waybill_no, id FROM fresh
    ORDER BY waybill_no ON CONFLICT DO NOTHING RETURNING shipment_id
), k AS (
    INSERT INTO shipment_idempotency_keys (idempotency_key, shipment_id) SELECT idempotency_key, id FROM fresh
    ORDER BY idempotency_key ON CONFLICT DO NOTHING RETURNING shipment_id
), s AS (
    INSERT INTO shipments (id, waybill_no, idempotency_key, request_digest, decision, state, hold_reason, reasons,
        hits, sender_verification_id, contract_customer_id, sender_name, sender_document_bidx, sender_phone_enc,
        sender_phone_bidx, sender_phone_masked, sender_region_code, sender_address, recipient_name,
        recipient_phone_enc, recipient_phone_bidx, recipient_phone_masked, recipient_region_code,
        recipient_address, items, inspection, terminal_id, principal_id, image_hashes, weight_g, last_seq,
        sender_name_keys, recipient_name_keys)
    SELECT id, waybill_no, idempotency_key, request_digest, decision, state, hold_reason, reasons::jsonb,
        hits::jsonb, sender_verification_id, contract_customer_id, sender_name, sender_document_bidx,
        sender_phone_enc, sender_phone_bidx, sender_phone_masked, sender_region_code, sender_address,
        recipient_name, recipient_phone_enc, recipient_phone_bidx, recipient_phone_masked, recipient_region_code,
        recipient_address, items::jsonb, inspection::jsonb, terminal_id, principal_id, image_hashes::bigint[],
        weight_g, last_seq, COALESCE(string_to_array(NULLIF(sender_name_keys, ''), '|'), '{}'),
        COALESCE(string_to_array(NULLIF(recipient_name_keys, ''), '|'), '{}')
    FROM input WHERE id IN (SELECT shipment_id FROM w) AND id IN (SELECT shipment_id FROM k) ORDER BY ord
    RETURNING id, created_at
), e AS (
    INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, from_state, to_state, principal_id, principal,
        terminal_id, note, details)
    SELECT s.id, s.created_at, ev.seq, ev.kind, ev.from_state, ev.to_state, input.principal_id, ev.principal,
        input.terminal_id, ev.note, ev.details::jsonb
    FROM unnest($28::bigint[], $29::int[], $30::text[], $31::text[], $32::text[], $33::text[], $34::text[],
                $35::text[]) AS ev(ord, seq, kind, from_state, to_state, principal, note, details)
    JOIN input ON input.ord = ev.ord JOIN s ON s.id = input.id
), p AS (
    INSERT INTO inspection_photos (shipment_id, idx, sha256, content)
    SELECT s.id, ph.idx, ph.sha, ph.content
    FROM unnest($36::bigint[], $37::int2[], $38::bytea[], $39::bytea[]) AS ph(ord, idx, sha, content)
    JOIN input ON input.ord = ph.ord JOIN s ON s.id = input.id
), l AS (
    -- Holds and refusals are leads for investigators, written with the parcel.
    INSERT INTO leads (shipment_id, waybill_no, kind, origin, reason, hits)
    SELECT s.id, input.waybill_no, input.decision, 'ACCEPTANCE', input.hold_reason, input.hits::jsonb
    FROM input JOIN s ON s.id = input.id WHERE input.decision IN ('HELD', 'REFUSED')
), r AS (
    INSERT INTO sender_recipients (sender_bidx, day, recipient_bidx)
    SELECT DISTINCT input.sender_document_bidx, current_date, input.recipient_phone_bidx
    FROM input JOIN s ON s.id = input.id WHERE input.sender_document_bidx IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT input.ord, s.id::text AS id, s.created_at, {orphan} AS orphan FROM input LEFT JOIN s ON s.id = input.id
WHERE s.id IS NOT NULL OR input.id IN (SELECT shipment_id FROM w UNION ALL SELECT shipment_id FROM k)
"""
# An orphan fails the lone statement through orphaned_shipment_key (migration 014), which raises ORPHANED_KEY;
# nothing of the statement stays.
ORPHANED_KEY = "GW001"
_FAIL_ON_ORPHAN = _INSERT_MANY.replace("{orphan}", "CASE WHEN s.id IS NULL THEN orphaned_shipment_key(input.id) END")
_KEEP_ORPHANS = _INSERT_MANY.replace("{orphan}", "input.id")
_FREE_ORPHANS = """
WITH w AS (DELETE FROM shipment_waybills WHERE shipment_id = ANY($1::uuid[]))
DELETE FROM shipment_idempotency_keys WHERE shipment_id = ANY($1::uuid[])
"""

# The next seq comes from the locked row (last_seq), which a move that waited for another's lock sees as the other
# left it; a subquery over shipment_events would still see this statement's older snapshot.
_MOVE = """
WITH cur AS (
    SELECT id, state FROM shipments WHERE waybill_no = $1 FOR UPDATE
), moved AS (
    UPDATE shipments s SET state = $3, updated_at = now(), hold_reason = COALESCE($4, s.hold_reason),
        last_seq = s.last_seq + 1
    FROM cur WHERE s.id = cur.id AND cur.state = ANY($2::text[])
    RETURNING s.id, s.created_at, cur.state AS from_state, s.last_seq
), ev AS (
    INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, from_state, to_state, principal_id, principal,
        terminal_id, device_id, location, note, details)
    SELECT moved.id, moved.created_at, moved.last_seq, $5, moved.from_state, $3, $6, $7, $8, $9, $10, $11, $12::jsonb
    FROM moved
    RETURNING shipment_id, seq, from_state, recorded_at
), lead AS (
    INSERT INTO leads (shipment_id, waybill_no, kind, origin, reason, hits)
    SELECT ev.shipment_id, $1, $3, $13, $11, COALESCE($12::jsonb -> 'hits', '[]'::jsonb)
    FROM ev WHERE $13::text IS NOT NULL
)
SELECT seq, from_state, recorded_at FROM ev
"""

_RESULT_COLUMNS = (
    "id::text AS id, waybill_no, decision, state, reasons, hits, created_at, recipient_phone_masked,"
    " sender_name, request_digest"
)


# Senders and recipients recur (a shop ships daily): their search keys (a full name parse each) are kept, as the
# screening keeps their parsed forms.
_name_keys = functools.lru_cache(maxsize=1 << 12)(name_keys)


def _result(row: asyncpg.Record, *, replayed: bool) -> AcceptResult:
    return AcceptResult(
        decision=Decision(row["decision"]), shipment_id=row["id"], waybill_no=row["waybill_no"],
        reasons=tuple(ReasonRecord(**r) for r in row["reasons"]), hits=tuple(row["hits"]),
        recorded_at=row["created_at"], state=ParcelState(row["state"]),
        masked_recipient_phone=row["recipient_phone_masked"], masked_sender_name=mask_name(row["sender_name"]),
        replayed=replayed, request_digest=bytes(row["request_digest"]),
    )


def signed64(value: int) -> int:
    """A 64-bit unsigned hash as PostgreSQL's signed bigint (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int) -> int:
    """The inverse of signed64."""
    return value + (1 << 64) if value < 0 else value


@dataclass(frozen=True)
class _Row:
    """One acceptance, sealed and flattened: shipment columns, (seq, ...) events, (idx, sha, bytes) photos."""

    columns: tuple[Any, ...]
    events: list[tuple[Any, ...]]
    photos: list[tuple[int, bytes, bytes]]


def _arguments(rows: Sequence[_Row]) -> list[Any]:
    columns = [list(c) for c in zip(*(r.columns for r in rows), strict=True)]
    recipient_keys, sender_keys = columns.pop(), columns.pop()  # $40 to $44 come after the event and photo arrays
    last_seqs = columns.pop()
    weights = columns.pop()
    hashes = columns.pop()
    events = [(ord_, *e) for ord_, r in enumerate(rows, 1) for e in r.events]
    photos = [(ord_, *p) for ord_, r in enumerate(rows, 1) for p in r.photos]
    event_columns = [list(c) for c in zip(*events, strict=True)] if events else [[]] * 8
    photo_columns = [list(c) for c in zip(*photos, strict=True)] if photos else [[]] * 4
    return [*columns, *event_columns, *photo_columns, hashes, weights, last_seqs, sender_keys, recipient_keys]


async def _insert_shipments(
    conn: asyncpg.Connection, rows: Sequence[_Row],
) -> list[tuple[str, datetime] | None]:
    arguments = _arguments(rows)
    try:
        answered = await conn.fetch(_FAIL_ON_ORPHAN, *arguments)  # alone: PostgreSQL commits it, durably
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != ORPHANED_KEY:
            raise
        # A concurrent write took one key of a row (see _INSERT_MANY).
        async with conn.transaction():  # nobody ever sees a key that names no parcel
            answered = await conn.fetch(_KEEP_ORPHANS, *arguments)
            orphans = [r["orphan"] for r in answered if r["id"] is None]
            if orphans:
                await conn.execute(_FREE_ORPHANS, orphans)
    found = {r["ord"]: (r["id"], r["created_at"]) for r in answered if r["id"] is not None}
    return [found.get(i) for i in range(1, len(rows) + 1)]


class ShipmentRepository:
    """Owns the SQL of shipments, shipment_events and inspection_photos."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer, blobs: BlobStore, *, max_batch: int = 64) -> None:
        self._pool = pool
        self._sealer = sealer
        self._blobs = blobs
        self._lane: GroupCommitLane[_Row, tuple[str, datetime] | None] = GroupCommitLane(
            pool, _insert_shipments, max_batch=max_batch, single_statement=True)  # its own transaction if need be

    def _row(self, r: ShipmentRecord, actor: Actor) -> _Row:
        s = self._sealer
        sender_phone_enc, sender_phone_bidx = s.seal_optional(r.sender.phone_e164, context="phone")
        recipient_phone_enc, recipient_phone_bidx = s.seal_optional(r.recipient_phone_e164, context="phone")
        inspection = {"outcome": r.inspection.outcome.value if r.inspection.outcome else None,
                      "notes": r.inspection.notes, "photos": len(r.inspection.photos),
                      "inspected_at": r.inspection.inspected_at.isoformat() if r.inspection.inspected_at else None}
        columns = (
            r.waybill_no, r.idempotency_key, r.request_digest, r.decision.value, r.state.value, r.hold_reason,
            json.dumps([x.as_dict() for x in r.reasons]), json.dumps(list(r.hits)), r.sender.verification_id,
            r.sender.contract_customer_id, r.sender.name, r.sender.document_key, sender_phone_enc,
            sender_phone_bidx, r.sender_phone_masked, r.sender_address.region_code, r.sender_address.detail,
            r.recipient_name, recipient_phone_enc, recipient_phone_bidx, r.recipient_phone_masked,
            r.recipient_address.region_code, r.recipient_address.detail,
            json.dumps([asdict(i) for i in r.items]), json.dumps(inspection), r.terminal_id, actor.principal.id,
            "{" + ",".join(str(signed64(h)) for h in r.image_hashes) + "}", r.weight_g, len(r.events),
            "|".join(_name_keys(r.sender.name)), "|".join(_name_keys(r.recipient_name)),
        )
        events = [(i, e.kind, e.from_state.value if e.from_state else None, e.to_state.value, actor.principal.name,
                   e.note, json.dumps(e.details)) for i, e in enumerate(r.events, 1)]
        # The photos themselves are in the blob store (written before the row): the row names them.
        photos = [(i, hashlib.sha256(p).digest(), None) for i, p in enumerate(r.inspection.photos)]
        return _Row(columns, events, photos)

    @translate_errors
    async def insert(self, record: ShipmentRecord, actor: Actor) -> AcceptResult | None:
        """Writes the acceptance (group commit); None if the key or the waybill was taken first."""
        for photo in record.inspection.photos:
            await self._blobs.put(photo)  # durably on disk before any committed row names it
        written = await self._lane.submit(self._row(record, actor))
        if written is None:
            return None
        shipment_id, created_at = written
        return AcceptResult(
            decision=record.decision, shipment_id=shipment_id, waybill_no=record.waybill_no,
            reasons=record.reasons, hits=record.hits, recorded_at=created_at, state=record.state,
            masked_recipient_phone=record.recipient_phone_masked,
            masked_sender_name=mask_name(record.sender.name), request_digest=record.request_digest,
        )

    @translate_errors
    async def find_by_idempotency_key(self, key: str) -> AcceptResult | None:
        """The first answer given under a key, for a retry."""
        row = await self._pool.fetchrow(
            f"SELECT {_RESULT_COLUMNS} FROM shipments WHERE id = (SELECT shipment_id FROM shipment_idempotency_keys"
            " WHERE idempotency_key = $1)", key)
        return None if row is None else _result(row, replayed=True)

    @translate_errors
    async def apply_move(
        self, waybill_no: str, sources: frozenset[ParcelState], target: ParcelState,
        event: EventRecord, actor: Actor, *, lead_origin: str | None = None,
    ) -> MoveResult | None:
        """Moves the parcel and appends the event (and a lead, when given an origin) if its state is one of
        sources; else None, and nothing changed."""
        hold_reason = {ParcelState.HELD: event.note, ParcelState.ACCEPTED: ""}.get(target)
        row = await self._pool.fetchrow(
            _MOVE, waybill_no, [s.value for s in sources], target.value, hold_reason, event.kind,
            actor.principal.id, actor.principal.name, actor.terminal_id, actor.device_id, event.location,
            event.note, event.details, lead_origin,  # the jsonb codec encodes the dict
        )
        if row is None:
            return None
        return MoveResult(waybill_no, ParcelState(row["from_state"]), target, row["seq"], row["recorded_at"])

    @translate_errors
    async def current_state(self, waybill_no: str) -> tuple[ParcelState, str] | None:
        """The parcel's state and hold reason."""
        row = await self._pool.fetchrow("SELECT state, hold_reason FROM shipments WHERE waybill_no = $1", waybill_no)
        return None if row is None else (ParcelState(row["state"]), row["hold_reason"])

    @translate_errors
    async def parcel_view(self, waybill_no: str) -> ParcelView | None:
        """The parcel, masked, with every event in order."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id::text AS id, waybill_no, state, hold_reason, sender_name, recipient_name,"
                " recipient_phone_masked, recipient_region_code, created_at FROM shipments WHERE waybill_no = $1",
                waybill_no,
            )
            if row is None:
                return None
            events = await conn.fetch(
                "SELECT seq, kind, from_state, to_state, principal, terminal_id, device_id, location, note,"
                " recorded_at FROM shipment_events WHERE shipment_id = $1::uuid ORDER BY seq", row["id"],
            )
        return ParcelView(
            shipment_id=row["id"], waybill_no=row["waybill_no"], state=ParcelState(row["state"]),
            hold_reason=row["hold_reason"], masked_sender_name=mask_name(row["sender_name"]),
            masked_recipient_name=mask_name(row["recipient_name"]),
            masked_recipient_phone=row["recipient_phone_masked"], recipient_region_code=row["recipient_region_code"],
            created_at=row["created_at"], events=tuple(_stored_event(e) for e in events),
        )


def _stored_event(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"], kind=row["kind"],
        from_state=ParcelState(row["from_state"]) if row["from_state"] else None,
        to_state=ParcelState(row["to_state"]), principal=row["principal"], terminal_id=row["terminal_id"],
        device_id=row["device_id"], location=row["location"], note=row["note"], recorded_at=row["recorded_at"],
    )


_UNDISPATCHED = """
SELECT s.waybill_no, s.sender_name, s.sender_document_bidx, s.sender_phone_bidx, c.credit_code_bidx,
    s.sender_region_code, s.sender_address, s.recipient_name, s.recipient_phone_bidx, s.recipient_region_code,
    s.recipient_address, s.items, s.image_hashes,
    -- The entries this parcel was already screened against and decided on: its acceptance's hits and those of
    -- every hold since (leads); a reviewer's release of them stands.
    ARRAY(SELECT (h ->> 'entry_id')::bigint FROM jsonb_array_elements(s.hits) h WHERE h ->> 'entry_id' IS NOT NULL
          UNION SELECT (h ->> 'entry_id')::bigint FROM leads l, jsonb_array_elements(l.hits) h
          WHERE l.shipment_id = s.id AND h ->> 'entry_id' IS NOT NULL) AS decided_entries
FROM shipments s LEFT JOIN contract_customers c ON c.id = s.contract_customer_id
WHERE s.state IN ('ACCEPTED', 'STORED') AND s.created_at >= $1
"""


def _screening_row(r: asyncpg.Record) -> tuple[str, Consignment, frozenset[int]]:
    sender = PartyFacts(r["sender_name"], r["sender_document_bidx"], r["sender_phone_bidx"], r["credit_code_bidx"],
                        r["sender_region_code"], r["sender_address"])
    recipient = PartyFacts(r["recipient_name"], None, r["recipient_phone_bidx"], None, r["recipient_region_code"],
                           r["recipient_address"])
    items = ((i["description"], i["quantity"], i["declared_value_fen"], i.get("brand", ""), i.get("category", ""))
             for i in r["items"])
    hashes = tuple(unsigned64(h) for h in r["image_hashes"])
    return r["waybill_no"], consignment(sender, recipient, items, image_hashes=hashes), frozenset(r["decided_entries"])


async def undispatched_consignments(
    pool: asyncpg.Pool, since: datetime, chunk: int = 2000,
) -> AsyncIterator[list[tuple[str, Consignment, frozenset[int]]]]:
    """Parcels still in custody (accepted or stored) since a time, in chunks: (waybill, consignment, the ids of the
    entries it was already screened against and decided on)."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(_UNDISPATCHED, since)
        while rows := await cursor.fetch(chunk):
            yield [_screening_row(r) for r in rows]
