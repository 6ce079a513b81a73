"""Screening end to end: refusals, holds, reviewers' releases, and entries added while parcels are in custody."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time

import asyncpg
import grpc
import pytest

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc, blocklist_pb2, blocklist_pb2_grpc, common_pb2, custody_pb2
from gateway.core.model import Role
from gateway.storage.cluster import free_port
from tests.conftest import REPO
from tests.e2e.requests import ZHANG, accept_request, move, verify_request

T, R = Role.TERMINAL, Role.REVIEWER
SOURCE = blocklist_pb2.EntrySource(agency="上海市市场监督管理局", case_no="沪市监案〔2026〕118号",
                                   legal_basis="商标法第五十七条")


async def add_entry(gw, **fields) -> blocklist_pb2.Entry:  # type: ignore[no-untyped-def]
    fields.setdefault("action", blocklist_pb2.ENTRY_ACTION_HOLD)
    return await gw.blocklist.AddEntry(blocklist_pb2.AddEntryRequest(source=SOURCE, **fields), metadata=gw.md(R))


async def accept(gw, **overrides) -> acceptance_pb2.AcceptParcelResponse:  # type: ignore[no-untyped-def]
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
    return await gw.acceptance.AcceptParcel(accept_request(ref, **overrides), metadata=gw.md(T))


def items(description: str, brand: str = "", value_fen: int = 8800) -> list[acceptance_pb2.Item]:
    return [acceptance_pb2.Item(description=description, quantity=1, brand=brand, declared_value_fen=value_fen)]


async def test_blocklisted_sender_is_refused_and_the_hit_names_its_entry(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_DOCUMENT_NUMBER, value=ZHANG["number"],
                            action=blocklist_pb2.ENTRY_ACTION_REFUSE)
    answer = await accept(gateway)
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_REFUSED
    assert answer.state == common_pb2.PARCEL_STATE_REFUSED
    hit = next(h for h in answer.hits if h.kind == "DOCUMENT_NUMBER")
    assert hit.entry_id == entry.id and str(entry.id) in hit.explanation
    assert ZHANG["number"] not in hit.explanation and ZHANG["number"] not in hit.matched
    assert hit.action == common_pb2.SCREENING_OUTCOME_REFUSE and hit.score == 1.0


async def test_a_name_alone_holds_but_never_refuses(gateway) -> None:  # type: ignore[no-untyped-def]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_PERSON_NAME, value="章伟",
                    action=blocklist_pb2.ENTRY_ACTION_REFUSE)
    answer = await accept(gateway)
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_HELD
    hit = answer.hits[0]
    assert hit.kind == "PERSON_NAME" and hit.field.startswith("sender") and hit.score >= hit.threshold


async def test_slang_keyword_holds_until_a_reviewer_releases(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="高仿")
    answer = await accept(gateway, items=items("ＬＶ 高 仿 手提包"))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_HELD
    assert answer.hits[0].entry_id == entry.id and "高仿" in answer.hits[0].explanation
    assert answer.hits[0].field == "items[0].description"
    for rpc in ("StoreParcel", "DispatchParcel"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(gateway.custody, rpc)(move(answer.waybill_no), metadata=gateway.md(T))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "held" in caught.value.details() and "高仿" in caught.value.details()
    await gateway.custody.ReleaseHold(custody_pb2.ReviewDecisionRequest(
        waybill_no=answer.waybill_no, reason="genuine second-hand bag, receipt seen", case_no="REV-1"),
        metadata=gateway.md(R))
    stored = await gateway.custody.StoreParcel(move(answer.waybill_no), metadata=gateway.md(T))
    assert stored.state == common_pb2.PARCEL_STATE_STORED


async def test_re_screening_does_not_hold_again_what_a_reviewer_released_for_the_same_entry(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="原厂尾单")
    released = await accept(gateway, items=items("原厂尾单 T恤"))
    assert released.decision == acceptance_pb2.ACCEPT_DECISION_HELD and released.hits[0].entry_id == entry.id
    await gateway.custody.ReleaseHold(custody_pb2.ReviewDecisionRequest(
        waybill_no=released.waybill_no, reason="brand's own outlet, invoice seen", case_no="REV-2"),
        metadata=gateway.md(R))
    missed = await accept(gateway, items=items("尾货 原厂尾单 卫衣"))  # HELD too; the control below is accepted
    clean = await accept(gateway, items=items("毛衣 一件"))
    assert clean.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    # Re-screening comes round to the entry after the reviewer's release (as it does when it runs late, or when
    # another process accepted the parcel): from the start of the list, and a new entry that the clean parcel hits.
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        await conn.execute("UPDATE rescreen_progress SET version = 0")
        later = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="毛衣")

        async def caught_up():  # type: ignore[no-untyped-def]
            return await conn.fetchval("SELECT version FROM rescreen_progress") >= later.version

        assert await _wait_for(caught_up, 10.0)
        leads = await conn.fetch("SELECT waybill_no FROM leads WHERE origin = 'RESCREEN' AND waybill_no = ANY($1)",
                                 [released.waybill_no, missed.waybill_no, clean.waybill_no])
    finally:
        await conn.close()
    assert [r["waybill_no"] for r in leads] == [clean.waybill_no]  # the new entry holds; the old one not again
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=released.waybill_no),
                                           metadata=gateway.md(T))
    assert view.state == common_pb2.PARCEL_STATE_ACCEPTED and [e.kind for e in view.events] == [
        "ACCEPTED", "HELD", "RELEASED"]


async def test_under_priced_brand_is_held(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_BRAND_PRICE_FLOOR, value="Louis Vuitton",
                            aliases=["LV", "路易威登"], price_floor_fen=300_000)
    cheap = await accept(gateway, items=items("女士手提包", brand="路易威登", value_fen=25_000))
    assert cheap.decision == acceptance_pb2.ACCEPT_DECISION_HELD
    assert cheap.hits[0].entry_id == entry.id and cheap.hits[0].kind == "BRAND_PRICE_FLOOR"
    dear = await accept(gateway, items=items("女士手提包", brand="路易威登", value_fen=1_200_000))
    assert dear.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED and not dear.hits


async def _wait_for(predicate, seconds: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        found = await predicate()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _second_gateway(gw) -> tuple[asyncio.subprocess.Process, int]:  # type: ignore[no-untyped-def]
    port = free_port()
    s = gw.settings
    env = {**os.environ, "DATABASE_URL": s.database_url, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
           "GATEWAY_DATA_KEY": base64.b64encode(s.data_key).decode(),
           "GATEWAY_INDEX_KEY": base64.b64encode(s.index_key).decode(), "LOG_LEVEL": "WARNING",
           "IDENTITY_AUTHORITY_URL": s.identity_authority_url, "IDENTITY_AUTHORITY_KEY": s.identity_authority_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert b"gateway listening" in line
    return proc, port


async def test_entry_added_later_holds_a_stored_parcel_within_a_second_on_every_process(gateway) -> None:  # type: ignore[no-untyped-def]
    stored = await accept(gateway, items=items("复刻运动鞋 两双"))
    assert stored.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    await gateway.custody.StoreParcel(move(stored.waybill_no), metadata=gateway.md(T))
    proc, port = await _second_gateway(gateway)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            other_blocklist = blocklist_pb2_grpc.BlocklistStub(channel)
            other_acceptance = acceptance_pb2_grpc.AcceptanceStub(channel)
            before = await other_blocklist.Screen(blocklist_pb2.ScreenRequest(items=items("复刻运动鞋")),
                                                  metadata=gateway.md(R))
            assert before.outcome == common_pb2.SCREENING_OUTCOME_PASS
            added_at = time.monotonic()
            entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")

            async def held_here():  # type: ignore[no-untyped-def]
                view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=stored.waybill_no),
                                                       metadata=gateway.md(T))
                return view if view.state == common_pb2.PARCEL_STATE_HELD else None

            async def seen_there():  # type: ignore[no-untyped-def]
                answer = await other_blocklist.Screen(blocklist_pb2.ScreenRequest(items=items("复刻运动鞋")),
                                                      metadata=gateway.md(R))
                return answer if answer.outcome == common_pb2.SCREENING_OUTCOME_HOLD else None

            view, there = await asyncio.gather(_wait_for(held_here, 1.0), _wait_for(seen_there, 1.0))
            assert time.monotonic() - added_at < 1.5
            assert view is not None, "the stored parcel was not held within a second"
            assert view.events[-1].kind == "HELD" and str(entry.id) in view.hold_reason
            conn = await asyncpg.connect(gateway.settings.database_url)
            leads = await conn.fetch("SELECT kind, origin, hits FROM leads WHERE waybill_no = $1", stored.waybill_no)
            await conn.close()
            assert [(r["kind"], r["origin"]) for r in leads] == [("HELD", "RESCREEN")]
            assert json.loads(leads[0]["hits"])[0]["entry_id"] == entry.id
            assert there is not None, "the second process did not see the entry within a second"
            assert there.hits[0].entry_id == entry.id and there.version == entry.version
            # The second process holds new parcels too, and neither process lets the held one leave.
            ref = (await other_acceptance.VerifySender(verify_request(), metadata=gateway.md(T))).sender_ref
            fresh = await other_acceptance.AcceptParcel(accept_request(ref, items=items("复刻 外套")),
                                                        metadata=gateway.md(T))
            assert fresh.decision == acceptance_pb2.ACCEPT_DECISION_HELD
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await gateway.custody.DispatchParcel(move(stored.waybill_no), metadata=gateway.md(T))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_retired_entry_stops_holding(gateway) -> None:  # type: ignore[no-untyped-def]
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="原单")
    assert (await accept(gateway, items=items("原单 T恤"))).decision == acceptance_pb2.ACCEPT_DECISION_HELD
    await gateway.blocklist.RetireEntry(blocklist_pb2.RetireEntryRequest(id=entry.id, reason="listed in error"),
                                        metadata=gateway.md(R))
    assert (await accept(gateway, items=items("原单 T恤"))).decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED


async def test_many_recipients_from_one_sender_is_a_review_hint(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = (await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))).sender_ref
    for i in range(20):
        address = accept_request().recipient.address
        recipient = acceptance_pb2.Recipient(name="王芳", phone=f"139{i:08d}", address=address)
        answer = await gateway.acceptance.AcceptParcel(accept_request(ref, recipient=recipient), metadata=gateway.md(T))
        assert not answer.hits, f"hint after only {i} recipients"
    answer = await gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED  # a hint, not a hold
    assert [h.kind for h in answer.hits] == ["SENDER_PATTERN"]
    assert answer.hits[0].action == common_pb2.SCREENING_OUTCOME_REVIEW and answer.hits[0].entry_id == 0
