"""Bytes that are not the request, and text that no field may hold, sent to every method over a real channel."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import acceptance_pb2, common_pb2, custody_pb2
from gateway.core.model import Role
from gateway.rpc.roles import ROLE_TABLE
from gateway.server import SERVICE_NAMES
from tests.e2e.requests import accept_request, bad_fields, move, verify_request, waybill

T, R = Role.TERMINAL, Role.REVIEWER
CORRUPT = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # a length that runs past the end of the body


def _methods() -> list[tuple[str, object]]:
    """(path, method descriptor) of every method the gateway serves, from the protos themselves."""
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    found = []
    for name in SERVICE_NAMES:
        service = pool.FindServiceByName(name)
        found += [(f"/{service.full_name}/{m.name}", m) for m in service.methods]
    return found


METHODS = _methods()
WITH_TEXT = [(p, m) for p, m in METHODS
             if any(f.type == FieldDescriptor.TYPE_STRING for f in m.input_type.fields)]  # type: ignore[attr-defined]


def _bad_utf8_body(method: object) -> tuple[bytes, str]:
    """A body whose first string field holds bytes that are not UTF-8, and that field's name."""
    for field in method.input_type.fields:  # type: ignore[attr-defined]
        if field.type == FieldDescriptor.TYPE_STRING:
            return bytes([field.number << 3 | 2, 3]) + b"\xe4\xb8\xff", field.name
    raise AssertionError(f"{method} has no string field")


def _role(path: str) -> Role:
    return sorted(ROLE_TABLE[path], key=lambda r: r.value)[0]


async def _send(gateway, path: str, method: object, body: bytes) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    md = gateway.md(_role(path))
    client_streaming = method.client_streaming  # type: ignore[attr-defined]
    server_streaming = method.server_streaming  # type: ignore[attr-defined]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if client_streaming:
            factory = gateway.channel.stream_stream if server_streaming else gateway.channel.stream_unary
            call = factory(path)(iter([body]), metadata=md, timeout=10)
        else:
            factory = gateway.channel.unary_stream if server_streaming else gateway.channel.unary_unary
            call = factory(path)(body, metadata=md, timeout=10)
        if server_streaming:
            async for _ in call:
                pass
        else:
            await call
    return caught.value


def _plain(details: str) -> bool:
    return not any(word in details for word in ("<class", "Error", "Traceback", "google.", "Exception"))


@pytest.mark.parametrize("path,method", METHODS, ids=[p for p, _ in METHODS])
async def test_corrupt_wire_format_is_invalid_argument_in_plain_words(gateway, path, method) -> None:  # type: ignore[no-untyped-def]
    error = await _send(gateway, path, method, CORRUPT)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
    assert _plain(error.details()) and "malformed" in error.details(), error.details()


def test_nearly_every_method_has_a_text_field_to_spoil() -> None:
    assert len(METHODS) == len(ROLE_TABLE) and len(WITH_TEXT) >= len(METHODS) - 3


