"""courier.v1.Blocklist through a real gateway: real server, real port, real PostgreSQL, a real index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import cv2
import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import acceptance_pb2, blocklist_pb2, blocklist_pb2_grpc, common_pb2
from gateway import server as gateway_server
from gateway.core.blocklist_service import BlocklistService
from gateway.core.model import Role
from gateway.rpc.servicers.blocklist import BlocklistServicer
from gateway.security.sealing import Sealer
from gateway.settings import Settings
from gateway.storage.blocklist import BlocklistRepository
from tests.conftest import RunningGateway, make_tokens
from tests.e2e.requests import ZHANG, bad_fields
from tests.integration.test_blocklist_repository import IndexedLiveList

R, A = Role.REVIEWER, Role.ADMIN
METHODS = ("AddEntry", "RetireEntry", "GetEntry", "ListEntries", "ImportEntries", "Screen")
AGENCY = "上海市市场监督管理局"


@dataclass
class BlocklistGateway:
    """A running gateway with the Blocklist service and its stub."""

    running: RunningGateway
    stub: blocklist_pb2_grpc.BlocklistStub

    def md(self, *roles: Role) -> tuple[tuple[str, str], ...]:
        """Call metadata for a principal with these roles."""
        return self.running.md(*roles)


def utc_now() -> datetime:
    """The service's clock."""
    return datetime.now(UTC)


async def _add_blocklist(built: gateway_server.Gateway, settings: Settings) -> None:
    """What server.py is to do until it does: the servicer over the repository and a real index."""
    sealer = Sealer(settings.data_key, settings.index_key)
    repo = BlocklistRepository(built.pool, sealer)
    live = IndexedLiveList(repo)
    await live.catch_up()
    servicer = BlocklistServicer(BlocklistService(repo, live, clock=utc_now, blind_index=sealer.blind_index))
    blocklist_pb2_grpc.add_BlocklistServicer_to_server(servicer, built.server)


@pytest.fixture
async def blocklist(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BlocklistGateway]:
    """The gateway of create_server, with the Blocklist servicer added before it starts if server.py has not."""
    for method in METHODS:
        monkeypatch.setitem(gateway_server.ROLE_TABLE, f"/courier.v1.Blocklist/{method}", frozenset({R, A}))
    built = await gateway_server.create_server(settings)
    if "courier.v1.Blocklist" not in gateway_server.SERVICE_NAMES:
        await _add_blocklist(built, settings)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    running = RunningGateway(built.port, channel, settings, await make_tokens(settings.database_url))
    try:
        yield BlocklistGateway(running, blocklist_pb2_grpc.BlocklistStub(channel))
    finally:
        await channel.close()
        await built.stop(0.5)


def add(kind: str, value: str, action: str = "REFUSE", **more: object) -> blocklist_pb2.AddEntryRequest:
    """An AddEntryRequest from a market regulator."""
    return blocklist_pb2.AddEntryRequest(
        kind=blocklist_pb2.EntryKind.Value(f"ENTRY_KIND_{kind}"), value=value,
        action=blocklist_pb2.EntryAction.Value(f"ENTRY_ACTION_{action}"),
        source=blocklist_pb2.EntrySource(agency=AGENCY, case_no="沪市监案〔2024〕7号"), **more)


def screen(**fields: object) -> blocklist_pb2.ScreenRequest:
    """A ScreenRequest with one line of goods unless told otherwise."""
    defaults: dict[str, object] = {
        "sender_name": "王小明",
        "items": [acceptance_pb2.Item(description="运动鞋", quantity=1, declared_value_fen=9900)]}
    defaults.update(fields)
    return blocklist_pb2.ScreenRequest(**defaults)


async def count_entries(b: BlocklistGateway) -> int:
    """Rows in blocklist_entries, read directly."""
    conn = await asyncpg.connect(b.running.settings.database_url)
    try:
        found: int = await conn.fetchval("SELECT count(*) FROM blocklist_entries")
        return found
    finally:
        await conn.close()


