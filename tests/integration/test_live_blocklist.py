"""The live in-memory list against real PostgreSQL: notifications, a lost connection, retirements, compaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.core.model import Actor
from gateway.core.screening import Action, Consignment, EntryKind, Item, Outcome, Party
from gateway.live.blocklist import LiveBlocklist
from gateway.storage.blocklist import BlocklistRepository
from tests.integration.test_blocklist_repository import checked


def parcel(description: str) -> Consignment:
    return Consignment(sender=Party(name="李四"), recipient=Party(name="王五"),
                       items=(Item(description, 1, 1000),))


async def eventually(predicate, seconds: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until predicate() held; fails after the limit."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "the live list did not catch up in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def live(repo: BlocklistRepository, db_dsn: str) -> AsyncIterator[LiveBlocklist]:
    # A long poll interval: what these tests see must come from NOTIFY or the reconnect, not the poll.
    listening = LiveBlocklist(repo, db_dsn, poll_s=300, compact_at=3)
    await listening.start()
    yield listening
    await listening.close()


async def test_a_change_by_another_writer_arrives_by_notification(live, repo, actor) -> None:  # type: ignore[no-untyped-def]
    assert live.screen(parcel("高仿 手表")).outcome is Outcome.PASS
    await repo.add(checked(EntryKind.GOODS_KEYWORD, "高仿"), actor)
    waited = await eventually(lambda: live.screen(parcel("高仿 手表")).outcome is Outcome.HOLD)
    assert waited < 1.0


async def test_a_lost_connection_reconnects_and_catches_up(live, repo, actor, pool) -> None:  # type: ignore[no-untyped-def]
    listener_pid = live._listener.connection.get_server_pid()  # type: ignore[union-attr]
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", listener_pid)
    # Written while this process has no listening connection: its NOTIFY goes to nobody here.
    await repo.add(checked(EntryKind.GOODS_KEYWORD, "复刻", Action.REFUSE), actor)
    await eventually(lambda: live.screen(parcel("复刻 球鞋")).outcome is Outcome.REFUSE, seconds=5.0)
    assert live._listener.connection.get_server_pid() != listener_pid  # type: ignore[union-attr]


async def test_retired_entries_stop_matching_and_compaction_keeps_the_rest(live, repo, actor) -> None:  # type: ignore[no-untyped-def]
    words = ("原单", "一比一", "A货", "最高版本")
    added = [await repo.add(checked(EntryKind.GOODS_KEYWORD, word), actor) for word in words]
    await eventually(lambda: live.version == added[-1].version)
    await repo.retire(added[0].id, "listed in error", actor)
    await eventually(lambda: live.screen(parcel("原单 T恤")).outcome is Outcome.PASS)
    # compact_at=3 made the list fold the delta into a new base; everything else still matches.
    await eventually(lambda: not live._delta_entries)
    for word in ("一比一", "A货", "最高版本"):
        assert live.screen(parcel(f"{word} 包")).outcome is Outcome.HOLD
    assert len(live) == 3


@pytest.fixture
async def actor(repo: BlocklistRepository) -> Actor:
    from gateway.core.model import Principal, Role

    principal = await repo.ensure_principal("live-test")
    return Actor(Principal(principal.id, principal.name, frozenset({Role.REVIEWER})))


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    from gateway.storage.db import create_pool

    created = await create_pool(db_dsn, min_size=1, max_size=4)
    yield created
    await created.close()


@pytest.fixture
def repo(pool: asyncpg.Pool) -> BlocklistRepository:
    from gateway.security.sealing import Sealer, generate_key

    return BlocklistRepository(pool, Sealer(generate_key(), generate_key()))



async def test_an_entry_stops_hitting_at_its_expiry_not_at_the_next_sweep(live, repo, actor) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    stored = await repo.add(checked(EntryKind.GOODS_KEYWORD, "仿冒", Action.HOLD, expires_at=expires), actor)
    await live.catch_up()
    assert live.screen(parcel("仿冒 手表")).outcome is Outcome.HOLD
    while datetime.now(UTC) < expires - timedelta(milliseconds=150):
        assert live.screen(parcel("仿冒 手表")).outcome is Outcome.HOLD
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.01)
    # The poll is five minutes away: the entry stops because its time came ...
    assert live.screen(parcel("仿冒 手表")).outcome is Outcome.PASS
    # ... and the sweep it set off retires it in the database, which every process hears.
    await eventually(lambda: live.version > stored.version)
    assert not (await repo.get(stored.id)).active  # type: ignore[union-attr]
