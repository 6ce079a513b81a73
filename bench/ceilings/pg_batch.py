"""Ceiling (d): raw asyncpg executemany in batches of 100 rows, from 64 tasks."""

from __future__ import annotations

from typing import Any

from bench.ceilings import _lite

BATCH = 100


class PgBatch(_lite.LiteTableCeiling):
    """Rows per second when the commits are shared by a hundred rows: what batching could reach."""

    name = "pg_batch"
    units_per_call = BATCH
    order = 40
    table_suffix = "batch"
    description = f"asyncpg executemany, {BATCH} rows per batch, 64 tasks, fsync on"

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        pool, plan, sql = state
        await pool.executemany(sql, [_lite.row(plan, i * BATCH + k) for k in range(BATCH)])
        return None


SCENARIO = PgBatch()
