"""Group commit against real PostgreSQL: batches form under load, commit before answering, fail alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from gateway.storage.batching import GroupCommitLane
from gateway.storage.db import create_pool


async def _setup(dsn: str) -> asyncpg.Pool:
    pool = await create_pool(dsn, min_size=2, max_size=4)
    await pool.execute("CREATE TABLE gc (id int PRIMARY KEY, v int NOT NULL CHECK (v >= 0))")
    return pool


async def test_concurrent_submits_share_transactions_and_are_committed(db_dsn: str) -> None:
    pool = await _setup(db_dsn)
    batches: list[int] = []

    async def write(conn: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        await conn.executemany("INSERT INTO gc (id, v) VALUES ($1, $1)", [(i,) for i in items])
        return [i * 10 for i in items]

    lane: GroupCommitLane[int, int] = GroupCommitLane(pool, write, max_batch=16, writers=1)
    results = await asyncio.gather(*(lane.submit(i) for i in range(100)))
    assert results == [i * 10 for i in range(100)]
    assert sum(batches) == 100 and max(batches) == 16 and len(batches) < 100
    # Answered only after commit: another connection sees every row.
    assert await pool.fetchval("SELECT count(*) FROM gc") == 100
    await pool.close()


async def test_a_bad_item_fails_alone(db_dsn: str) -> None:
    pool = await _setup(db_dsn)

    async def write(conn: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        await conn.executemany("INSERT INTO gc (id, v) VALUES ($1, $2)", [(abs(i), i) for i in items])
        return list(items)

    lane: GroupCommitLane[int, int] = GroupCommitLane(pool, write, max_batch=64, writers=1)
    results = await asyncio.gather(*(lane.submit(i) for i in [1, 2, -3, 4, 5]), return_exceptions=True)
    assert results[:2] == [1, 2] and results[3:] == [4, 5]
    assert isinstance(results[2], asyncpg.CheckViolationError)
    assert sorted(r["id"] for r in await pool.fetch("SELECT id FROM gc")) == [1, 2, 4, 5]
    await pool.close()


async def test_a_cancelled_caller_does_not_cancel_the_shared_write(db_dsn: str) -> None:
    pool = await _setup(db_dsn)
    started = asyncio.Event()

    async def write(conn: asyncpg.Connection, items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.sleep(0.2)
        await conn.executemany("INSERT INTO gc (id, v) VALUES ($1, $1)", [(i,) for i in items])
        return list(items)

    lane: GroupCommitLane[int, int] = GroupCommitLane(pool, write, max_batch=8, writers=1)
    caller = asyncio.ensure_future(lane.submit(7))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0.4)
    assert await pool.fetchval("SELECT count(*) FROM gc WHERE id = 7") == 1
    await pool.close()
