"""The migrations against an empty database, and the append-only history."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.storage.db import migrate, migration_files
from tests.conftest import with_database


async def test_migrations_apply_to_an_empty_database_once(pg_dsn: str) -> None:
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute("DROP DATABASE IF EXISTS courier_migration_check WITH (FORCE)")
    await admin.execute("CREATE DATABASE courier_migration_check")
    dsn = with_database(pg_dsn, "courier_migration_check")
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate(conn)
        assert applied == [f"{n:03d}_{name}" for n, name, _ in migration_files()]
        assert await migrate(conn) == []
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"shipments", "shipment_events", "sender_verifications", "principals", "api_tokens"} <= tables
    finally:
        await conn.close()
        await admin.execute("DROP DATABASE courier_migration_check WITH (FORCE)")
        await admin.close()


async def test_events_are_append_only(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        pid = await conn.fetchval("INSERT INTO principals (name, roles) VALUES ('p', '{terminal}') RETURNING id")
        # A shipment needs a sender; the trigger is what is under test, so insert through a verification.
        vid = await conn.fetchval(
            "INSERT INTO sender_verifications (verdict, document_type, document_masked, name, authority_result,"
            " principal_id, terminal_id) VALUES ('VERIFIED', 'RESIDENT_ID', 'x', 'n', 'NOT_CHECKED', $1, 't')"
            " RETURNING id", pid)
        sid = await conn.fetchval(
            "INSERT INTO shipments (waybill_no, idempotency_key, request_digest, decision, state, sender_name,"
            " sender_region_code, sender_address, recipient_name, recipient_phone_enc, recipient_phone_bidx,"
            " recipient_phone_masked, recipient_region_code, recipient_address, items, inspection, terminal_id,"
            " principal_id, sender_verification_id) VALUES ('WB00000001', 'key-00000001', '\\x00', 'ACCEPTED',"
            " 'ACCEPTED', 's', '110101', 'a', 'r', '\\x00', '\\x00', 'm', '110101', 'a', '[]', '{}', 't', $1, $2)"
            " RETURNING id", pid, vid)
        await conn.execute(
            "INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, to_state, principal_id, principal)"
            " VALUES ($1, now(), 1, 'ACCEPTED', 'ACCEPTED', $2, 'p')", sid, pid)
        for statement in ("UPDATE shipment_events SET note = 'changed'", "DELETE FROM shipment_events",
                          "TRUNCATE shipment_events CASCADE", "DELETE FROM sender_verifications"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT note FROM shipment_events") == ""
    finally:
        await conn.close()