async def test_add_entry_with_bad_fields_names_each_and_writes_nothing(blocklist) -> None:  # type: ignore[no-untyped-def]
    past = Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    bad = blocklist_pb2.AddEntryRequest(
        kind=blocklist_pb2.ENTRY_KIND_PHONE, value="12345", expires_at=past, aliases=["x"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.AddEntry(bad, metadata=blocklist.md(R))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_fields(caught.value)
    assert set(fields) == {"action", "source.agency", "expires_at", "aliases", "value"}
    assert "digits" in fields["value"] or "number" in fields["value"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.AddEntry(add("BRAND_PRICE_FLOOR", "Gucci"), metadata=blocklist.md(A))
    assert bad_fields(caught.value) == {"price_floor_fen": "is required for BRAND_PRICE_FLOOR"}
    assert await count_entries(blocklist) == 0


async def test_add_get_and_duplicate(blocklist) -> None:  # type: ignore[no-untyped-def]
    entry = await blocklist.stub.AddEntry(add("PHONE", "+86 138 0013 8000"), metadata=blocklist.md(R))
    assert (entry.value, entry.active, entry.version, entry.added_by) == ("138****8000", True, 1, "test-reviewer")
    assert entry.source.agency == AGENCY and not entry.HasField("expires_at")
    got = await blocklist.stub.GetEntry(blocklist_pb2.GetEntryRequest(id=entry.id), metadata=blocklist.md(A))
    assert got == entry
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.AddEntry(add("PHONE", "13800138000", "HOLD"), metadata=blocklist.md(R))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.GetEntry(blocklist_pb2.GetEntryRequest(id=entry.id + 1), metadata=blocklist.md(R))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_terminals_may_not_touch_the_blocklist(blocklist) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.AddEntry(add("GOODS_KEYWORD", "高仿"), metadata=blocklist.md(Role.TERMINAL))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await count_entries(blocklist) == 0


async def test_import_keeps_the_good_and_reports_the_bad(blocklist) -> None:  # type: ignore[no-untyped-def]
    async def requests() -> AsyncIterator[blocklist_pb2.AddEntryRequest]:
        yield add("GOODS_KEYWORD", "高仿")
        yield add("DOCUMENT_NUMBER", "110101199003071234")  # wrong check character
        yield add("BRAND_PRICE_FLOOR", "Louis Vuitton", aliases=["LV", "路易威登"], price_floor_fen=300000)
        yield add("GOODS_KEYWORD", "高 仿")  # the same keyword once normalised
        yield add("ADDRESS", "999999|某路 1 号")
        yield add("DOCUMENT_NUMBER", ZHANG["number"], "HOLD")

    summary = await blocklist.stub.ImportEntries(requests(), metadata=blocklist.md(A))
    assert (summary.added, summary.duplicates) == (3, 1)
    assert [(r.position, r.field) for r in summary.rejected] == [(2, "value"), (5, "value")]
    assert "region 999999" in summary.rejected[1].reason
    assert summary.version == 1  # one batch, one change
    # The import caught the live list up before answering: the very next screen sees the new entries.
    answer = await blocklist.stub.Screen(screen(sender_document_number=ZHANG["number"]), metadata=blocklist.md(R))
    assert answer.version == 1 and [h.field for h in answer.hits] == ["sender.document_key"]
    listed = await blocklist.stub.ListEntries(blocklist_pb2.ListEntriesRequest(), metadata=blocklist.md(R))
    assert [e.value for e in listed.entries] == ["110101********1233", "Louis Vuitton", "高仿"]
    assert list(listed.entries[1].aliases) == ["LV", "路易威登"]


async def test_list_pages_newest_first_and_filters(blocklist) -> None:  # type: ignore[no-untyped-def]
    ids = [(await blocklist.stub.AddEntry(add("GOODS_KEYWORD", word), metadata=blocklist.md(R))).id
           for word in ("高仿", "A货", "一比一", "复刻", "原单")]
    await blocklist.stub.RetireEntry(blocklist_pb2.RetireEntryRequest(id=ids[1], reason="too broad"),
                                     metadata=blocklist.md(R))
    pages, token = [], ""
    while True:
        page = await blocklist.stub.ListEntries(
            blocklist_pb2.ListEntriesRequest(page_size=2, page_token=token), metadata=blocklist.md(R))
        pages.append([e.id for e in page.entries])
        token = page.next_page_token
        if not token:
            break
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    active = await blocklist.stub.ListEntries(
        blocklist_pb2.ListEntriesRequest(active=True, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD),
        metadata=blocklist.md(R))
    assert ids[1] not in [e.id for e in active.entries] and len(active.entries) == 4
    for bad in (blocklist_pb2.ListEntriesRequest(page_token="not-a-token"),
                blocklist_pb2.ListEntriesRequest(page_size=1001)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await blocklist.stub.ListEntries(bad, metadata=blocklist.md(R))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(bad_fields(caught.value)) <= {"page_token", "page_size"}


async def test_screen_explains_a_keyword_hit_and_retire_ends_it(blocklist) -> None:  # type: ignore[no-untyped-def]
    entry = await blocklist.stub.AddEntry(add("GOODS_KEYWORD", "高仿"), metadata=blocklist.md(R))
    request = screen(items=[acceptance_pb2.Item(description="高仿 运动鞋", quantity=2, declared_value_fen=9900)])
    answer = await blocklist.stub.Screen(request, metadata=blocklist.md(R))
    assert answer.outcome == common_pb2.SCREENING_OUTCOME_REFUSE and answer.version == entry.version
    [hit] = answer.hits
    assert (hit.entry_id, hit.kind, hit.field, hit.matched) == (entry.id, "GOODS_KEYWORD", "items[0].description",
                                                                "高仿")
    assert f"entry {entry.id}" in hit.explanation and "高仿" in hit.explanation
    retired = await blocklist.stub.RetireEntry(
        blocklist_pb2.RetireEntryRequest(id=entry.id, reason="list reviewed"), metadata=blocklist.md(A))
    assert (retired.active, retired.retired_by, retired.retire_reason) == (False, "test-admin", "list reviewed")
    assert retired.version == entry.version + 1
    after = await blocklist.stub.Screen(request, metadata=blocklist.md(R))
    assert after.outcome == common_pb2.SCREENING_OUTCOME_PASS and not after.hits
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.RetireEntry(blocklist_pb2.RetireEntryRequest(id=entry.id, reason="again"),
                                         metadata=blocklist.md(A))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_screen_matches_numbers_by_blind_index_and_never_shows_them(blocklist) -> None:  # type: ignore[no-untyped-def]
    await blocklist.stub.AddEntry(add("DOCUMENT_NUMBER", ZHANG["number"]), metadata=blocklist.md(R))
    answer = await blocklist.stub.Screen(screen(
        sender_document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, sender_document_number=ZHANG["number"]),
        metadata=blocklist.md(R))
    assert answer.outcome == common_pb2.SCREENING_OUTCOME_REFUSE
    assert [h.field for h in answer.hits] == ["sender.document_key"]
    assert answer.hits[0].matched == "110101********1233"
    assert ZHANG["number"] not in str(answer)
    other = await blocklist.stub.Screen(screen(sender_document_number="310104198511124567"),
                                        metadata=blocklist.md(R))
    assert other.outcome == common_pb2.SCREENING_OUTCOME_PASS


def _photo() -> np.ndarray:
    """A smooth synthetic picture (a gradient with two blobs)."""
    y, x = np.mgrid[0:240, 0:240].astype(np.float32)
    canvas = 60 + x / 3 + 120 * np.exp(-((y - 80) ** 2 + (x - 150) ** 2) / 1800)
    canvas += 90 * np.exp(-((y - 170) ** 2 + (x - 60) ** 2) / 900)
    return np.clip(np.stack([canvas, canvas * 0.8, canvas * 0.6], axis=-1), 0, 255).astype(np.uint8)


async def test_an_image_entry_catches_a_recompressed_photo(blocklist) -> None:  # type: ignore[no-untyped-def]
    png = cv2.imencode(".png", _photo())[1].tobytes()
    jpeg = cv2.imencode(".jpg", _photo(), [cv2.IMWRITE_JPEG_QUALITY, 40])[1].tobytes()
    entry = await blocklist.stub.AddEntry(add("IMAGE_FINGERPRINT", "", "HOLD", image=png), metadata=blocklist.md(R))
    assert len(entry.value) == 16 and int(entry.value, 16) > 0
    answer = await blocklist.stub.Screen(screen(photos=[jpeg]), metadata=blocklist.md(R))
    assert answer.outcome == common_pb2.SCREENING_OUTCOME_HOLD
    assert [(h.entry_id, h.field) for h in answer.hits] == [(entry.id, "images[0]")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await blocklist.stub.Screen(screen(photos=[b"not an image"]), metadata=blocklist.md(R))
    assert set(bad_fields(caught.value)) == {"photos[0]"}
