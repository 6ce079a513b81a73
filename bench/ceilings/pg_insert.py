"""Ceiling (c): raw asyncpg, one single-row INSERT transaction per call, from 64 tasks."""

from __future__ import annotations

from typing import Any

from bench.ceilings import _lite
from bench.scenario import BenchContext, Scenario, Worker

TASKS = 64


class PgInsert(Scenario):
    """Committed single-row inserts per second: the ceiling of one write transaction per call."""

    name = "pg_insert"
    server = "postgres"
    unit = "rows"
    open_loop = False
    order = 30
    concurrency = TASKS
    description = f"asyncpg single-row INSERT (autocommit), {TASKS} tasks, fsync on"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        table = _lite.table_name(ctx, "insert")
        await _lite.create_table(ctx, table)
        return _lite.plan(ctx, table)

    async def setup(self, worker: Worker) -> Any:
        lanes = max(1, TASKS // worker.count)
        return await _lite.open_pool(worker, lanes), worker.plan, _lite.INSERT.format(table=worker.plan["table"])

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        pool, plan, sql = state
        await pool.execute(sql, *_lite.row(plan, i))
        return None

    async def teardown(self, state: Any) -> None:
        await state[0].close()

    async def cleanup(self, ctx: BenchContext) -> None:
        await _lite.drop_table(ctx, _lite.table_name(ctx, "insert"))


SCENARIO = PgInsert()
