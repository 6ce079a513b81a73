"""Investigators end to end: a watched lead, a resumed watch, search, history, an exported case that the
offline verifier checks (and fails once a row or the bundle is changed), and the audit of every call."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import asyncpg
import grpc
import pytest

from courier.v1 import acceptance_pb2, blocklist_pb2, investigation_pb2
from gateway.core.evidence import merkle
from gateway.core.model import Role
from tests.conftest import REPO
from tests.e2e.requests import ZHANG, accept_request, bad_fields, verify_request
from tests.e2e.test_screening import add_entry, items

T, INV, A = Role.TERMINAL, Role.INVESTIGATOR, Role.ADMIN
CASE = "沪公（经）立字〔2026〕118号"


async def accepted(gw, **overrides) -> acceptance_pb2.AcceptParcelResponse:  # type: ignore[no-untyped-def]
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
    return await gw.acceptance.AcceptParcel(accept_request(ref, **overrides), metadata=gw.md(T))


def search(**fields) -> investigation_pb2.SearchRequest:  # type: ignore[no-untyped-def]
    return investigation_pb2.SearchRequest(case_no=fields.pop("case_no", CASE), **fields)


async def next_leads(stream, n: int) -> list[investigation_pb2.Lead]:  # type: ignore[no-untyped-def]
    return [await asyncio.wait_for(stream.read(), 10) for _ in range(n)]


async def test_a_flagged_parcel_reaches_a_watcher_and_a_resumed_watch_misses_nothing(gateway) -> None:  # type: ignore[no-untyped-def]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    first = gateway.investigation.WatchLeads(investigation_pb2.WatchLeadsRequest(case_no=CASE),
                                             metadata=gateway.md(INV))
    second = gateway.investigation.WatchLeads(investigation_pb2.WatchLeadsRequest(case_no=CASE, kinds=["HELD"]),
                                              metadata=gateway.md(INV))
    await asyncio.sleep(0.3)  # both watches are open before the first lead
    held = await accepted(gateway, items=items("复刻 球鞋"))
    assert held.decision == acceptance_pb2.ACCEPT_DECISION_HELD
    lead = (await next_leads(first, 1))[0]
    assert lead.waybill_no == held.waybill_no and lead.kind == "HELD" and lead.origin == "ACCEPTANCE"
    assert lead.hits[0].entry_kind == blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD
    cursor = (await next_leads(second, 1))[0].cursor
    second.cancel()  # the second watcher goes away; three more leads happen while it is gone
    missed = [(await accepted(gateway, items=items(f"复刻 外套 {i}"))).waybill_no for i in range(3)]
    resumed = gateway.investigation.WatchLeads(
        investigation_pb2.WatchLeadsRequest(case_no=CASE, cursor=cursor, kinds=["HELD"]), metadata=gateway.md(INV))
    got = await next_leads(resumed, 3)
    assert [x.waybill_no for x in got] == missed  # everything missed, in order, and not the one it had seen
    later = (await accepted(gateway, items=items("复刻 帽子"))).waybill_no
    assert (await next_leads(resumed, 1))[0].waybill_no == later
    resumed.cancel()
    first.cancel()


async def test_the_sender_s_other_parcels_are_found_by_document_number_in_full(gateway) -> None:  # type: ignore[no-untyped-def]
    sent = [(await accepted(gateway)).waybill_no for _ in range(3)]
    found = await gateway.investigation.SearchShipments(search(document_number=ZHANG["number"], page_size=2),
                                                        metadata=gateway.md(INV))
    assert len(found.shipments) == 2 and found.next_page_token
    rest = await gateway.investigation.SearchShipments(
        search(document_number=ZHANG["number"], page_size=2, page_token=found.next_page_token),
        metadata=gateway.md(INV))
    waybills = [s.waybill_no for s in (*found.shipments, *rest.shipments)]
    assert sorted(waybills) == sorted(sent) and not rest.next_page_token  # every one, once, newest first
    record = found.shipments[0]
    assert record.sender.document_number == ZHANG["number"] and record.sender.phone == "+8613800138000"
    assert record.recipient.phone == "+8613912345678"  # investigators see numbers in full
    by_phone = await gateway.investigation.SearchShipments(search(phone="139 1234 5678"), metadata=gateway.md(INV))
    by_name = await gateway.investigation.SearchShipments(search(name="章伟"), metadata=gateway.md(INV))  # homophone
    assert {s.waybill_no for s in by_phone.shipments} == set(sent) == {s.waybill_no for s in by_name.shipments}


@pytest.mark.parametrize("request_,field", [
    (search(case_no="", waybill_no="SF000000000001"), "case_no"),
    (search(case_no="not a case", waybill_no="SF000000000001"), "case_no"),
    (search(), "filters"),
    (search(waybill_no="SF000000000001", page_size=501), "page_size"),
    (search(waybill_no="SF000000000001", page_token="forged"), "page_token"),
    (search(from_time={"seconds": 2000}, to_time={"seconds": 1000}), "to_time"),
])
async def test_bad_searches_name_the_field(gateway, request_, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.investigation.SearchShipments(request_, metadata=gateway.md(INV))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in bad_fields(caught.value)


async def test_a_page_token_is_bound_to_its_search(gateway) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        await accepted(gateway)
    page = await gateway.investigation.SearchShipments(search(document_number=ZHANG["number"], page_size=1),
                                                       metadata=gateway.md(INV))
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the same token with other filters
        await gateway.investigation.SearchShipments(search(phone="13800138000", page_size=1,
                                                           page_token=page.next_page_token), metadata=gateway.md(INV))
    assert "other filters" in bad_fields(caught.value)["page_token"]
    token = page.next_page_token
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.investigation.SearchShipments(search(document_number=ZHANG["number"], page_size=1,
                                                           page_token=altered), metadata=gateway.md(INV))
    assert "page_token" in bad_fields(caught.value)


async def _leafed_history(gw, waybill_no: str) -> investigation_pb2.ShipmentHistory:  # type: ignore[no-untyped-def]
    for _ in range(100):  # the appender runs every 50 ms in tests
        history = await gw.investigation.GetShipmentHistory(
            investigation_pb2.GetShipmentHistoryRequest(case_no=CASE, waybill_no=waybill_no), metadata=gw.md(INV))
        if all(e.leaf_index >= 0 for e in history.events):
            return history
        await asyncio.sleep(0.05)
    raise AssertionError("the events never reached the evidence log")


async def _verify(bundle_json: str, tmp_path: Path, name: str) -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(bundle_json, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_"))}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "evidence", "verify", str(path),
                                                cwd=REPO, env={**env, "COLUMNS": "200"},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_an_exported_case_proves_itself_and_fails_once_changed(gateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    parcels = [await accepted(gateway) for _ in range(2)]
    await gateway.investigation.SearchShipments(search(document_number=ZHANG["number"]), metadata=gateway.md(INV))
    history = await _leafed_history(gateway, parcels[0].waybill_no)
    assert history.verification.document_number == ZHANG["number"] and history.events[0].kind == "ACCEPTED"
    await asyncio.sleep(0.3)  # the audit records of the calls so far are appended too
    bundle = await gateway.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(case_no=CASE),
                                                        metadata=gateway.md(INV))
    doc = json.loads(bundle.bundle_json)
    types = {r["record"]["type"] for r in doc["records"]}
    assert {"shipment_event", "verification", "audit"} <= types and bundle.record_count == len(doc["records"])
    assert len(doc["epcis"]["epcisBody"]["eventList"]) == sum(t["record"]["type"] == "shipment_event"
                                                               for t in doc["records"])
    code, out = await _verify(bundle.bundle_json, tmp_path, "case.json")
    assert code == 0, out
    # One byte of the bundle changed: the verifier names the record.
    tampered = json.loads(bundle.bundle_json)
    victim = next(r for r in tampered["records"] if r["record"]["type"] == "shipment_event")
    victim["record"]["note"] = victim["record"]["note"] + "x"
    code, out = await _verify(json.dumps(tampered, ensure_ascii=False), tmp_path, "bundle-changed.json")
    assert code == 1 and str(victim["leaf_index"]) in out, out
    # One byte of a row changed in the database (by someone who could lift the append-only trigger).
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        await conn.execute("ALTER TABLE shipment_events DISABLE TRIGGER shipment_events_append_only")
        await conn.execute("UPDATE shipment_events SET location = location || 'X' WHERE shipment_id = $1::uuid"
                           " AND seq = 1", parcels[1].shipment_id)
        await conn.execute("ALTER TABLE shipment_events ENABLE TRIGGER shipment_events_append_only")
    finally:
        await conn.close()
    again = await gateway.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(case_no=CASE),
                                                       metadata=gateway.md(INV))
    code, out = await _verify(again.bundle_json, tmp_path, "row-changed.json")
    assert code == 1, out
    # Every call above is on record, with the numbers as keys only.
    audit = await gateway.investigation.ListAuditRecords(investigation_pb2.ListAuditRecordsRequest(case_no=CASE),
                                                         metadata=gateway.md(A))
    methods = [r.method.rsplit("/", 1)[1] for r in audit.records]
    assert {"SearchShipments", "GetShipmentHistory", "ExportEvidence"} <= set(methods)
    assert all(ZHANG["number"] not in r.filters_json for r in audit.records)
    assert any("document_key" in r.filters_json for r in audit.records)


async def test_proofs_check_against_the_signed_head(gateway) -> None:  # type: ignore[no-untyped-def]
    parcel = await accepted(gateway)
    history = await _leafed_history(gateway, parcel.waybill_no)
    head = await gateway.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                   metadata=gateway.md(INV))
    assert head.checkpoint.splitlines()[1] == str(head.tree_size) and head.verifier_keys
    leaf = history.events[0].leaf_index
    proof = await gateway.investigation.GetInclusionProof(investigation_pb2.GetInclusionProofRequest(
        case_no=CASE, leaf_index=leaf, tree_size=head.tree_size), metadata=gateway.md(INV))
    assert merkle.verify_inclusion(proof.leaf_hash, leaf, head.tree_size, list(proof.proof), head.root_hash)
    assert json.loads(proof.record_json)["waybill_no"] == parcel.waybill_no
    await accepted(gateway)
    await asyncio.sleep(0.3)
    later = await gateway.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                    metadata=gateway.md(INV))
    assert later.tree_size > head.tree_size
    grown = await gateway.investigation.GetConsistencyProof(investigation_pb2.GetConsistencyProofRequest(
        case_no=CASE, old_size=head.tree_size, new_size=later.tree_size), metadata=gateway.md(INV))
    assert merkle.verify_consistency(head.tree_size, later.tree_size, head.root_hash, later.root_hash,
                                     list(grown.proof))


async def test_a_caller_without_the_role_is_refused_and_on_record(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.investigation.SearchShipments(search(waybill_no="SF000000000001"), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    audit = await gateway.investigation.ListAuditRecords(investigation_pb2.ListAuditRecordsRequest(),
                                                         metadata=gateway.md(A))
    refused = [r for r in audit.records if r.status == "PERMISSION_DENIED"]
    assert refused and refused[0].principal == "test-terminal" and refused[0].case_no == CASE
