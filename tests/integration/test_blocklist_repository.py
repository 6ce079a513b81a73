"""BlocklistRepository against a real PostgreSQL: sealing, duplicates, versions, notifications, the live list."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from gateway.commands import blocklist as blocklist_cli
from gateway.core.blocklist import (
    AddEntryCommand,
    ImportLine,
    ListQuery,
    validate_entry,
)
from gateway.core.blocklist_service import BlocklistService
from gateway.core.errors import AlreadyExists, FieldViolation, NotFound, WrongState
from gateway.core.model import Actor
from gateway.core.screening import (
    Action,
    BlocklistIndex,
    Consignment,
    Entry,
    EntryKind,
    Item,
    Outcome,
    Party,
    ScreeningResult,
)
from gateway.security.sealing import Sealer, generate_key
from gateway.settings import load_settings
from gateway.storage.blocklist import BlocklistRepository
from gateway.storage.db import create_pool

ZHANG_ID = "110101199003071233"
PHONE = "13800138000"
CREDIT_CODE = "91110108MA01AB2C38"  # check character computed in test_no_plaintext_numbers_in_blocklist_entries
AGENCY = "上海市市场监督管理局"


def now() -> datetime:
    """The wall clock, as the service is given it."""
    return datetime.now(UTC)


def command(kind: EntryKind, value: str, action: Action = Action.HOLD, **more: object) -> AddEntryCommand:
    """A valid command from the given agency unless overridden."""
    fields: dict[str, object] = {"agency": AGENCY, "case_no": "沪市监案〔2024〕1号"}
    fields.update(more)
    return AddEntryCommand(kind, value, action, **fields)  # type: ignore[arg-type]


class IndexedLiveList:
    """A real live list for tests: a BlocklistIndex rebuilt from load_active on every catch-up."""

    def __init__(self, repo: BlocklistRepository) -> None:
        self._repo = repo
        self._index = BlocklistIndex.build(())
        self._entries: dict[int, Entry] = {}
        self.version = 0
        self.added: list[int] = []

    def screen(self, consignment: Consignment) -> ScreeningResult:
        """Screens against the index as of the last catch-up."""
        return self._index.screen(consignment)

    async def catch_up(self) -> None:
        """Rebuilds from the database."""
        self.version, entries = await self._repo.load_active()
        self._entries = {e.id: e for e in entries}
        self._index = BlocklistIndex.build(entries)

    def entry(self, entry_id: int) -> Entry | None:
        """An active entry as of the last catch-up."""
        return self._entries.get(entry_id)

    def entries_added(self, entry_ids: list[int]) -> None:
        """Remembers what would be re-screened."""
        self.added += entry_ids


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database."""
    made = await create_pool(db_dsn, min_size=1, max_size=4)
    yield made
    await made.close()


@pytest.fixture
def sealer() -> Sealer:
    """Fresh keys."""
    return Sealer(generate_key(), generate_key())


@pytest.fixture
def repo(pool: asyncpg.Pool, sealer: Sealer) -> BlocklistRepository:
    """The repository under test."""
    return BlocklistRepository(pool, sealer)


@pytest.fixture
async def actor(repo: BlocklistRepository) -> Actor:
    """A principal to add entries as."""
    return Actor(await repo.ensure_principal("reviewer-wang"))


def checked(kind: EntryKind, value: str, action: Action = Action.HOLD, **more: object):  # type: ignore[no-untyped-def]
    """A validated entry."""
    return validate_entry(command(kind, value, action, **more), now=now())


async def test_add_seals_a_phone_and_keys_it_like_the_shipments(repo, sealer, actor, pool) -> None:  # type: ignore[no-untyped-def]
    stored = await repo.add(checked(EntryKind.PHONE, "138-0013-8000", Action.REFUSE), actor)
    assert (stored.display_value, stored.action, stored.active, stored.version) == (
        "138****8000", Action.REFUSE, True, 1)
    assert stored.added_by == "reviewer-wang" and stored.source.agency == AGENCY
    row = await pool.fetchrow("SELECT * FROM blocklist_entries WHERE id = $1", stored.id)
    # The same context and canonical form as a verified sender's phone, so the keys meet in screening.
    assert row["match_value"] == row["dedup_key"] == sealer.blind_index("phone", "+86" + PHONE).hex()
    assert sealer.open(row["value_enc"], context="phone") == "+86" + PHONE
    assert await repo.current_version() == 1


