"""Ceiling (d): raw asyncpg executemany in batches of 100 rows (one transaction per batch), from 64 tasks."""

from __future__ import annotations

from typing import Any

from bench.ceilings import _lite
from bench.scenario import BenchContext, Scenario, Worker

TASKS = 64
BATCH = 100


class PgBatch(Scenario):
    """Rows per second when the commits are shared by a hundred rows: what batching could reach."""

    name = "pg_batch"
    server = "postgres"
    unit = "rows"
    units_per_call = BATCH
    open_loop = False
    order = 40
    concurrency = TASKS
    description = f"asyncpg executemany, {BATCH} rows per batch, {TASKS} tasks, fsync on"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        table = _lite.table_name(ctx, "batch")
        await _lite.create_table(ctx, table)
        return _lite.plan(ctx, table)

    async def setup(self, worker: Worker) -> Any:
        lanes = max(1, TASKS // worker.count)
        return await _lite.open_pool(worker, lanes), worker.plan, _lite.INSERT.format(table=worker.plan["table"])

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        pool, plan, sql = state
        await pool.executemany(sql, [_lite.row(plan, i * BATCH + k) for k in range(BATCH)])
        return None

    async def teardown(self, state: Any) -> None:
        await state[0].close()

    async def cleanup(self, ctx: BenchContext) -> None:
        await _lite.drop_table(ctx, _lite.table_name(ctx, "batch"))


SCENARIO = PgBatch()
