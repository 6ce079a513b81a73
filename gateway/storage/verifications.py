"""Sender verifications and contract customers: the two ways a sender is known."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from gateway.core.acceptance import SenderParty
from gateway.core.customers import CustomerRecord
from gateway.core.errors import AlreadyExists
from gateway.core.model import Actor
from gateway.core.verification import Verdict, VerificationRecord
from gateway.security.sealing import Sealer
from gateway.storage.batching import GroupCommitLane
from gateway.storage.db import translate_errors

# Many verifications in one statement. Ids are drawn in the input CTE, so each caller learns its own id
# whatever order the rows are inserted in.
_INSERT_MANY = """
WITH input AS (
    SELECT nextval('sender_verifications_id_seq') AS id, t.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::bytea[],
                $9::bytea[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[],
                $16::text[], $17::timestamptz[], $18::bytea[], $19::text[]) WITH ORDINALITY
        AS t(sender_ref, verdict, document_type, document_enc, document_bidx, document_masked, name, phone_enc,
             phone_bidx, phone_masked, reasons, facts, authority_result, authority_ref, principal_id,
             terminal_id, expires_at, legacy_number_enc, in_person_check, ord)
), ins AS (
    INSERT INTO sender_verifications (id, sender_ref, verdict, document_type, document_enc, document_bidx,
        document_masked, name, phone_enc, phone_bidx, phone_masked, reasons, facts, authority_result,
        authority_ref, principal_id, terminal_id, expires_at, legacy_number_enc, in_person_check)
    SELECT id, sender_ref, verdict, document_type, document_enc, document_bidx, document_masked, name,
        phone_enc, phone_bidx, phone_masked, reasons::jsonb, facts::jsonb, authority_result, authority_ref,
        principal_id, terminal_id, expires_at, legacy_number_enc, in_person_check
    FROM input
)
SELECT id FROM input ORDER BY ord
"""


# Many AcceptParcel calls' sender look-ups in one statement: the verification behind each sender_ref, with the
# sender's distinct recipients in the pattern window counted in the same round trip. $2 is the window in days.
# One row per ref whatever the table holds: sender_ref has no unique constraint since 011 (Citus), so the look-up
# takes one row per ref (LIMIT 1) as a single fetchrow did, and the batch's answers stay one per caller.
_SENDERS_MANY = """
SELECT v.id, v.verdict, v.expires_at, v.name, v.document_bidx, v.phone_enc,
    (SELECT count(DISTINCT r.recipient_bidx) FROM sender_recipients r
      WHERE r.sender_bidx = v.document_bidx AND r.day > current_date - $2::int) AS recent