async def test_a_duplicate_active_entry_is_already_exists_and_changes_nothing(repo, actor, pool) -> None:  # type: ignore[no-untyped-def]
    await repo.add(checked(EntryKind.GOODS_KEYWORD, "高仿"), actor)
    with pytest.raises(AlreadyExists) as caught:
        await repo.add(checked(EntryKind.GOODS_KEYWORD, " 高 仿 ", Action.REFUSE), actor)
    assert caught.value.field == "value"
    await repo.add(checked(EntryKind.DOCUMENT_NUMBER, ZHANG_ID), actor)
    with pytest.raises(AlreadyExists):  # numbers are compared by their blind index
        await repo.add(checked(EntryKind.DOCUMENT_NUMBER, ZHANG_ID[:6] + " " + ZHANG_ID[6:]), actor)
    assert await pool.fetchval("SELECT count(*) FROM blocklist_entries") == 2
    assert await repo.current_version() == 2  # the failed adds bumped nothing


async def test_retire_keeps_who_and_why_and_frees_the_value(repo, actor) -> None:  # type: ignore[no-untyped-def]
    stored = await repo.add(checked(EntryKind.BRAND_PRICE_FLOOR, "Louis Vuitton", price_floor_fen=300000,
                                    aliases=("LV", "路易威登")), actor)
    assert (stored.aliases, stored.price_floor_fen) == (("LV", "路易威登"), 300000)
    retired = await repo.retire(stored.id, "brand owner withdrew the complaint", actor)
    assert (retired.active, retired.retired_by, retired.retire_reason, retired.version) == (
        False, "reviewer-wang", "brand owner withdrew the complaint", 2)
    assert retired.retired_at is not None
    with pytest.raises(WrongState):
        await repo.retire(stored.id, "again", actor)
    with pytest.raises(NotFound):
        await repo.retire(stored.id + 1000, "no such", actor)
    assert await repo.current_version() == 2
    again = await repo.add(checked(EntryKind.BRAND_PRICE_FLOOR, "louis vuitton", price_floor_fen=250000), actor)
    assert again.id != stored.id and again.active


