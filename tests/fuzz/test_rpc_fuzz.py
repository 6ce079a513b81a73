"""Every method of every service, driven through a real gateway with generated messages, valid and not, and
with bodies that are not protobuf: no answer is ever INTERNAL, UNKNOWN or DATA_LOSS, no call hangs, and every
INVALID_ARGUMENT names the field it is about.

Methods are enumerated from the descriptors (tests.fuzz.rpc.served_methods), so a new RPC is fuzzed as soon as
it is served. Examples per method: GENERATED for generated messages (half of them mutations of a valid
request, so the use cases run too), RAW for bodies that are not valid protobuf.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from courier.v1 import acceptance_pb2, blocklist_pb2, common_pb2, custody_pb2, inspection_pb2, investigation_pb2
from gateway.rpc.roles import ROLE_TABLE
from tests.e2e.requests import accept_request, verify_request
from tests.fuzz.conftest import FuzzGateway, fuzz_settings
from tests.fuzz.rpc import FORBIDDEN, Answer, names_a_field, path_of, send, served_methods
from tests.fuzz.strategies import (
    bad_utf8_bodies,
    corrupt_images,
    malformed_bodies,
    messages,
    mutations,
    real_dicom,
    real_image,
)

GENERATED = 20
RAW = 8
METHODS = served_methods()
IDS = [path_of(m).removeprefix("/courier.v1.") for m in METHODS]
CASE = "CASE-2026-0042"


@dataclass
class World:
    """A few real records for the seeds to name: a sender reference, an accepted parcel, an entry."""

    sender_ref: str
    waybill_no: str
    entry_id: int


@pytest.fixture(scope="module")
async def world(fuzz_gateway: FuzzGateway) -> World:
    """The records the valid seeds refer to, made through the API."""
    gw, md = fuzz_gateway.gw, fuzz_gateway.all_roles
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=md)).sender_ref
    accepted = await gw.acceptance.AcceptParcel(accept_request(ref), metadata=md)
    entry = await gw.blocklist.AddEntry(blocklist_pb2.AddEntryRequest(
        kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="高仿", action=blocklist_pb2.ENTRY_ACTION_HOLD,
        source=blocklist_pb2.EntrySource(agency="上海市市场监督管理局")), metadata=md)
    return World(ref, accepted.waybill_no, entry.id)


def _scan(w: World) -> inspection_pb2.ScanEvent:
    return inspection_pb2.ScanEvent(
        event_id="fuzz-evt-0001", device_id="DWS-01", kind=inspection_pb2.SCAN_KIND_XRAY, waybill_no=w.waybill_no,
        location="SH-HUB-02/line-3", measurements=inspection_pb2.Measurements(weight_g=500),
        images=[inspection_pb2.ScanImage(role=inspection_pb2.IMAGE_ROLE_XRAY, content=real_dicom(w.waybill_no)),
                inspection_pb2.ScanImage(role=inspection_pb2.IMAGE_ROLE_ITEM_PHOTO, content=real_image(".jpg"))],
        findings=[inspection_pb2.DetectorFinding(category="LIQUID", description="bottle", confidence=0.5)])


def seeds(w: World) -> dict[str, Message]:
    """A valid request per method, for the mutations to start from."""
    move = custody_pb2.CustodyMoveRequest(waybill_no=w.waybill_no, terminal_id="T-0001", location="BJ-01")
    review = custody_pb2.ReviewDecisionRequest(waybill_no=w.waybill_no, reason="looked", case_no="C-1")
    entry = blocklist_pb2.AddEntryRequest(
        kind=blocklist_pb2.ENTRY_KIND_PERSON_NAME, value="王小明", action=blocklist_pb2.ENTRY_ACTION_HOLD,
        source=blocklist_pb2.EntrySource(agency="上海市市场监督管理局", case_no="沪市监〔2026〕1号"),
        aliases=["Wang Xiaoming"])
    consignment = accept_request(w.sender_ref)
    inv = investigation_pb2
    return {
        "Acceptance/VerifySender": verify_request(),
        "Acceptance/AcceptParcel": consignment,
        "Acceptance/RegisterContractCustomer": acceptance_pb2.RegisterContractCustomerRequest(
            name="上海某某贸易有限公司", credit_code="91310000MA1FL8TQ2X", agreement_no="AG-1",
            responsible_person=acceptance_pb2.PersonDocument(
                document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, document_number="110101199003071233",
                name="张伟", phone="13800138000"),
            address=common_pb2.Address(region_code="310104", detail="漕溪北路 88 号")),
        "Custody/StoreParcel": move, "Custody/DispatchParcel": move,
        "Custody/GetParcel": custody_pb2.GetParcelRequest(waybill_no=w.waybill_no),
        "Custody/ReleaseHold": review, "Custody/ConfirmHold": review, "Custody/RefuseParcel": review,
        "Blocklist/AddEntry": entry, "Blocklist/ImportEntries": entry,
        "Blocklist/RetireEntry": blocklist_pb2.RetireEntryRequest(id=w.entry_id, reason="wrong"),
        "Blocklist/GetEntry": blocklist_pb2.GetEntryRequest(id=w.entry_id),
        "Blocklist/ListEntries": blocklist_pb2.ListEntriesRequest(page_size=10),
        "Blocklist/Screen": blocklist_pb2.ScreenRequest(
            sender_name="张伟", recipient=consignment.recipient, items=consignment.items,
            photos=[real_image(".png")]),
        "Inspection/RecordInspection": inspection_pb2.InspectionRecord(event=_scan(w), terminal_id="T-0001",
                                                                       notes="ok"),
        "Inspection/StreamScans": _scan(w),
        "Investigation/SearchShipments": inv.SearchRequest(case_no=CASE, waybill_no=w.waybill_no),
        "Investigation/GetShipmentHistory": inv.GetShipmentHistoryRequest(case_no=CASE, waybill_no=w.waybill_no),
        "Investigation/WatchLeads": inv.WatchLeadsRequest(case_no=CASE, kinds=["HELD"]),
        "Investigation/ExportEvidence": inv.ExportEvidenceRequest(case_no=CASE, waybill_no=w.waybill_no),
        "Investigation/GetConsistencyProof": inv.GetConsistencyProofRequest(case_no=CASE, old_size=1),
        "Investigation/GetTreeHead": inv.GetTreeHeadRequest(case_no=CASE),
        "Investigation/GetInclusionProof": inv.GetInclusionProofRequest(case_no=CASE, leaf_index=0),
        "Investigation/ListAuditRecords": inv.ListAuditRecordsRequest(page_size=5),
    }


def judge(method: MethodDescriptor, answer: Answer, sent: list[Message] | None) -> None:
    """The rules every answer obeys: no forbidden status; INVALID_ARGUMENT names real fields (for generated
    messages) in plain words; an OK stream of scans answers each event once, in order."""
    if currently_in_test_context():  # --hypothesis-show-statistics lists the answers' codes
        event("watching" if answer.watching else answer.code.name)
    assert answer.code not in FORBIDDEN, f"{path_of(method)} answered {answer.describe()}"
    assert "Traceback" not in answer.details and "<class" not in answer.details, answer.describe()
    if answer.code == grpc.StatusCode.INVALID_ARGUMENT and sent is not None:
        assert answer.violations, f"{path_of(method)}: INVALID_ARGUMENT with no BadRequest: {answer.describe()}"
        for field, description in answer.violations:
            assert names_a_field(field, method.input_type), f"{path_of(method)}: {field!r} is not a field " \
                                                            f"({description})"
            assert description, answer.describe()
    if answer.code == grpc.StatusCode.OK and method.full_name == "courier.v1.Inspection.StreamScans":
        acks = [inspection_pb2.ScanAck.FromString(r) for r in answer.responses]
        assert sent is not None and [a.event_id for a in acks] == [e.event_id for e in sent]  # type: ignore[attr-defined]
        for ack in acks:
            for reason in ack.reasons:
                if reason.code == "INVALID_EVENT":
                    assert names_a_field(reason.field, method.input_type), reason


def _requests(method: MethodDescriptor, seed: Message | None) -> st.SearchStrategy[list[Message]]:
    generated = messages(method.input_type)
    one = st.one_of(generated, mutations(seed)) if seed is not None else generated
    return st.lists(one, min_size=1, max_size=3) if method.client_streaming else one.map(lambda m: [m])


@pytest.mark.parametrize("method", METHODS, ids=IDS)
@fuzz_settings(GENERATED)
@given(data=st.data())
async def test_generated_messages_never_break_a_method(fuzz_gateway: FuzzGateway, world: World,
                                                       method: MethodDescriptor, data: st.DataObject) -> None:
    seed = seeds(world).get(path_of(method).removeprefix("/courier.v1."))
    sent = data.draw(_requests(method, seed), label="requests")
    answer = await send(fuzz_gateway.gw.channel, method, [m.SerializeToString() for m in sent],
                        fuzz_gateway.all_roles)
    judge(method, answer, sent)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
@fuzz_settings(RAW)
@given(data=st.data())
async def test_bodies_that_are_not_the_message_are_invalid_argument(
        fuzz_gateway: FuzzGateway, method: MethodDescriptor, data: st.DataObject) -> None:
    kinds = [malformed_bodies(method.input_type).map(lambda b: (b, ""))]
    if any(f.type == f.TYPE_STRING for f in method.input_type.fields):
        kinds.append(bad_utf8_bodies(method.input_type))
    body, bad_field = data.draw(st.one_of(kinds), label="body")
    good = [GetMessageClass(method.input_type)().SerializeToString()] if method.client_streaming else []
    answer = await send(fuzz_gateway.gw.channel, method, [*good, body], fuzz_gateway.all_roles)
    judge(method, answer, None)
    if bad_field:
        assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer.describe()
        assert bad_field in answer.details and "UTF-8" in answer.details, answer.describe()
    elif answer.code != grpc.StatusCode.INVALID_ARGUMENT:
        # Rarely, cut bytes still parse (a trailing field the parser skips): then it is an ordinary request.
        GetMessageClass(method.input_type).FromString(body)


def test_every_served_method_is_fuzzed_and_in_the_role_table() -> None:
    assert {path_of(m) for m in METHODS} == set(ROLE_TABLE)
    assert {m.name for m in METHODS} >= {"StreamScans", "WatchLeads", "ImportEntries"}


def _method(name: str) -> MethodDescriptor:
    return next(m for m in METHODS if path_of(m) == f"/courier.v1.{name}")


_INV = investigation_pb2
# What the fuzzer found, each kept as an example: (method, request, the field the answer must name).
FOUND = [
    # A Timestamp outside 0001..9999 made ToDatetime raise ValueError deep in a converter: INTERNAL.
    ("Acceptance/AcceptParcel", acceptance_pb2.AcceptParcelRequest(
        inspection=acceptance_pb2.OpenBoxInspection(inspected_at={"seconds": -(2**63)})), "inspection.inspected_at"),
    ("Inspection/StreamScans", inspection_pb2.ScanEvent(device_time={"seconds": 0, "nanos": -1}),
     "message 1: device_time"),  # checked at the door, like an undefined enum number: the stream ends
    ("Investigation/SearchShipments", _INV.SearchRequest(case_no=CASE, to_time={"seconds": 2**40}), "to_time"),
    ("Blocklist/AddEntry", blocklist_pb2.AddEntryRequest(expires_at={"nanos": 10**9}), "expires_at"),
    ("Investigation/ListAuditRecords", _INV.ListAuditRecordsRequest(from_time={"seconds": 253402300800}),
     "from_time"),
    # RecordInspection named its event's fields as if they were its own ("event_id", not "event.event_id").
    ("Inspection/RecordInspection", inspection_pb2.InspectionRecord(event=inspection_pb2.ScanEvent(
        event_id="x", device_id="D-1", kind=inspection_pb2.SCAN_KIND_MANUAL)), "event.event_id"),
    # A NUL in a refused WatchLeads call's filters went into the audit's jsonb: PostgreSQL refused it, INTERNAL.
    ("Investigation/WatchLeads", _INV.WatchLeadsRequest(origins=["\x00"]), "case_no"),
    ("Investigation/WatchLeads", _INV.WatchLeadsRequest(case_no=CASE, cursor="\x00", kinds=["\x00"]), "kinds"),
    ("Investigation/GetShipmentHistory", _INV.GetShipmentHistoryRequest(case_no="CASE\x002026", waybill_no="\x00"),
     "case_no"),
    # ExportEvidence sent its waybill_no to PostgreSQL unchecked: a NUL was INTERNAL.
    ("Investigation/ExportEvidence", _INV.ExportEvidenceRequest(case_no=CASE, waybill_no="\x00"), "waybill_no"),
    # A scan image's media_type went unchecked into the event's jsonb: a NUL was INTERNAL (found by the sweep).
    ("Inspection/RecordInspection", inspection_pb2.InspectionRecord(terminal_id="T-1", event=inspection_pb2.ScanEvent(
        event_id="fuzz-media-1", kind=inspection_pb2.SCAN_KIND_MANUAL, images=[inspection_pb2.ScanImage(
            content=b"x", media_type="image/png\x00")])), "event.images[0].media_type"),
    # ListAuditRecords sent its case and principal filters to PostgreSQL unchecked.
    ("Investigation/ListAuditRecords", _INV.ListAuditRecordsRequest(case_no="C\x00"), "case_no"),
    ("Investigation/ListAuditRecords", _INV.ListAuditRecordsRequest(principal="\x00"), "principal"),
    # A page token of 40 nines overflowed bigint in PostgreSQL, and "²" passed isdigit() but not int(): INTERNAL.
    ("Investigation/ListAuditRecords", _INV.ListAuditRecordsRequest(page_token="9" * 40), "page_token"),
    ("Investigation/ListAuditRecords", _INV.ListAuditRecordsRequest(page_token="\u00b2"), "page_token"),
]


@pytest.mark.parametrize(("name", "request_", "field"), FOUND, ids=[f"{n}-{f}" for n, _, f in FOUND])
async def test_what_the_fuzzer_found_stays_fixed(fuzz_gateway: FuzzGateway, name: str, request_: Message,
                                                 field: str) -> None:
    method = _method(name)
    answer = await send(fuzz_gateway.gw.channel, method, [request_.SerializeToString()], fuzz_gateway.all_roles)
    judge(method, answer, [request_])
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer.describe()
    assert field in {f for f, _ in answer.violations}, answer.describe()


@fuzz_settings(24)
@given(image=corrupt_images(), role=st.sampled_from(inspection_pb2.ImageRole.values()))
async def test_corrupt_images_are_answered_on_their_merits(fuzz_gateway: FuzzGateway, world: World, image: bytes,
                                                           role: int) -> None:
    """Corrupt JPEG, PNG and DICOM (truncated, bit-flipped, grafted) through every RPC that takes images: a
    scan is acknowledged (the image kept for a person), a photo that cannot be read is INVALID_ARGUMENT naming
    it, never INTERNAL."""
    gw, md = fuzz_gateway.gw, fuzz_gateway.all_roles
    scan = inspection_pb2.ScanEvent(event_id=f"img-{secrets.token_hex(6)}", device_id="CAM-1",
                                    kind=inspection_pb2.SCAN_KIND_CAMERA, waybill_no=world.waybill_no,
                                    images=[inspection_pb2.ScanImage(role=role, content=image)])
    calls = [
        ("Inspection/StreamScans", scan, ""),
        ("Inspection/RecordInspection", inspection_pb2.InspectionRecord(event=scan, terminal_id="T-1"),
         "event.images[0]"),
        ("Acceptance/AcceptParcel", accept_request(world.sender_ref, inspection=acceptance_pb2.OpenBoxInspection(
            outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED, photos=[image])), "inspection.photos[0]"),
        ("Blocklist/AddEntry", blocklist_pb2.AddEntryRequest(
            kind=blocklist_pb2.ENTRY_KIND_IMAGE_FINGERPRINT, action=blocklist_pb2.ENTRY_ACTION_HOLD, image=image,
            source=blocklist_pb2.EntrySource(agency="上海市市场监督管理局")), "image"),
        ("Blocklist/Screen", blocklist_pb2.ScreenRequest(photos=[image]), "photos[0]"),
    ]
    for name, request_, field in calls:
        method = _method(name)
        answer = await send(gw.channel, method, [request_.SerializeToString()], md)
        judge(method, answer, [request_])
        if name == "Inspection/StreamScans":
            assert answer.code == grpc.StatusCode.OK and len(answer.responses) == 1, answer.describe()
        elif answer.code == grpc.StatusCode.INVALID_ARGUMENT:
            # An empty file is no image at all: AddEntry then wants a value instead.
            named = (field, "value") if name == "Blocklist/AddEntry" and not image else (field,)
            assert all(f.startswith(named) for f, _ in answer.violations), answer.describe()
        else:
            assert answer.code in (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS), answer.describe()


async def test_an_audited_number_past_json_still_reaches_the_evidence_log(fuzz_gateway: FuzzGateway) -> None:
    """Found by the fuzzer: GetConsistencyProof with old_size -2^63 was audited with that number, which RFC 8785
    cannot write, so the evidence log's appender retried that record forever and logged nothing after it."""
    gw, md = fuzz_gateway.gw, fuzz_gateway.all_roles
    case = f"CASE-2026-{secrets.randbelow(10**6):06d}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.investigation.GetConsistencyProof(investigation_pb2.GetConsistencyProofRequest(
            case_no=case, old_size=-(2**63), new_size=2**63 - 1), metadata=md, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await gw.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=case), metadata=md, timeout=20)
    for _ in range(200):
        records = (await gw.investigation.ListAuditRecords(investigation_pb2.ListAuditRecordsRequest(
            case_no=case, page_size=10), metadata=md, timeout=20)).records
        if len(records) == 2 and all(r.leaf_index >= 0 for r in records):
            break
        await asyncio.sleep(0.05)
    assert len(records) == 2 and all(r.leaf_index >= 0 for r in records), records  # both logged, in order
    proof = next(r for r in records if r.method.endswith("GetConsistencyProof"))
    assert '"-9223372036854775808"' in proof.filters_json, proof.filters_json


