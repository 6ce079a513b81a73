"""Read-only queries for the admin commands' tables: tokens, contract customers, migrations. No secrets, no
plaintext numbers: a token is its row (never its hash), a customer its masked numbers."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def tokens(conn: asyncpg.Connection, *, name: str | None = None) -> list[asyncpg.Record]:
    """Every token (or one principal's), oldest first, with its principal's name, roles and state."""
    return list(await conn.fetch(
        "SELECT t.id, p.name, p.roles, t.created_at, t.expires_at, t.revoked_at, p.disabled_at"
        " FROM api_tokens t JOIN principals p ON p.id = t.principal_id"
        " WHERE $1::text IS NULL OR p.name = $1 ORDER BY t.id", name))


_CUSTOMER = ("SELECT c.id, c.name, c.credit_code_masked, c.responsible_type, c.responsible_masked,"
             " c.responsible_name, c.region_code, c.address, c.agreement_no, c.registered_at,"
             " c.phone_enc IS NOT NULL AS has_phone, p.name AS registered_by,"
             " (SELECT count(*) FROM shipments s WHERE s.contract_customer_id = c.id) AS parcels"
             " FROM contract_customers c JOIN principals p ON p.id = c.principal_id")


async def customers(conn: asyncpg.Connection, *, name: str | None = None) -> list[asyncpg.Record]:
    """Contract customers, newest first; name: those whose name contains it."""
    return list(await conn.fetch(
        f"{_CUSTOMER} WHERE $1::text IS NULL OR strpos(c.name, $1) > 0 ORDER BY c.registered_at DESC, c.id",
        name))


async def customer(conn: asyncpg.Connection, key: str) -> list[asyncpg.Record]:
    """The customers whose id is key, or else whose name is key exactly (names need not be unique)."""
    try:
        rows = await conn.fetch(f"{_CUSTOMER} WHERE c.id = $1::uuid", key)
    except asyncpg.DataError:  # not a uuid: a name
        rows = []
    if not rows:
        rows = await conn.fetch(f"{_CUSTOMER} WHERE c.name = $1 ORDER BY c.registered_at", key)
    return list(rows)


async def customer_parcels(conn: asyncpg.Connection, customer_id: object) -> list[asyncpg.Record]:
    """A customer's parcels by state, with the newest acceptance of each."""
    return list(await conn.fetch(
        "SELECT state, count(*) AS parcels, max(created_at) AS newest FROM shipments"
        " WHERE contract_customer_id = $1 GROUP BY state ORDER BY state", customer_id))


async def applied_migrations(conn: asyncpg.Connection) -> dict[int, tuple[str, datetime]]:
    """version -> (name, applied at) of every migration the database recorded; empty before the first."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    return {r["version"]: (r["name"], r["applied_at"])
            for r in await conn.fetch("SELECT version, name, applied_at FROM schema_migrations")}
