"""Ceiling (c): raw asyncpg, one single-row INSERT transaction per call, from 64 tasks."""

from __future__ import annotations

from typing import Any

from bench.ceilings import _lite


class PgInsert(_lite.LiteTableCeiling):
    """Committed single-row inserts per second: the ceiling of one write transaction per call."""

    name = "pg_insert"
    order = 30
    table_suffix = "insert"
    description = "asyncpg single-row INSERT (autocommit), 64 tasks, fsync on"

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        pool, plan, sql = state
        await pool.execute(sql, *_lite.row(plan, i))
        return None


SCENARIO = PgInsert()
