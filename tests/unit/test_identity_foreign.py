"""Foreign permanent resident ID numbers, 2023 (18 digits) and 2017 (15 characters) forms."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.core.identity import DocumentType, verify_document
from tests.fixtures.identity.builders import TODAY, foreign_2023

FPR = DocumentType.FOREIGN_PERMANENT_RESIDENT


def codes(number: str) -> list[str]:
    """Reason codes for a permanent resident ID number."""
    return [r.code for r in verify_document(FPR, number, today=TODAY).reasons]


def test_2023_form_valid_with_birth_and_issuing_province() -> None:
    check = verify_document(FPR, foreign_2023(), today=TODAY)
    assert check.valid, check.reasons
    assert check.facts.birth_date == date(1985, 6, 15)
    assert (check.facts.region_code, check.facts.region_name) == ("110000", "北京市")


def test_2023_form_wrong_check_character() -> None:
    good = foreign_2023()
    bad = good[:-1] + ("1" if good[-1] != "1" else "2")
    [reason] = verify_document(FPR, bad, today=TODAY).reasons
    assert reason.code == "DOC_CHECK_CHARACTER"
    assert reason.message == f"check character is {bad[-1]}, expected {good[-1]}"


@pytest.mark.parametrize("province", ["99", "00", "81"])
def test_2023_form_issuing_province_must_be_mainland(province: str) -> None:
    assert codes(foreign_2023(province=province)) == ["DOC_UNKNOWN_REGION"]


def test_2023_form_impossible_and_future_birth_dates() -> None:
    assert codes(foreign_2023(birth="19850231")) == ["DOC_INVALID_DATE"]
    assert codes(foreign_2023(birth="20250101")) == ["DOC_FUTURE_BIRTH"]


def test_18_digits_not_starting_with_9_is_a_format_error() -> None:
    assert codes("1" + foreign_2023()[1:]) == ["DOC_FORMAT"]


def test_2023_form_characters() -> None:
    assert codes(foreign_2023()[:5] + "A" + foreign_2023()[6:]) == ["DOC_CHARACTERS"]


def test_2017_form_valid_with_nationality_and_birth() -> None:
    check = verify_document(FPR, "usa110085061501", today=TODAY)
    assert check.valid, check.reasons
    assert check.number == "USA110085061501"
    assert check.facts.nationality == "USA"
    assert check.facts.birth_date == date(1985, 6, 15)
    assert check.facts.region_code == "110000"


def test_2017_form_two_digit_year_takes_the_latest_past_century() -> None:
    assert verify_document(FPR, "GBR310012031201", today=TODAY).facts.birth_date == date(2012, 3, 12)
    assert verify_document(FPR, "GBR310030031201", today=TODAY).facts.birth_date == date(1930, 3, 12)


def test_2017_form_unknown_nationality() -> None:
    assert codes("XYZ110085061501") == ["DOC_UNKNOWN_NATIONALITY"]


def test_2017_form_unknown_province_and_bad_date() -> None:
    assert codes("USA990085061501") == ["DOC_UNKNOWN_REGION"]
    assert codes("USA110085023001") == ["DOC_INVALID_DATE"]


def test_2017_form_layout() -> None:
    assert codes("US1110085061501") == ["DOC_FORMAT"]
    assert codes("USA11008506150A") == ["DOC_FORMAT"]


@pytest.mark.parametrize("number", ["USA11008506150", "9110840198506150011", "1234"])
def test_other_lengths(number: str) -> None:
    assert codes(number) == ["DOC_LENGTH"]
