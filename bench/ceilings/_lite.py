"""The shipments-lite table of the asyncpg ceilings: the shape of shipments (uuid key, unique waybill, sealed
phone with its blind index, jsonb goods and inspection, timestamps) without the gateway's logic around it."""

from __future__ import annotations

import os
from typing import Any

import asyncpg

from bench.scenario import BenchContext, Scenario, Worker

COLUMNS = ("waybill_no", "state", "sender_name", "sender_phone_enc", "sender_phone_bidx", "sender_region_code",
           "recipient_name", "recipient_phone_enc", "recipient_phone_bidx", "recipient_region_code", "items",
           "inspection")
INSERT = (f"INSERT INTO {{table}} ({', '.join(COLUMNS)}) VALUES "
          f"({', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))})")
_ITEMS = '[{"description": "书籍", "quantity": 2, "declared_value_fen": 8800, "category": "books", "brand": ""}]'
_INSPECTION = '{"outcome": "INSPECTED", "notes": "", "photos": 0, "inspected_at": null}'


def table_name(ctx: BenchContext, suffix: str) -> str:
    """A table name unique to the run, so a reused database never holds a stale one."""
    return f"bench_lite_{suffix}_{ctx.run_tag.lower()}"


async def create_table(ctx: BenchContext, table: str) -> None:
    """Creates the table with the same kinds of indexes the shipments table carries."""
    conn = await asyncpg.connect(ctx.dsn)
    try:
        await conn.execute(f"""
            CREATE TABLE {table} (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(), waybill_no text NOT NULL UNIQUE,
                state text NOT NULL, sender_name text NOT NULL, sender_phone_enc bytea NOT NULL,
                sender_phone_bidx bytea NOT NULL, sender_region_code text NOT NULL, recipient_name text NOT NULL,
                recipient_phone_enc bytea NOT NULL, recipient_phone_bidx bytea NOT NULL,
                recipient_region_code text NOT NULL, items jsonb NOT NULL, inspection jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX ON {table} (sender_phone_bidx);
            CREATE INDEX ON {table} (recipient_phone_bidx);
            CREATE INDEX ON {table} (created_at);""")
    finally:
        await conn.close()


async def drop_table(ctx: BenchContext, table: str) -> None:
    """Removes the table after the ceiling was measured."""
    conn = await asyncpg.connect(ctx.dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        await conn.close()


def plan(ctx: BenchContext, table: str) -> dict[str, Any]:
    """What each worker needs: the table and a sealed phone (sealing is not what these ceilings measure)."""
    phone, sealer = "+8613800138000", ctx.sealer
    assert sealer is not None
    return {"table": table, "tag": ctx.run_tag, "enc": sealer.seal(phone, context="phone"),
            "bidx": sealer.blind_index("phone", phone)}


def row(p: dict[str, Any], i: int) -> tuple[Any, ...]:
    """Row i: a unique waybill, the rest plausible and constant."""
    return (f"L{p['tag']}{i:012d}", "ACCEPTED", "张伟", p["enc"], p["bidx"], "110101", "李秀英", p["enc"], p["bidx"],
            "310104", _ITEMS, _INSPECTION)


async def open_pool(worker: Worker, size: int) -> asyncpg.Pool:
    """One connection per task of this worker (the ceiling is not limited by a pool)."""
    pool = await asyncpg.create_pool(worker.dsn, min_size=size, max_size=size,
                                     server_settings={"application_name": f"bench-ceiling-{os.getpid()}"})
    assert pool is not None
    return pool


class LiteTableCeiling(Scenario):
    """A raw-asyncpg ceiling writing into its own shipments-lite table; subclasses say how a call writes."""

    server = "postgres"
    unit = "rows"
    open_loop = False
    concurrency = 64
    table_suffix = "lite"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        table = table_name(ctx, self.table_suffix)
        await create_table(ctx, table)
        return plan(ctx, table)

    async def setup(self, worker: Worker) -> Any:
        lanes = max(1, self.concurrency // worker.count)
        return await open_pool(worker, lanes), worker.plan, INSERT.format(table=worker.plan["table"])

    async def teardown(self, state: Any) -> None:
        await state[0].close()

    async def cleanup(self, ctx: BenchContext) -> None:
        await drop_table(ctx, table_name(ctx, self.table_suffix))
