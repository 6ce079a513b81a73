"""The seed makes real data: sealed values the gateway's keys open, valid numbers, the promised states."""

from __future__ import annotations

from datetime import date

import asyncpg

from bench.seed import SeedPlan, seed
from bench.seeddata import REGIONS
from gateway.core.identity import DocumentType, check_phone, verify_document
from gateway.core.identity.regions import is_known_region
from gateway.security.sealing import Sealer, generate_key


def test_the_kth_accepted_waybill_is_an_accepted_one() -> None:
    plan = SeedPlan("BSTEST-", 95)
    accepted = [n for n in range(95) if plan.state_of(n) == "ACCEPTED"]
    assert plan.accepted_count == len(accepted)
    assert [plan.accepted_waybill(k) for k in range(len(accepted))] == [plan.waybill(n) for n in accepted]


def test_seed_regions_are_known_divisions() -> None:
    assert all(is_known_region(code) for code, _ in REGIONS)


async def test_seeded_rows_are_real(db_dsn: str) -> None:
    sealer = Sealer(generate_key(), generate_key())
    result = await seed(db_dsn, 1_000, sealer, distinct=50, chunk=300, show_progress=False)
    conn = await asyncpg.connect(db_dsn)
    try:
        states = dict(await conn.fetch("SELECT state, count(*) FROM shipments GROUP BY state"))
        events = await conn.fetchval("SELECT count(*) FROM shipment_events")
        row = await conn.fetchrow("SELECT s.recipient_phone_enc, s.recipient_phone_bidx, v.document_enc,"
                                  " v.document_bidx FROM shipments s JOIN sender_verifications v"
                                  " ON v.id = s.sender_verification_id WHERE s.waybill_no = $1",
                                  result.plan.accepted_waybill(3))
        last = await conn.fetchval("SELECT max(seq) FROM shipment_events e JOIN shipments s ON s.id = e.shipment_id"
                                   " WHERE s.waybill_no = $1", result.plan.waybill(9))
    finally:
        await conn.close()
    assert states == {"ACCEPTED": 700, "STORED": 200, "DISPATCHED": 100}
    assert events == result.events == 700 + 200 * 2 + 100 * 3
    assert last == 3  # ACCEPTED, STORED, DISPATCHED
    phone = sealer.open(row["recipient_phone_enc"], context="phone")
    assert check_phone(phone).valid and sealer.blind_index("phone", phone) == row["recipient_phone_bidx"]
    number = sealer.open(row["document_enc"], context="document")
    assert verify_document(DocumentType.RESIDENT_ID, number, today=date.today()).valid
    assert sealer.blind_index("document", number) == row["document_bidx"]
