"""Travel permits for HK/Macao/Taiwan residents, officer's and armed police IDs."""

from __future__ import annotations

import pytest

from gateway.core.identity import DocumentType, verify_document
from tests.fixtures.identity.builders import TODAY

HK_MO = DocumentType.TRAVEL_PERMIT_HK_MO
TW = DocumentType.TRAVEL_PERMIT_TW
MIL = DocumentType.MILITARY_ID
APF = DocumentType.ARMED_POLICE_ID


def codes(document_type: DocumentType, number: str) -> list[str]:
    """Reason codes for a number."""
    return [r.code for r in verify_document(document_type, number, today=TODAY).reasons]


@pytest.mark.parametrize(("raw", "canonical"), [("H12345678", "H12345678"), ("m1234567801", "M1234567801"),
                                                ("Ｈ１２３４５６７８", "H12345678")])
def test_hk_mo_permit_valid_forms(raw: str, canonical: str) -> None:
    check = verify_document(HK_MO, raw, today=TODAY)
    assert check.valid, check.reasons
    assert check.number == canonical


@pytest.mark.parametrize(("number", "expected"), [
    ("X12345678", ["DOC_FORMAT"]), ("H1234567", ["DOC_LENGTH"]), ("H123456789", ["DOC_LENGTH"]),
    ("H1234567A", ["DOC_CHARACTERS"]), ("", ["DOC_EMPTY"]), ("812345678", ["DOC_FORMAT", "DOC_LENGTH"]),
    ("12345678", ["DOC_FORMAT"]),
])
def test_hk_mo_permit_invalid_forms(number: str, expected: list[str]) -> None:
    assert codes(HK_MO, number) == expected


@pytest.mark.parametrize(("raw", "canonical"), [
    ("12345678", "12345678"), ("1234567890", "1234567890"), ("1234567890(B)", "1234567890B"),
    ("123456789B", "123456789B"),
])
def test_tw_permit_valid_forms(raw: str, canonical: str) -> None:
    check = verify_document(TW, raw, today=TODAY)
    assert check.valid, check.reasons
    assert check.number == canonical


@pytest.mark.parametrize(("number", "expected"), [
    ("1234567", ["DOC_LENGTH"]), ("123456789", ["DOC_LENGTH"]), ("12345678B", ["DOC_LENGTH"]),
    ("12AB5678", ["DOC_FORMAT"]), ("1234567*", ["DOC_CHARACTERS"]), ("", ["DOC_EMPTY"]),
])
def test_tw_permit_invalid_forms(number: str, expected: list[str]) -> None:
    assert codes(TW, number) == expected


@pytest.mark.parametrize(("raw", "canonical"), [
    ("南字第12345678号", "南字第12345678号"), ("南字第123456", "南字第123456号"),
    ("海后字第1234567号", "海后字第1234567号"), (" 南字第１２３４５６７８号 ", "南字第12345678号"),
])
def test_officer_id_valid_forms_canonicalise_with_hao(raw: str, canonical: str) -> None:
    check = verify_document(MIL, raw, today=TODAY)
    assert check.valid, check.reasons
    assert check.number == canonical


@pytest.mark.parametrize(("number", "expected"), [
    ("12345678", ["DOC_FORMAT"]), ("ABC字第123456", ["DOC_FORMAT"]),
    ("南北中西字第123456", ["DOC_FORMAT"]), ("南字第12345", ["DOC_LENGTH"]),
    ("南字第123456789", ["DOC_LENGTH"]), ("南字第12a45678", ["DOC_CHARACTERS"]),
    ("武字第123456号", ["DOC_WRONG_TYPE"]), ("", ["DOC_EMPTY"]),
])
def test_officer_id_invalid_forms(number: str, expected: list[str]) -> None:
    assert codes(MIL, number) == expected


def test_armed_police_id() -> None:
    assert verify_document(APF, "武字第123456号", today=TODAY).valid
    assert codes(APF, "武字第1234567") == []
    assert codes(APF, "南字第123456号") == ["DOC_WRONG_TYPE"]
    assert codes(APF, "武字第12345") == ["DOC_LENGTH"]


def test_officer_id_mask_hides_the_serial_but_keeps_the_unit() -> None:
    assert verify_document(MIL, "南字第12345678号", today=TODAY).masked == "南字第1*****78号"
