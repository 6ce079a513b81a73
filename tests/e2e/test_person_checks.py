"""Who checked the person: the identity authority where it covers the document, else the courier at the counter."""

from __future__ import annotations

import asyncpg
import pytest

from courier.v1 import acceptance_pb2, common_pb2
from gateway.core.model import Role
from gateway.security.sealing import Sealer
from tests.e2e.requests import verify_request

T = Role.TERMINAL
MATCHED, MISMATCHED = acceptance_pb2.IN_PERSON_CHECK_MATCHED, acceptance_pb2.IN_PERSON_CHECK_MISMATCHED
UNCHECKED_TYPES = {
    common_pb2.DOCUMENT_TYPE_PASSPORT: ("E12345678", "ZHANG WEI"),
    common_pb2.DOCUMENT_TYPE_TRAVEL_PERMIT_HK_MO: ("H12345678", "陈大文"),
    common_pb2.DOCUMENT_TYPE_FOREIGN_PERMANENT_RESIDENT: ("911101199001010015", "JOHN SMITH"),
}


def _request(kind: int, check: int = 0) -> acceptance_pb2.VerifySenderRequest:
    number, name = UNCHECKED_TYPES[kind]
    return verify_request(document_type=kind, document_number=number, name=name, in_person_check=check)


@pytest.mark.parametrize("kind", list(UNCHECKED_TYPES))
async def test_a_document_no_authority_checks_needs_the_couriers_check(gateway, kind: int) -> None:  # type: ignore[no-untyped-def]
    unchecked = await gateway.acceptance.VerifySender(_request(kind), metadata=gateway.md(T))
    if unchecked.verdict == acceptance_pb2.VERDICT_REJECTED:  # the number itself must pass its rules first
        pytest.fail(f"fixture number rejected: {unchecked.reasons}")
    assert unchecked.verdict == acceptance_pb2.VERDICT_NEEDS_REVIEW and unchecked.sender_ref == ""
    assert [(r.code, r.field) for r in unchecked.reasons] == [("IN_PERSON_CHECK_REQUIRED", "in_person_check")]
    checked = await gateway.acceptance.VerifySender(_request(kind, MATCHED), metadata=gateway.md(T))
    assert checked.verdict == acceptance_pb2.VERDICT_VERIFIED and checked.sender_ref.startswith("sr_")
    assert checked.authority_result == "NOT_CHECKED"
    mismatch = await gateway.acceptance.VerifySender(_request(kind, MISMATCHED), metadata=gateway.md(T))
    assert mismatch.verdict == acceptance_pb2.VERDICT_REJECTED
    assert [r.code for r in mismatch.reasons] == ["IN_PERSON_MISMATCH"]


async def test_the_authority_still_decides_what_it_covers(gateway) -> None:  # type: ignore[no-untyped-def]
    plain = await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
    assert plain.verdict == acceptance_pb2.VERDICT_VERIFIED and plain.authority_result == "MATCH"
    # The courier's MATCHED does not overrule an authority that says the number is unknown.
    unknown = await gateway.acceptance.VerifySender(
        verify_request(document_number="11010119900307125X", in_person_check=MATCHED), metadata=gateway.md(T))
    assert unknown.verdict == acceptance_pb2.VERDICT_REJECTED and unknown.authority_result == "NOT_FOUND"
    refused = await gateway.acceptance.VerifySender(verify_request(in_person_check=MISMATCHED),
                                                    metadata=gateway.md(T))
    assert refused.verdict == acceptance_pb2.VERDICT_REJECTED


async def test_an_unreachable_authority_falls_back_to_the_couriers_check(gateway, authority_simulator) -> None:  # type: ignore[no-untyped-def]
    await authority_simulator.close()
    waiting = await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
    assert waiting.verdict == acceptance_pb2.VERDICT_NEEDS_REVIEW
    assert "in_person_check" in waiting.reasons[0].message
    checked = await gateway.acceptance.VerifySender(verify_request(in_person_check=MATCHED), metadata=gateway.md(T))
    assert checked.verdict == acceptance_pb2.VERDICT_VERIFIED and checked.authority_result == "UNAVAILABLE"


async def test_a_legacy_number_is_sealed_and_masked_never_plain(gateway) -> None:  # type: ignore[no-untyped-def]
    legacy = "610104620927690"
    answer = await gateway.acceptance.VerifySender(
        verify_request(document_number=legacy, name="刘洋"), metadata=gateway.md(T))
    assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED
    assert answer.facts.upgraded_from == "610104*****7690"
    assert legacy not in answer.SerializeToString().decode("utf-8", "replace")
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        row = await conn.fetchrow("SELECT facts::text AS facts, legacy_number_enc, in_person_check"
                                  " FROM sender_verifications")
    finally:
        await conn.close()
    assert legacy not in row["facts"] and "610104*****7690" in row["facts"]
    sealer = Sealer(gateway.settings.data_key, gateway.settings.index_key)
    assert sealer.open(row["legacy_number_enc"], context="document") == legacy
