"""Real-name acceptance end to end: a real gateway, a real channel, real PostgreSQL, the authority simulator."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import grpc
import pytest

from courier.v1 import acceptance_pb2, common_pb2
from gateway.core.model import Role
from tests.e2e.requests import LI, ZHANG, accept_request, bad_fields, verify_request, waybill

T = Role.TERMINAL


async def verified_ref(gw) -> str:  # type: ignore[no-untyped-def]
    answer = await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED, answer
    return answer.sender_ref


async def count(gw, table: str) -> int:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_verified_sender_gets_ref_facts_and_masked_number(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED
    assert answer.sender_ref.startswith("sr_")
    assert answer.masked_document_number == "110101********1233"
    assert answer.masked_phone == "138****8000"
    assert answer.facts.birth_date == "1990-03-07" and answer.facts.sex == "MALE"
    assert answer.facts.region_code == "110101"
    assert answer.authority_result == "MATCH"
    assert answer.sender_ref_expires_at.seconds > 0


async def test_bad_check_character_is_rejected_and_recorded(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.acceptance.VerifySender(
        verify_request(document_number="110101199003071234"), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_REJECTED
    assert [r.code for r in answer.reasons] == ["DOC_CHECK_CHARACTER"]
    assert answer.sender_ref == ""
    assert await count(gateway, "sender_verifications") == 1


async def test_authority_mismatch_rejects(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.acceptance.VerifySender(verify_request(name=LI["name"]), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_REJECTED
    assert answer.authority_result == "MISMATCH"
    assert "AUTHORITY_MISMATCH" in [r.code for r in answer.reasons]


async def test_authority_unreachable_needs_review_without_ref(gateway, authority_simulator) -> None:  # type: ignore[no-untyped-def]
    await authority_simulator.close()
    answer = await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_NEEDS_REVIEW
    assert answer.sender_ref == ""


async def test_bad_fields_are_named_and_nothing_is_written(gateway) -> None:  # type: ignore[no-untyped-def]
    request = verify_request(document_type=common_pb2.DOCUMENT_TYPE_UNSPECIFIED, name="", terminal_id="x" * 65)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.VerifySender(request, metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_fields(caught.value)) == {"document_type", "name", "terminal_id"}
    assert await count(gateway, "sender_verifications") == 0


async def test_accept_records_shipment_and_first_event(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.acceptance.AcceptParcel(accept_request(await verified_ref(gateway)),
                                                   metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    assert answer.state == common_pb2.PARCEL_STATE_ACCEPTED
    assert answer.masked_recipient_phone == "139****5678"
    assert answer.masked_sender_name == "张*"
    view = await gateway.custody.GetParcel(
        __import__("courier.v1.custody_pb2", fromlist=["x"]).GetParcelRequest(waybill_no=answer.waybill_no),
        metadata=gateway.md(T))
    assert [e.kind for e in view.events] == ["ACCEPTED"]
    assert view.events[0].actor.principal == "test-terminal"


async def test_retry_gets_the_first_answer(gateway) -> None:  # type: ignore[no-untyped-def]
    request = accept_request(await verified_ref(gateway))
    first = await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    again = await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert again.shipment_id == first.shipment_id and again.replayed and not first.replayed
    assert again.recorded_at == first.recorded_at
    assert await count(gateway, "shipments") == 1


async def test_same_key_other_request_is_already_exists(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await verified_ref(gateway)
    request = accept_request(ref)
    await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    other = accept_request(ref, idempotency_key=request.idempotency_key)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(other, metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "idempotency_key" in caught.value.details()


async def test_concurrent_accepts_of_one_waybill_exactly_one_wins(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await verified_ref(gateway)
    number = waybill()
    requests = [accept_request(ref, waybill_no=number, idempotency_key=f"race-{i:04d}-{number}") for i in range(24)]
    results = await asyncio.gather(
        *(gateway.acceptance.AcceptParcel(r, metadata=gateway.md(T)) for r in requests), return_exceptions=True)
    wins = [r for r in results if isinstance(r, acceptance_pb2.AcceptParcelResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1 and len(losses) == 23
    assert {e.code() for e in losses} == {grpc.StatusCode.ALREADY_EXISTS}
    assert await count(gateway, "shipments") == 1
    assert await count(gateway, "shipment_events") == 1


async def test_concurrent_retries_of_one_key_all_get_the_same_shipment(gateway) -> None:  # type: ignore[no-untyped-def]
    request = accept_request(await verified_ref(gateway))
    results = await asyncio.gather(*(gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
                                     for _ in range(12)))
    assert len({r.shipment_id for r in results}) == 1
    assert await count(gateway, "shipments") == 1


async def test_refused_inspection_answers_refused_and_is_recorded(gateway) -> None:  # type: ignore[no-untyped-def]
    inspection = acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_REFUSED_BY_SENDER)
    answer = await gateway.acceptance.AcceptParcel(
        accept_request(await verified_ref(gateway), inspection=inspection), metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_REFUSED
    assert answer.state == common_pb2.PARCEL_STATE_REFUSED
    assert [r.code for r in answer.reasons] == ["INSPECTION_REFUSED_BY_SENDER"]
    assert await count(gateway, "shipments") == 1


async def test_missing_inspection_is_invalid_and_writes_nothing(gateway) -> None:  # type: ignore[no-untyped-def]
    request = accept_request(await verified_ref(gateway))
    request.ClearField("inspection")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inspection.outcome" in bad_fields(caught.value)
    assert await count(gateway, "shipments") == 0


async def test_every_bad_field_is_named(gateway) -> None:  # type: ignore[no-untyped-def]
    request = accept_request(
        await verified_ref(gateway), idempotency_key="short", waybill_no="bad waybill",
        recipient=acceptance_pb2.Recipient(name="", phone="123",
                                           address=common_pb2.Address(region_code="999999", detail="")),
        items=[acceptance_pb2.Item(description="", quantity=0, declared_value_fen=-1)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"idempotency_key", "waybill_no", "recipient.name", "recipient.phone", "recipient.address.region_code",
            "recipient.address.detail", "items[0].description", "items[0].quantity",
            "items[0].declared_value_fen"} <= set(bad_fields(caught.value))
    assert await count(gateway, "shipments") == 0


async def test_unknown_sender_ref_is_never_accepted(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(accept_request("sr_not-a-real-ref"), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "sender_ref" in caught.value.details()
    assert await count(gateway, "shipments") == 0


async def test_expired_sender_ref_is_never_accepted(gateway) -> None:  # type: ignore[no-untyped-def]
    ref = await verified_ref(gateway)
    conn = await asyncpg.connect(gateway.settings.database_url)
    await conn.execute("UPDATE sender_verifications SET expires_at = now() - $1::interval", timedelta(seconds=1))
    await conn.close()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in caught.value.details()


async def test_rejected_sender_ref_cannot_exist(gateway) -> None:  # type: ignore[no-untyped-def]
    answer = await gateway.acceptance.VerifySender(verify_request(name="王五"), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_REJECTED and answer.sender_ref == ""


def customer_request(**overrides):  # type: ignore[no-untyped-def]
    fields = {
        "name": "北京示例科技有限公司", "credit_code": "91110108MA01XXXX0X",
        "responsible_person": acceptance_pb2.PersonDocument(
            document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, document_number=ZHANG["number"],
            name=ZHANG["name"], phone="13800138000"),
        "address": common_pb2.Address(region_code="110108", detail="中关村大街 1 号"), "agreement_no": "SA-2026-001",
    }
    fields.update(overrides)
    return acceptance_pb2.RegisterContractCustomerRequest(**fields)


async def test_contract_customer_parcels_need_no_document(gateway) -> None:  # type: ignore[no-untyped-def]
    from stdnum.cn import uscc

    code = "91110108MA01AB2C3"
    code += uscc.calc_check_digit(code)
    registered = await gateway.acceptance.RegisterContractCustomer(
        customer_request(credit_code=code), metadata=gateway.md(Role.ADMIN))
    assert registered.masked_responsible_document == "110101********1233"
    answer = await gateway.acceptance.AcceptParcel(
        accept_request(contract_customer_id=registered.customer_id), metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.RegisterContractCustomer(customer_request(credit_code=code),
                                                          metadata=gateway.md(Role.ADMIN))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_contract_customer_with_bad_credit_code_is_invalid(gateway) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.acceptance.RegisterContractCustomer(
            customer_request(credit_code="91110108MA01AB2C3Z"), metadata=gateway.md(Role.ADMIN))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "credit_code" in bad_fields(caught.value)
    assert await count(gateway, "contract_customers") == 0


async def test_retry_after_the_sender_ref_expired_still_gets_the_first_answer(gateway) -> None:  # type: ignore[no-untyped-def]
    request = accept_request(await verified_ref(gateway))
    first = await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    conn = await asyncpg.connect(gateway.settings.database_url)
    await conn.execute("UPDATE sender_verifications SET expires_at = now() - interval '1 second'")
    await conn.close()
    again = await gateway.acceptance.AcceptParcel(request, metadata=gateway.md(T))
    assert again.replayed and again.shipment_id == first.shipment_id


async def test_concurrent_look_ups_share_statements_and_each_gets_its_own_sender(gateway) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    lane = {"lane": "VerificationRepository._lookup_senders"}

    def looked_up() -> tuple[float, float]:
        return (REGISTRY.get_sample_value("gateway_group_commit_batch_size_count", lane) or 0.0,
                REGISTRY.get_sample_value("gateway_group_commit_batch_size_sum", lane) or 0.0)

    refs = [await verified_ref(gateway) for _ in range(3)]
    expired = await verified_ref(gateway)
    conn = await asyncpg.connect(gateway.settings.database_url)
    await conn.execute("UPDATE sender_verifications SET expires_at = now() - interval '1 second'"
                       " WHERE sender_ref = $1", expired)
    await conn.close()
    # Known, unknown and expired refs interleaved: one batch answering a row for the wrong call would show.
    asked = [refs[i % 3] if i % 4 else (f"sr_unknown-{i}" if i % 8 else expired) for i in range(40)]
    batches, items = looked_up()
    results = await asyncio.gather(*(gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
                                     for ref in asked), return_exceptions=True)
    after_batches, after_items = looked_up()
    for ref, result in zip(asked, results, strict=True):
        if ref in refs:
            assert isinstance(result, acceptance_pb2.AcceptParcelResponse), (ref, result)
        else:
            assert isinstance(result, grpc.aio.AioRpcError) and result.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert ("expired" in result.details()) == (ref == expired), result.details()
    assert await count(gateway, "shipments") == sum(ref in refs for ref in asked) == 30
    assert after_items - items == 40  # every call looked its sender up, in fewer statements than calls
    assert after_batches - batches < 40


async def test_a_sender_ref_held_by_two_rows_still_answers_once(gateway) -> None:  # type: ignore[no-untyped-def]
    # Since migration 011 the table has no unique constraint on sender_ref (Citus keys); a batched look-up
    # must still give each caller one answer, as a lone fetchrow did, not fail the batch.
    ref = await verified_ref(gateway)
    conn = await asyncpg.connect(gateway.settings.database_url)
    await conn.execute("CREATE TEMP TABLE twin AS SELECT * FROM sender_verifications WHERE sender_ref = $1", ref)
    await conn.execute("UPDATE twin SET id = nextval('sender_verifications_id_seq')")
    await conn.execute("INSERT INTO sender_verifications SELECT * FROM twin")
    assert await conn.fetchval("SELECT count(*) FROM sender_verifications WHERE sender_ref = $1", ref) == 2
    await conn.close()
    answers = await asyncio.gather(*(gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
                                     for _ in range(6)))
    assert all(a.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED for a in answers)
    assert await count(gateway, "shipments") == 6