async def test_list_pages_newest_first_with_filters(repo, actor) -> None:  # type: ignore[no-untyped-def]
    live = IndexedLiveList(repo)
    service = BlocklistService(repo, live, clock=now)
    ids = [(await repo.add(checked(EntryKind.GOODS_KEYWORD, f"仿{i}", agency=f"局{i % 2}"), actor)).id
           for i in range(7)]
    await repo.retire(ids[0], "wrong", actor)
    seen, token = [], ""
    while True:
        page = await service.list_entries(ListQuery(page_size=3, page_token=token))
        seen += [e.id for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    active = await service.list_entries(ListQuery(agency="局0", active=True))
    assert [e.id for e in active.entries] == [ids[6], ids[4], ids[2]]
    inactive = await service.list_entries(ListQuery(active=False, kind=EntryKind.GOODS_KEYWORD))
    assert [e.id for e in inactive.entries] == [ids[0]]
    assert (await service.list_entries(ListQuery(kind=EntryKind.PHONE))).entries == ()


async def test_import_batch_counts_duplicates_and_bumps_once(repo, actor) -> None:  # type: ignore[no-untyped-def]
    await repo.add(checked(EntryKind.GOODS_KEYWORD, "A货"), actor)
    batch = [checked(EntryKind.GOODS_KEYWORD, v) for v in ("复刻", "a货", "原单", "复 刻")]
    written = await repo.import_batch(batch, actor)
    assert [i is not None for i in written.ids] == [True, False, True, False]
    assert written.version == 2
    again = await repo.import_batch(batch[:2], actor)
    assert again.ids == [None, None] and again.version == 2  # nothing new: no version, no notification


async def test_service_import_batches_and_reports_positions(repo, actor, pool) -> None:  # type: ignore[no-untyped-def]
    live = IndexedLiveList(repo)
    service = BlocklistService(repo, live, clock=now, batch_size=2)

    async def source() -> AsyncIterator[AddEntryCommand | ImportLine]:
        yield command(EntryKind.GOODS_KEYWORD, "高仿")
        yield command(EntryKind.PHONE, "12345")
        yield ImportLine(3, None, FieldViolation("price_floor_fen", "is not a whole number"))
        yield command(EntryKind.GOODS_KEYWORD, "高 仿")
        yield command(EntryKind.PERSON_NAME, "王小明")
        yield command(EntryKind.ADDRESS, "310104|漕溪北路 88 号")

    summary = await service.import_entries(source(), actor)
    assert (summary.added, summary.duplicates, summary.rejected_count) == (3, 1, 2)
    assert [(r.position, r.field) for r in summary.rejected] == [(2, "value"), (3, "price_floor_fen")]
    assert summary.version == 2 == live.version  # two batches wrote, and the live list caught up
    assert len(live.added) == 3
    assert await pool.fetchval("SELECT count(DISTINCT version) FROM blocklist_entries") == 2


async def test_changes_since_reports_added_and_retired(repo, actor) -> None:  # type: ignore[no-untyped-def]
    old = await repo.add(checked(EntryKind.GOODS_KEYWORD, "一比一"), actor)
    seen, entries = await repo.load_active()
    assert seen == 1 and [e.id for e in entries] == [old.id]
    new = await repo.add(checked(EntryKind.PHONE, PHONE, Action.REFUSE), actor)
    await repo.retire(old.id, "too broad", actor)
    version, added, retired = await repo.changes_since(seen)
    assert version == 3 and retired == [old.id]
    assert [(e.id, e.kind, e.label, e.action) for e in added] == [
        (new.id, EntryKind.PHONE, "138****8000", Action.REFUSE)]
    assert len(added[0].value) == 64  # the blind index, never the number
    assert await repo.changes_since(version) == (3, [], [])


async def test_expired_entries_leave_the_live_list(repo, actor, pool) -> None:  # type: ignore[no-untyped-def]
    soon = now() + timedelta(hours=1)
    stored = await repo.add(checked(EntryKind.GOODS_KEYWORD, "原单", expires_at=soon), actor)
    keep = await repo.add(checked(EntryKind.GOODS_KEYWORD, "复刻"), actor)
    await pool.execute("UPDATE blocklist_entries SET expires_at = now() - interval '1 second' WHERE id = $1",
                       stored.id)
    version, entries = await repo.load_active()
    assert [e.id for e in entries] == [keep.id]
    later = await repo.add(checked(EntryKind.GOODS_KEYWORD, "一比一"), actor)
    # Its row did not change since `version`, yet the next catch-up reports it retired, being expired.
    version, added, retired = await repo.changes_since(version)
    assert [e.id for e in added] == [later.id] and retired == [stored.id]
    assert await repo.retire_expired() == 1
    assert await repo.current_version() == version + 1  # the sweep is a change other processes hear of
    assert (await repo.get(stored.id)).retire_reason == "expired"  # type: ignore[union-attr]
    assert await repo.retire_expired() == 0 and await repo.current_version() == version + 1


async def test_an_expired_entry_does_not_block_the_same_value(repo, actor, pool) -> None:  # type: ignore[no-untyped-def]
    stored = await repo.add(checked(EntryKind.GOODS_KEYWORD, "原单", expires_at=now() + timedelta(days=1)), actor)
    await pool.execute("UPDATE blocklist_entries SET expires_at = now() - interval '1 day' WHERE id = $1", stored.id)
    again = await repo.add(checked(EntryKind.GOODS_KEYWORD, "原单"), actor)
    assert again.active and not (await repo.get(stored.id)).active  # type: ignore[union-attr]


async def test_listeners_hear_each_new_version(repo, actor, db_dsn) -> None:  # type: ignore[no-untyped-def]
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(db_dsn)
    try:
        await listener.add_listener("blocklist", lambda *args: heard.put_nowait(args[3]))
        stored = await repo.add(checked(EntryKind.GOODS_KEYWORD, "高仿"), actor)
        assert await asyncio.wait_for(heard.get(), 5) == "1"
        with pytest.raises(AlreadyExists):
            await repo.add(checked(EntryKind.GOODS_KEYWORD, "高仿"), actor)
        await repo.import_batch([checked(EntryKind.GOODS_KEYWORD, "A货")], actor)
        await repo.retire(stored.id, "done", actor)
        assert [await asyncio.wait_for(heard.get(), 5) for _ in range(2)] == ["2", "3"]  # none for the failure
    finally:
        await listener.close()


async def test_no_plaintext_numbers_in_blocklist_entries(repo, actor, pool, sealer) -> None:  # type: ignore[no-untyped-def]
    from stdnum.cn import uscc

    code = CREDIT_CODE[:-1] + uscc.calc_check_digit(CREDIT_CODE[:-1])
    for kind, value in ((EntryKind.DOCUMENT_NUMBER, ZHANG_ID), (EntryKind.PHONE, PHONE),
                        (EntryKind.ORGANISATION_CODE, code)):
        await repo.add(checked(kind, value), actor)
    dump = "\n".join(r[0] for r in await pool.fetch("SELECT t::text FROM blocklist_entries t"))
    assert dump.count("\n") == 2  # three rows were read
    for needle in (ZHANG_ID, PHONE, "+86" + PHONE, code, ZHANG_ID[6:14] + ZHANG_ID[14:]):
        assert needle not in dump, f"{needle} stored in plaintext"
    enc = await pool.fetchval("SELECT value_enc FROM blocklist_entries WHERE kind = 'DOCUMENT_NUMBER'")
    assert sealer.open(enc, context="document") == ZHANG_ID


async def test_a_live_index_from_load_active_matches_a_sender_by_blind_index(repo, actor, sealer) -> None:  # type: ignore[no-untyped-def]
    await repo.add(checked(EntryKind.DOCUMENT_NUMBER, ZHANG_ID, Action.REFUSE), actor)
    _, entries = await repo.load_active()
    sender = Party(name="张伟", document_key=sealer.blind_index("document", ZHANG_ID).hex())
    result = BlocklistIndex.build(entries).screen(Consignment(sender, Party(), (Item("书", 1, 100),)))
    assert result.outcome is Outcome.REFUSE
    assert result.hits[0].matched == "110101********1233"  # the masked label, not the number


@pytest.mark.slow
async def test_load_active_streams_a_large_list_quickly(repo, pool) -> None:  # type: ignore[no-untyped-def]
    rows = 100_000
    await pool.execute("INSERT INTO principals (id, name, roles) VALUES (999, 'bulk', '{admin}')")
    await pool.execute(
        "INSERT INTO blocklist_entries (kind, display_value, match_value, dedup_key, action, aliases,"
        " source_agency, added_by, added_by_name, version)"
        " SELECT 'PHONE', '138****' || lpad((g % 10000)::text, 4, '0'), md5(g::text) || md5(g::text),"
        " md5(g::text) || md5(g::text), 'HOLD', '{}', 'bulk', 999, 'bulk', 1 FROM generate_series(1, $1) g", rows)
    started = time.perf_counter()
    _, entries = await repo.load_active()
    elapsed = time.perf_counter() - started
    assert len(entries) == rows and isinstance(entries[-1], Entry)
    assert elapsed < 2.0, f"{rows} entries took {elapsed:.2f} s"  # about 0.3 s here; 1M rows take ~3 s


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "blocklist"


def cli_environment(dsn: str, sealer_keys: tuple[bytes, bytes]) -> dict[str, str]:
    """The environment the command line reads its settings from."""
    data, index = (base64.b64encode(k).decode() for k in sealer_keys)
    return {"DATABASE_URL": dsn, "GATEWAY_DATA_KEY": data, "GATEWAY_INDEX_KEY": index}


async def test_cli_imports_a_csv_and_reports_rejected_lines(db_dsn, pool, capsys) -> None:  # type: ignore[no-untyped-def]
    keys = (generate_key(), generate_key())
    environ = cli_environment(db_dsn, keys)
    status = await asyncio.to_thread(lambda: blocklist_cli.run(FIXTURES / "mixed.csv", environ=environ))
    out = capsys.readouterr().out
    assert status == 0
    assert "added 7, duplicates 1, rejected 7" in out
    rejected = {int(line.split("│")[1]) for line in out.splitlines() if line.startswith("│ ") and
                line.split("│")[1].strip().isdigit()}
    assert rejected == {8, 9, 11, 15, 16, 17, 18}  # line 13 spans two lines and is kept; 12 is blank
    rows = await pool.fetch("SELECT kind, display_value, value_enc, added_by_name FROM blocklist_entries")
    assert len(rows) == 7 and {r["added_by_name"] for r in rows} == {"blocklist-import"}
    phone = next(r for r in rows if r["kind"] == "PHONE")
    assert phone["display_value"] == "138****8000"
    assert Sealer(*keys).open(phone["value_enc"], context="phone") == "+86" + PHONE
    assert await pool.fetchval("SELECT version FROM blocklist_version") == 1  # one batch, one change


async def test_cli_imports_jsonl_line_by_line(db_dsn, pool, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(cli_environment(db_dsn, (generate_key(), generate_key())))
    summary = await blocklist_cli.run_import(FIXTURES / "mixed.jsonl", settings, principal="import-job",
                                             batch_size=2)
    assert (summary.added, summary.duplicates) == (5, 1)
    assert [(r.position, r.field) for r in summary.rejected] == [
        (7, "expiry"), (8, ""), (9, ""), (10, "price_floor_fen")]
    assert summary.version == await pool.fetchval("SELECT version FROM blocklist_version") == 3
    aliases = await pool.fetchval("SELECT aliases FROM blocklist_entries WHERE kind = 'PERSON_NAME'")
    assert aliases == ["Wang Xiaoming", "王晓明"]


async def test_cli_refuses_bad_settings_and_unreadable_files(db_dsn, pool, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    env = cli_environment(db_dsn, (generate_key(), generate_key()))
    sample = str(FIXTURES / "mixed.csv")
    assert blocklist_cli.run(sample, environ={**env, "GATEWAY_INDEX_KEY": ""}) == 2
    assert blocklist_cli.run(str(tmp_path / "missing.csv"), environ=env) == 2
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("kind,value,action,agency,expiry\nGOODS_KEYWORD,高仿,HOLD,局,2030-01-01\n", encoding="utf-8")
    assert await asyncio.to_thread(lambda: blocklist_cli.run(wrong, environ=env)) == 2
    err = capsys.readouterr().err
    assert "GATEWAY_INDEX_KEY" in err and "expiry" in err
    assert await pool.fetchval("SELECT count(*) FROM blocklist_entries") == 0
