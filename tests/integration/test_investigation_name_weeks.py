"""A name searched within a window goes through migration 011's week-keyed index and finds exactly what the
plain name index and a time filter find: same rows, week boundaries included, and PostgreSQL's week numbers are
the repository's."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.seed_history import seed_history
from gateway.core.investigation import SearchQuery, name_query_keys
from gateway.security.sealing import Sealer, generate_key
from gateway.storage import investigation as sql
from gateway.storage.db import create_pool
from gateway.storage.investigation import MAX_NAME_WEEKS, InvestigationRepository, name_week_keys

WEEK = timedelta(days=7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_a_window_touches_the_weeks_it_overlaps_and_a_long_one_none() -> None:
    start = EPOCH + 2900 * WEEK  # a week's first microsecond
    assert name_week_keys(("zanwei",), start, start + WEEK) == ["zanwei@2900"]  # the end is excluded
    assert name_week_keys(("zanwei",), start - timedelta(microseconds=1), start + WEEK) == ["zanwei@2899",
                                                                                            "zanwei@2900"]
    assert name_week_keys(("a", "b"), start + timedelta(days=3), start + timedelta(days=33)) == [
        f"{k}@{w}" for k in ("a", "b") for w in range(2900, 2905)]
    assert name_week_keys(("a",), start, start + MAX_NAME_WEEKS * WEEK) is not None
    assert name_week_keys(("a",), start, start + MAX_NAME_WEEKS * WEEK + timedelta(microseconds=1)) is None
    assert name_week_keys(("a",), start, None) is None and name_week_keys(("a",), start, start) is None


async def test_postgresql_numbers_the_weeks_as_the_repository_does(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        for at in (EPOCH + 2900 * WEEK + timedelta(microseconds=d) for d in (-1, 0, 1, 86_400_000_000 * 3)):
            found = await conn.fetchval("SELECT shipment_name_weeks(ARRAY['k'], $1)", at)
            assert found == name_week_keys(("k",), at, at + timedelta(microseconds=1)), at
    finally:
        await conn.close()


async def test_a_windowed_name_search_finds_what_the_plain_index_does_through_the_week_index(db_dsn: str) -> None:
    sealer = Sealer(generate_key(), generate_key())
    seeded = await seed_history(db_dsn, 3_000, sealer, workers=2, show_progress=False, check=0)
    rng = random.Random(11)
    pool = await create_pool(db_dsn, min_size=1, max_size=2)
    conn = await asyncpg.connect(db_dsn)
    try:
        repo = InvestigationRepository(pool, sealer)
        compared = 0
        for probe in rng.sample(seeded.probes, 40):
            keys = name_query_keys(probe.name)
            start = seeded.plan.start + timedelta(days=rng.uniform(0, 330))
            start = EPOCH + (start - EPOCH) // WEEK * WEEK if compared % 4 == 0 else start  # on a week boundary
            end = start + timedelta(days=rng.choice((1, 7, 30, 90)))
            found, _ = await repo.search(SearchQuery(name_keys=keys, from_time=start, to_time=end, limit=500))
            expected = await conn.fetch(
                "SELECT id::text AS id FROM shipments s WHERE (s.sender_name_keys && $1::text[] OR"
                " s.recipient_name_keys && $1::text[]) AND s.created_at >= $2 AND s.created_at < $3"
                " ORDER BY s.created_at DESC, s.id DESC", list(keys), start, end)
            assert [x.shipment_id for x in found] == [r["id"] for r in expected], probe.name
            compared += len(expected)
        assert compared >= 10  # the windows held shipments, not only empty answers

        where, args = sql._conditions(SearchQuery(name_keys=keys, from_time=start, to_time=end))
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(
            f"EXPLAIN SELECT s.id FROM shipments s WHERE {' AND '.join(where)}", *args))
        assert "shipments_sender_name_week" in plan and "shipments_recipient_name_week" in plan, plan
    finally:
        await conn.close()
        await pool.close()