@pytest.mark.parametrize("path,method", WITH_TEXT, ids=[p for p, _ in WITH_TEXT])
async def test_a_string_that_is_not_utf8_is_named(gateway, path, method) -> None:  # type: ignore[no-untyped-def]
    body, name = _bad_utf8_body(method)
    error = await _send(gateway, path, method, body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
    assert _plain(error.details()) and name in error.details() and "UTF-8" in error.details(), error.details()


async def test_health_and_reflection_refuse_corrupt_bytes_too(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.channel.unary_unary("/grpc.health.v1.Health/Check")(CORRUPT, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and _plain(caught.value.details())


async def test_an_undefined_enum_number_says_unknown_value(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.VerifySender(verify_request(document_type=99), metadata=gateway.md(T))
    assert bad_fields(caught.value) == {"document_type": "unknown value 99 (not defined in DocumentType)"}
    request = accept_request("sr_x", inspection=acceptance_pb2.OpenBoxInspection(outcome=7))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert "unknown value 7" in bad_fields(caught.value)["inspection.outcome"]


async def _verified_ref(gateway) -> str:  # type: ignore[no-untyped-def]
    return (await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))).sender_ref


async def _fails_naming(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field in bad_fields(caught.value), bad_fields(caught.value)


@pytest.mark.parametrize("field", ["name", "terminal_id", "document_number"])
async def test_nul_in_verify_sender_is_refused_naming_the_field(gateway, field: str) -> None:  # type: ignore[no-untyped-def]
    request = verify_request(**{field: getattr(verify_request(), field)[:2] + "\x00" + "1"})
    await _fails_naming(gateway.acceptance.VerifySender(request, metadata=gateway.md(T)), field)


async def test_nul_in_accept_parcel_fields_is_refused_and_nothing_is_written(gateway) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    ref = await _verified_ref(gateway)
    base = accept_request(ref)
    cases = {
        "items[0].description": lambda r: setattr(r.items[0], "description", "书\x00籍"),
        "inspection.notes": lambda r: setattr(r.inspection, "notes", "ok\x00"),
        "sender_address.detail": lambda r: setattr(r.sender_address, "detail", "东华门\x00街道"),
        "terminal_id": lambda r: setattr(r, "terminal_id", "T-0001\nX"),
    }
    for field, spoil in cases.items():
        request = acceptance_pb2.AcceptParcelRequest()
        request.CopyFrom(base)
        spoil(request)
        await _fails_naming(gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T)), field)
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM shipments") == 0
    finally:
        await conn.close()


async def test_multiline_fields_take_line_breaks_but_not_nul(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await _verified_ref(gateway)
    notes = accept_request(ref, inspection=acceptance_pb2.OpenBoxInspection(
        outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED, notes="两本书\n已验视\t无异常"))
    answer = await gateway.acceptance.AcceptParcel(notes, metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    await _fails_naming(gateway.custody.StoreParcel(move(answer.waybill_no, location="BJ\x00-01"),
                                                    metadata=gateway.md(T)), "location")
    await _fails_naming(gateway.custody.ReleaseHold(custody_pb2.ReviewDecisionRequest(
        waybill_no=answer.waybill_no, reason="ok\x00", case_no="C-1"), metadata=gateway.md(R)), "reason")


async def test_an_inspection_dated_far_from_now_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await _verified_ref(gateway)
    for seconds in (32503680000, 86400 * 400):  # 2999-01-01, and a date in 1971
        when = Timestamp(seconds=seconds)
        request = accept_request(ref, inspection=acceptance_pb2.OpenBoxInspection(
            outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED, inspected_at=when))
        await _fails_naming(gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T)),
                            "inspection.inspected_at")
    recent = Timestamp()
    recent.GetCurrentTime()
    recent.seconds -= 3600
    fine = accept_request(ref, waybill_no=waybill(), inspection=acceptance_pb2.OpenBoxInspection(
        outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED, inspected_at=recent))
    assert (await gateway.acceptance.AcceptParcel(fine, metadata=gateway.md(T))).decision == \
        acceptance_pb2.ACCEPT_DECISION_ACCEPTED


async def test_no_inspection_is_invalid_argument_as_the_proto_says(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await _verified_ref(gateway)
    request = accept_request(ref)
    request.ClearField("inspection")
    await _fails_naming(gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T)), "inspection.outcome")
    comment = acceptance_pb2.DESCRIPTOR.enum_types_by_name["InspectionOutcome"].values_by_number[0]
    assert comment.name == "INSPECTION_OUTCOME_UNSPECIFIED"


@pytest.mark.parametrize("role,given,missing", [
    (Role.TERMINAL, {"device_id": "DWS-01"}, "terminal_id"),
    (Role.SCANNER, {"terminal_id": "T-0001"}, "device_id"),
])
async def test_custody_moves_name_the_caller_by_its_kind(gateway, role, given, missing) -> None:  # type: ignore[no-untyped-def]
    ref = await _verified_ref(gateway)
    accepted = await gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
    request = custody_pb2.CustodyMoveRequest(waybill_no=accepted.waybill_no, **given)
    await _fails_naming(gateway.custody.StoreParcel(request, metadata=gateway.md(role)), missing)
    assert common_pb2.PARCEL_STATE_STORED == (await gateway.custody.StoreParcel(
        custody_pb2.CustodyMoveRequest(waybill_no=accepted.waybill_no, terminal_id="T-1", device_id="D-1"),
        metadata=gateway.md(role))).state