def _string_paths(descriptor: Descriptor, prefix: str = "", depth: int = 0) -> list[str]:
    """Every string field of a message type, nested ones included (one item of a repeated message)."""
    found: list[str] = []
    for field in descriptor.fields:
        name = f"{prefix}{field.name}"
        if field.type == field.TYPE_STRING:
            found.append(name)
        elif field.type == field.TYPE_MESSAGE and depth < 3 and field.message_type.full_name != _TIMESTAMP:
            found += _string_paths(field.message_type, f"{name}{'[0]' if field.is_repeated else ''}.", depth + 1)
    return found


def _with_text(seed: Message, path: str, value: str) -> Message:
    message = type(seed)()
    message.CopyFrom(seed)
    target: Any = message
    *parents, last = path.split(".")
    for part in parents:
        name, _, index = part.partition("[")
        if index:
            items = getattr(target, name)
            target = items[0] if len(items) else items.add()
        else:
            target = getattr(target, name)
    if target.DESCRIPTOR.fields_by_name[last].is_repeated:
        getattr(target, last).append(value)
    else:
        setattr(target, last, value)
    return message


_TIMESTAMP = "google.protobuf.Timestamp"


@pytest.mark.parametrize("method", METHODS, ids=IDS)
async def test_a_nul_or_a_line_separator_in_any_string_field_is_never_internal(
        fuzz_gateway: FuzzGateway, world: World, method: MethodDescriptor) -> None:
    """Deterministic sweep: each string field (at any depth) of a valid request, in turn, holds a NUL, then a
    line separator: the text rules refuse it naming the field, or the field takes any text; never INTERNAL."""
    seed = seeds(world).get(path_of(method).removeprefix("/courier.v1.")) or GetMessageClass(method.input_type)()
    for path in _string_paths(method.input_type):
        for bad in ("x\x00y", "x\u2028y"):
            request_ = _with_text(seed, path, bad)
            answer = await send(fuzz_gateway.gw.channel, method, [request_.SerializeToString()],
                                fuzz_gateway.all_roles)
            judge(method, answer, [request_])
