"""The re-keying walk against a real PostgreSQL: a row a gateway holds is re-keyed once it is let go and keeps
the gateway's write; an interrupted rotation keeps its finished batches and a second run completes it; a blind
index no configured key gives is reported and left, never laundered."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from bench.seed import seed
from gateway.commands.keys import TABLES, Walker
from gateway.security.sealing import Sealer
from gateway.storage.db import create_pool

A_DATA, A_INDEX, B_DATA, B_INDEX = (os.urandom(32) for _ in range(4))
A = Sealer(A_DATA, A_INDEX)


class Interrupted(Exception):
    """An operator's Ctrl-C, between two batches."""


@pytest.fixture
async def seeded(db_dsn: str) -> str:
    await seed(db_dsn, 12, A, show_progress=False, distinct=4)
    return db_dsn


async def _walk(dsn: str, sealer: Sealer, *, write: bool, batch: int = 5, **kw: Any) -> dict[str, Any]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        walker = Walker(pool, sealer, write=write, batch=batch, **kw)
        return {spec.table: await walker.walk(spec) for spec in TABLES}
    finally:
        await pool.close()


async def test_a_held_row_is_rekeyed_once_released_and_keeps_the_concurrent_write(seeded: str) -> None:
    new = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA], past_index_keys=[A_INDEX])
    gateway = await asyncpg.connect(seeded)
    try:
        waybill = await gateway.fetchval("SELECT waybill_no FROM shipments ORDER BY id LIMIT 1")
        tx = gateway.transaction()
        await tx.start()  # a gateway moving the parcel holds its row
        await gateway.execute("UPDATE shipments SET state = 'STORED' WHERE waybill_no = $1", waybill)
        walking = asyncio.create_task(_walk(seeded, new, write=True))
        await asyncio.sleep(1.0)
        assert not walking.done()  # every other row is done; the held one waits for the gateway
        await tx.commit()
        reports = await asyncio.wait_for(walking, 30)
    finally:
        await gateway.close()
    assert reports["shipments"].rekeyed == 12 and reports["shipments"].busy == []
    conn = await asyncpg.connect(seeded)
    try:
        row = await conn.fetchrow("SELECT state, recipient_phone_enc FROM shipments WHERE waybill_no = $1", waybill)
    finally:
        await conn.close()
    assert row["state"] == "STORED"  # the gateway's write is kept
    assert new.is_current(bytes(row["recipient_phone_enc"]))
    after = await _walk(seeded, new, write=False)
    assert set(after["shipments"].data) == {new.data_key_id} and set(after["shipments"].index) == {new.index_key_id}


async def test_an_interrupted_rotation_keeps_its_batches_and_a_second_run_completes_it(seeded: str) -> None:
    new = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA], past_index_keys=[A_INDEX])
    batches = 0

    def stop_after_two(table: str, n: int) -> None:
        nonlocal batches
        batches += table == "shipments"
        if batches == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        await _walk(seeded, new, write=True, batch=4, advance=stop_after_two)
    midway = await _walk(seeded, new, write=False)
    assert midway["shipments"].data == {new.data_key_id: 16, A.data_key_id: 8}  # 2 batches of 4, 2 values each
    assert midway["sender_verifications"].index == {new.index_key_id: 8}  # walked before: all done
    done = await _walk(seeded, new, write=True)
    assert done["shipments"].rekeyed == 4
    final = await _walk(seeded, new, write=False)
    assert set(final["shipments"].data) == {new.data_key_id} and set(final["shipments"].index) == {new.index_key_id}


async def test_an_index_no_key_gives_is_reported_and_left(seeded: str) -> None:
    new = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA], past_index_keys=[A_INDEX])
    conn = await asyncpg.connect(seeded)
    try:
        forged = os.urandom(32)
        victim = await conn.fetchval("UPDATE shipments SET recipient_phone_bidx = $1 WHERE id = (SELECT id"
                                     " FROM shipments ORDER BY id LIMIT 1) RETURNING id", forged)
        reports = await _walk(seeded, new, write=True)
        assert reports["shipments"].index["unknown"] == 1
        assert any(str(victim) in p and "recipient_phone_bidx" in p for p in reports["shipments"].problems)
        assert bytes(await conn.fetchval("SELECT recipient_phone_bidx FROM shipments WHERE id = $1", victim)) == forged
    finally:
        await conn.close()


async def test_during_a_rotation_a_number_listed_under_the_past_key_is_a_duplicate_and_still_matches(
        db_dsn: str) -> None:
    from gateway.core.blocklist import AddEntryCommand, validate_entry
    from gateway.core.errors import AlreadyExists
    from gateway.core.model import Actor
    from gateway.core.screening import Action, BlocklistIndex, Consignment, EntryKind, Party
    from gateway.storage.blocklist import BlocklistRepository

    def phone(number: str) -> Any:
        return validate_entry(AddEntryCommand(EntryKind.PHONE, number, Action.HOLD, agency="市场监管局"),
                              now=datetime.now(UTC))

    new = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA], past_index_keys=[A_INDEX])
    pool = await create_pool(db_dsn, min_size=1, max_size=2)
    try:
        before, during = BlocklistRepository(pool, A), BlocklistRepository(pool, new)
        actor = Actor(await before.ensure_principal("reviewer-wang"))
        listed = await before.add(phone("13700137000"), actor)
        with pytest.raises(AlreadyExists):
            await during.add(phone("137 0013 7000"), actor)
        written = await during.import_batch([phone("13700137000"), phone("13700137001")], actor)
        assert written.ids[0] is None and written.ids[1] is not None
        # The entry not yet re-keyed matches a party keyed with the current key, and one keyed with the old.
        _, entries = await during.load_active()
        index = BlocklistIndex.build(entries)
        for sealer in (new, A):
            party = Party(phone_key=sealer.blind_index("phone", "+8613700137000").hex())
            hits = index.screen(Consignment(Party(), party, ())).hits
            assert [h.entry_id for h in hits] == [listed.id]
        # Without the past key, the old entry's key no longer meets the current key's.
        _, plain = await BlocklistRepository(pool, Sealer(B_DATA, B_INDEX)).load_active()
        party = Party(phone_key=new.blind_index("phone", "+8613700137000").hex())
        assert not BlocklistIndex.build(plain).screen(Consignment(Party(), party, ())).hits
    finally:
        await pool.close()