FROM unnest($1::text[]) WITH ORDINALITY AS t(sender_ref, ord)
LEFT JOIN LATERAL (SELECT * FROM sender_verifications s WHERE s.sender_ref = t.sender_ref LIMIT 1) v ON true
ORDER BY t.ord
"""


async def _insert_verifications(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    columns = [list(column) for column in zip(*rows, strict=True)]
    return [r["id"] for r in await conn.fetch(_INSERT_MANY, *columns)]


class VerificationRepository:
    """Owns the SQL of sender_verifications and contract_customers."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer, *, max_batch: int = 64,
                 pattern_window: timedelta = timedelta(days=1)) -> None:
        self._pool = pool
        self._sealer = sealer
        # Counted per calendar day: a window of one day is today, of two days today and yesterday.
        self._pattern_days = max(1, -(-int(pattern_window.total_seconds()) // 86400))
        self._lane: GroupCommitLane[tuple[Any, ...], int] = GroupCommitLane(
            pool, _insert_verifications, max_batch=max_batch, single_statement=True)
        # Look-ups are batched like the writes: concurrent AcceptParcel calls share one statement and one round
        # trip (a look-up starts at once when a slot is free, so a lone call waits for nobody).
        self._senders: GroupCommitLane[str, asyncpg.Record | None] = GroupCommitLane(
            pool, self._lookup_senders, max_batch=max_batch, single_statement=True)

    @translate_errors
    async def record(self, record: VerificationRecord, actor: Actor) -> int:
        """Stores one verification, passed or failed; returns its id once committed (group commit)."""
        return await self._lane.submit(self._row(record, actor))

    def _row(self, record: VerificationRecord, actor: Actor) -> tuple[Any, ...]:
        doc_enc, doc_bidx = self._sealer.seal_optional(record.document_number, context="document")
        phone_enc, phone_bidx = self._sealer.seal_optional(record.phone_e164, context="phone")
        legacy_enc, _ = self._sealer.seal_optional(record.legacy_number, context="document")
        return (
            record.sender_ref, record.verdict.value, record.document_type.value, doc_enc, doc_bidx,
            record.document_masked, record.name, phone_enc, phone_bidx, record.phone_masked,
            json.dumps([r.as_dict() for r in record.reasons]), json.dumps(record.facts), record.authority_result,
            record.authority_ref, actor.principal.id, record.terminal_id, record.expires_at, legacy_enc,
            record.in_person_check,
        )

    @translate_errors
    async def sender_by_ref(self, sender_ref: str) -> tuple[Verdict, datetime | None, SenderParty] | None:
        """The verification behind a sender_ref, with the sender's party."""
        # The sender pattern (many recipients in a window) is counted in the same round trip.
        row = await self._senders.submit(sender_ref)
        if row is None:
            return None
        phone = self._sealer.open(row["phone_enc"], context="phone") if row["phone_enc"] else ""
        party = SenderParty(row["name"], phone, row["document_bidx"], verification_id=row["id"],
                            recent_recipients=row["recent"])
        return Verdict(row["verdict"]), row["expires_at"], party

    async def _lookup_senders(self, conn: asyncpg.Connection, refs: Sequence[str]) -> list[asyncpg.Record | None]:
        rows = await conn.fetch(_SENDERS_MANY, list(refs), self._pattern_days)
        return [None if r["id"] is None else r for r in rows]

    @translate_errors
    async def contract_customer(self, customer_id: str) -> SenderParty | None:
        """A registered contract customer as a sender."""
        try:
            row = await self._pool.fetchrow(
                "SELECT id, name, credit_code_bidx, responsible_bidx, phone_enc FROM contract_customers"
                " WHERE id = $1::uuid", customer_id,
            )
        except asyncpg.DataError:  # not a uuid at all: no such customer
            return None
        if row is None:
            return None
        phone = self._sealer.open(row["phone_enc"], context="phone") if row["phone_enc"] else ""
        # No sender pattern for contract customers: a vetted shipper sending to many recipients is their trade.
        return SenderParty(row["name"], phone, row["responsible_bidx"], contract_customer_id=str(row["id"]),
                           organisation_key=row["credit_code_bidx"])

    @translate_errors
    async def register(self, record: CustomerRecord, actor: Actor) -> tuple[str, datetime]:
        """Stores a contract customer; AlreadyExists if its credit code is registered."""
        s = self._sealer
        phone_enc, phone_bidx = s.seal_optional(record.person_phone_e164, context="phone")
        past = s.blind_indexes("organisation", record.credit_code)[1:]
        # During a key rotation, a customer not yet re-keyed holds its credit code under a past index key.
        if past and await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM contract_customers"
                                              " WHERE credit_code_bidx = ANY($1::bytea[]))", list(past)):
            raise AlreadyExists("this credit code is already registered", field="credit_code")
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO contract_customers (name, credit_code_enc, credit_code_bidx, credit_code_masked,"
                " responsible_type, responsible_enc, responsible_bidx, responsible_masked, responsible_name,"
                " phone_enc, phone_bidx, region_code, address, agreement_no, principal_id)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING id, registered_at",
                record.name, s.seal(record.credit_code, context="organisation"),
                s.blind_index("organisation", record.credit_code), record.credit_code_masked,
                record.person_document_type.value, s.seal(record.person_document_number, context="document"),
                s.blind_index("document", record.person_document_number), record.person_document_masked,
                record.person_name, phone_enc, phone_bidx, record.region_code, record.address,
                record.agreement_no, actor.principal.id,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("this credit code is already registered", field="credit_code") from None
        return str(row["id"]), row["registered_at"]
