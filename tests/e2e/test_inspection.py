"""Inspection after acceptance over a real channel: routing decisions, holds, replays, images, weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg
import cv2
import grpc
import numpy as np
import pytest

from courier.v1 import acceptance_pb2, blocklist_pb2, common_pb2, custody_pb2, inspection_pb2
from gateway.core.model import Role
from tests.e2e.requests import accept_request, verify_request, waybill
from tests.e2e.test_screening import add_entry, items

T, S, R = Role.TERMINAL, Role.SCANNER, Role.REVIEWER
PASS = inspection_pb2.ROUTING_DECISION_PASS
DIVERT = inspection_pb2.ROUTING_DECISION_DIVERT_TO_HOLD
REJECT = inspection_pb2.ROUTING_DECISION_REJECT


async def parcel(gw, **overrides) -> acceptance_pb2.AcceptParcelResponse:  # type: ignore[no-untyped-def]
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
    return await gw.acceptance.AcceptParcel(accept_request(ref, **overrides), metadata=gw.md(T))


def scan(event_id: str, waybill_no: str, kind: int = inspection_pb2.SCAN_KIND_DWS, **more) -> inspection_pb2.ScanEvent:  # type: ignore[no-untyped-def]
    return inspection_pb2.ScanEvent(event_id=event_id, device_id="DWS-01", kind=kind, waybill_no=waybill_no,
                                    location="SH-HUB-02/line-3", **more)


async def stream(gw, *events: inspection_pb2.ScanEvent) -> list[inspection_pb2.ScanAck]:  # type: ignore[no-untyped-def]
    return [ack async for ack in gw.inspection.StreamScans(iter(events), metadata=gw.md(S), timeout=20)]


async def fetch(gw, sql: str, *args):  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_the_line_is_told_per_parcel_state_in_order(gateway) -> None:  # type: ignore[no-untyped-def]
    ok = await parcel(gateway)
    # A keyword holds two parcels at acceptance; a reviewer refuses one of them.
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    held = await parcel(gateway, items=items("复刻 球鞋"))
    refused_held = await parcel(gateway, items=items("复刻 外套"))
    await gateway.custody.RefuseParcel(custody_pb2.ReviewDecisionRequest(
        waybill_no=refused_held.waybill_no, reason="counterfeit", case_no="C-1"), metadata=gateway.md(R))
    acks = await stream(gateway, scan("evt-00000001", ok.waybill_no), scan("evt-00000002", held.waybill_no),
                        scan("evt-00000003", refused_held.waybill_no), scan("evt-00000004", "SF000000000000"),
                        scan("evt-00000005", ""), scan("bad", ok.waybill_no))
    assert [a.event_id for a in acks] == ["evt-00000001", "evt-00000002", "evt-00000003", "evt-00000004",
                                          "evt-00000005", "bad"]
    assert [a.decision for a in acks] == [PASS, DIVERT, REJECT, DIVERT, DIVERT, DIVERT]
    assert [a.reasons[0].code for a in acks[1:]] == ["PARCEL_HELD", "PARCEL_REFUSED", "UNKNOWN_WAYBILL",
                                                     "LABEL_UNREADABLE", "INVALID_EVENT"]
    assert str(entry.id) in acks[1].reasons[0].message and acks[5].reasons[0].field == "event_id"
    assert acks[0].state == common_pb2.PARCEL_STATE_ACCEPTED and acks[0].event_seq == 2
    rows = await fetch(gateway, "SELECT event_id, shipment_id IS NOT NULL AS known FROM scan_events ORDER BY 1")
    assert [(r["event_id"], r["known"]) for r in rows] == [
        ("evt-00000001", True), ("evt-00000002", True), ("evt-00000003", True), ("evt-00000004", False),
        ("evt-00000005", False)]  # the invalid event is answered, never recorded
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=ok.waybill_no),
                                           metadata=gateway.md(T))
    assert [e.kind for e in view.events] == ["ACCEPTED", "SCANNED_DWS"]
    assert view.events[1].actor.device_id == "DWS-01" and view.events[1].location == "SH-HUB-02/line-3"


async def test_an_event_id_seen_before_is_answered_again_and_never_recorded_twice(gateway) -> None:  # type: ignore[no-untyped-def]
    accepted = await parcel(gateway)
    first = await stream(gateway, scan("dup-0000001", accepted.waybill_no), scan("dup-0000001", accepted.waybill_no))
    again = await stream(gateway, scan("dup-0000001", accepted.waybill_no))
    single = await gateway.inspection.RecordInspection(inspection_pb2.InspectionRecord(
        event=scan("dup-0000001", accepted.waybill_no)), metadata=gateway.md(S))
    assert [a.replayed for a in (*first, *again, single.ack)] == [False, True, True, True]
    assert {a.event_seq for a in (*first, *again, single.ack)} == {2}
    recorded = {a.recorded_at.ToNanoseconds() for a in (*first, *again, single.ack)}
    assert recorded == {first[0].recorded_at.ToNanoseconds()}
    count = await fetch(gateway, "SELECT count(*) AS n FROM shipment_events WHERE kind = 'SCANNED_DWS'")
    assert count[0]["n"] == 1


async def test_the_same_event_after_a_gateway_restart_is_a_replay(settings, authority_simulator) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from gateway.server import create_server
    from tests.conftest import RunningGateway, make_tokens

    s = replace(settings, identity_authority_url=authority_simulator.url, identity_authority_key="test-key")
    tokens = await make_tokens(s.database_url)
    answers = []
    for _ in range(2):
        built = await create_server(s)
        await built.server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
        gw = RunningGateway(built.port, channel, s, tokens)
        try:
            if not answers:
                waybill_no = (await parcel(gw)).waybill_no
            answers += await stream(gw, scan("restart-01", waybill_no))
        finally:
            await channel.close()
            await built.stop(0.5)
    assert [a.replayed for a in answers] == [False, True] and answers[0].event_seq == answers[1].event_seq


def _goods_photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    image = cv2.resize(cv2.GaussianBlur(image, (0, 0), 6), (640, 480))
    cv2.rectangle(image, (200, 120), (440, 360), (20, 20, 200), -1)
    return cv2.imencode(".png", image)[1].tobytes()


async def test_a_goods_photo_near_a_listed_fingerprint_holds_the_parcel(gateway) -> None:  # type: ignore[no-untyped-def]
    photo = _goods_photo(7)
    entry = await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_IMAGE_FINGERPRINT, image=photo)
    accepted = await parcel(gateway)
    decoded = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    recompressed = cv2.imencode(".jpg", cv2.resize(decoded, (600, 450)), [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()
    image = inspection_pb2.ScanImage(role=inspection_pb2.IMAGE_ROLE_ITEM_PHOTO, content=recompressed)
    ack = (await stream(gateway, scan("img-0000001", accepted.waybill_no, inspection_pb2.SCAN_KIND_CAMERA,
                                      images=[image])))[0]
    assert ack.decision == DIVERT and ack.state == common_pb2.PARCEL_STATE_HELD
    hit = ack.hits[0]
    assert hit.entry_id == entry.id and hit.entry_kind == blocklist_pb2.ENTRY_KIND_IMAGE_FINGERPRINT
    assert str(entry.id) in hit.explanation and ack.image_sha256 == [hashlib.sha256(recompressed).hexdigest()]
    leads = await fetch(gateway, "SELECT kind, origin FROM leads WHERE waybill_no = $1", accepted.waybill_no)
    assert [(r["kind"], r["origin"]) for r in leads] == [("HELD", "SCAN")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.StoreParcel(custody_pb2.CustodyMoveRequest(waybill_no=accepted.waybill_no,
                                                                         terminal_id="T-1"), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_xray_alarm_holds_and_a_quiet_finding_is_only_recorded(gateway) -> None:  # type: ignore[no-untyped-def]
    quiet, alarmed = await parcel(gateway), await parcel(gateway)
    xray = inspection_pb2.SCAN_KIND_XRAY
    acks = await stream(
        gateway,
        scan("xr-0000001", quiet.waybill_no, xray, findings=[inspection_pb2.DetectorFinding(
            category="BATTERY", description="coin cell", confidence=0.4)]),
        scan("xr-0000002", alarmed.waybill_no, xray, findings=[inspection_pb2.DetectorFinding(
            category="LIQUID", description="bottle 500 ml", confidence=0.93, alarm=True)]))
    assert [a.decision for a in acks] == [PASS, DIVERT]
    assert acks[1].hits[0].kind == "XRAY_ALARM" and "LIQUID" in acks[1].reasons[0].message
    view = await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=alarmed.waybill_no),
                                           metadata=gateway.md(T))
    assert view.state == common_pb2.PARCEL_STATE_HELD and [e.kind for e in view.events][-2:] == ["SCANNED_XRAY", "HELD"]
    details = await fetch(gateway, "SELECT details->'findings' AS f FROM shipment_events e JOIN shipments s"
                                   " ON s.id = e.shipment_id WHERE s.waybill_no = $1 AND e.kind = 'SCANNED_XRAY'",
                          quiet.waybill_no)
    assert "BATTERY" in details[0]["f"]


async def test_a_weight_far_from_acceptance_is_a_review_hint_with_both_figures(gateway) -> None:  # type: ignore[no-untyped-def]
    accepted = await parcel(gateway, weight_g=1000)
    scale = inspection_pb2.SCAN_KIND_SCALE
    acks = await stream(gateway, scan("wt-0000001", accepted.waybill_no, scale,
                                      measurements=inspection_pb2.Measurements(weight_g=1080)),
                        scan("wt-0000002", accepted.waybill_no, scale,
                             measurements=inspection_pb2.Measurements(weight_g=1650)))
    assert [a.decision for a in acks] == [PASS, PASS] and not acks[0].hits
    hint = acks[1].hits[0]
    assert hint.kind == "WEIGHT_MISMATCH" and hint.action == common_pb2.SCREENING_OUTCOME_REVIEW
    assert "1650 g" in hint.explanation and "1000 g" in hint.explanation


async def test_images_are_kept_once_by_hash_and_acceptance_photos_too(gateway) -> None:  # type: ignore[no-untyped-def]
    photo = _goods_photo(11)
    inspection = acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED,
                                                  photos=[photo])
    accepted = await parcel(gateway, inspection=inspection)
    label = inspection_pb2.ScanImage(role=inspection_pb2.IMAGE_ROLE_LABEL, content=photo)
    await stream(gateway, *(scan(f"blob-000000{i}", accepted.waybill_no, images=[label]) for i in range(3)))
    digest = hashlib.sha256(photo).hexdigest()
    stored = Path(gateway.settings.blob_store_dir) / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == photo
    files = [p for p in Path(gateway.settings.blob_store_dir).rglob("*") if p.is_file()]  # noqa: ASYNC240
    assert files == [stored]
    rows = await fetch(gateway, "SELECT encode(sha256, 'hex') AS h, content FROM inspection_photos")
    assert [(r["h"], r["content"]) for r in rows] == [(digest, None)]


async def test_a_terminal_may_record_but_not_stream(gateway) -> None:  # type: ignore[no-untyped-def]
    accepted = await parcel(gateway)
    manual = inspection_pb2.InspectionRecord(
        event=inspection_pb2.ScanEvent(event_id="man-0000001", kind=inspection_pb2.SCAN_KIND_MANUAL,
                                       waybill_no=accepted.waybill_no),
        terminal_id="T-0001", prohibited_found=True, notes="lithium batteries undeclared")
    ack = (await gateway.inspection.RecordInspection(manual, metadata=gateway.md(T))).ack
    assert ack.decision == DIVERT and ack.state == common_pb2.PARCEL_STATE_HELD
    assert ack.reasons[0].code == "PROHIBITED_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream(gateway.__class__(gateway.port, gateway.channel, gateway.settings,
                                       {**gateway.tokens, "scanner": gateway.tokens["terminal"]}),
                     scan("term-0000001", waybill()))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.inspection.RecordInspection(inspection_pb2.InspectionRecord(
            event=inspection_pb2.ScanEvent(event_id="x", kind=inspection_pb2.SCAN_KIND_MANUAL)),
            metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "event_id" in caught.value.details()
