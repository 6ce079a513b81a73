"""Passport numbers and ICAO 9303 TD3 machine-readable zones."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.core.identity import DocumentType, Sex, mrz_check_digit, read_td3, verify_document
from tests.fixtures.identity.builders import TODAY, td3

PP = DocumentType.PASSPORT
SPECIMEN_1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
SPECIMEN_2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
SPECIMEN = SPECIMEN_1 + "\n" + SPECIMEN_2
BEFORE_EXPIRY = date(2010, 1, 1)


def codes(number: str, mrz: str | None = None, today: date = TODAY) -> list[str]:
    """Reason codes for a passport number and optional MRZ."""
    return [r.code for r in verify_document(PP, number, today=today, mrz=mrz).reasons]


def mutate(line2: str, position: int, char: str) -> str:
    """The specimen MRZ with one character of line 2 replaced."""
    return SPECIMEN_1 + "\n" + line2[:position] + char + line2[position + 1:]


@pytest.mark.parametrize(("data", "digit"), [
    ("L898902C3", "6"), ("740812", "2"), ("120415", "9"), ("ZE184226B<<<<<", "1"),
    ("L898902C36" + "7408122" + "1204159ZE184226B<<<<<1", "0"),
])
def test_check_digits_of_the_icao_specimen(data: str, digit: str) -> None:
    assert mrz_check_digit(data) == digit


def test_specimen_is_valid_before_expiry_and_yields_facts() -> None:
    check = verify_document(PP, "L898902C3", today=BEFORE_EXPIRY, mrz=SPECIMEN)
    assert check.valid, check.reasons
    facts = check.facts
    assert (facts.birth_date, facts.sex, facts.nationality) == (date(1974, 8, 12), Sex.FEMALE, "UTO")
    assert facts.expiry_date == date(2012, 4, 15)


def test_specimen_is_expired_today() -> None:
    check = verify_document(PP, "L898902C3", today=TODAY, mrz=SPECIMEN)
    assert [(r.code, r.field) for r in check.reasons] == [("DOC_EXPIRED", "mrz")]


def test_mutated_birth_digit_fails_its_check_and_the_composite() -> None:
    assert codes("L898902C3", mutate(SPECIMEN_2, 18, "3"), BEFORE_EXPIRY) == \
        ["MRZ_CHECK_BIRTH_DATE", "MRZ_CHECK_COMPOSITE"]


def test_check_digit_message_names_field_found_and_expected() -> None:
    reasons = verify_document(PP, "L898902C3", today=BEFORE_EXPIRY, mrz=mutate(SPECIMEN_2, 9, "7")).reasons
    assert reasons[0].message == "MRZ document number check digit is 7, expected 6"
    assert [r.code for r in reasons] == ["MRZ_CHECK_DOCUMENT_NUMBER", "MRZ_CHECK_COMPOSITE"]


@pytest.mark.parametrize(("position", "code"), [
    (27, "MRZ_CHECK_EXPIRY_DATE"), (42, "MRZ_CHECK_PERSONAL_NUMBER"), (43, "MRZ_CHECK_COMPOSITE"),
])
def test_each_check_digit_is_verified(position: int, code: str) -> None:
    digit = "5" if SPECIMEN_2[position] != "5" else "6"
    assert code in codes("L898902C3", mutate(SPECIMEN_2, position, digit), BEFORE_EXPIRY)


def test_mrz_number_must_equal_the_given_number() -> None:
    assert codes("L898902C4", SPECIMEN, BEFORE_EXPIRY) == ["MRZ_NUMBER_MISMATCH"]


def test_concatenated_lowercase_mrz_with_crlf_is_read() -> None:
    assert codes("L898902C3", SPECIMEN.lower().replace("\n", "\r\n"), BEFORE_EXPIRY) == []
    assert codes("L898902C3", SPECIMEN_1 + SPECIMEN_2, BEFORE_EXPIRY) == []


@pytest.mark.parametrize("mrz", [
    SPECIMEN_1, SPECIMEN_1 + "\n" + SPECIMEN_2[:-1], SPECIMEN + "\n" + SPECIMEN_2,
    SPECIMEN.replace("ERIKSSON", "ERIK-SON"),
])
def test_malformed_mrz(mrz: str) -> None:
    assert codes("L898902C3", mrz, BEFORE_EXPIRY) == ["MRZ_FORMAT"]


def test_mrz_of_a_visa_is_refused() -> None:
    [reason] = verify_document(PP, "L898902C3", today=BEFORE_EXPIRY, mrz="V" + SPECIMEN[1:]).reasons
    assert reason.code == "MRZ_FORMAT" and "expected P" in reason.message


def test_read_td3_returns_lines_or_reason() -> None:
    assert read_td3(SPECIMEN) == (SPECIMEN_1, SPECIMEN_2)
    assert not isinstance(read_td3("P<"), tuple)


def test_empty_personal_number_may_use_filler_or_zero_check() -> None:
    line1, line2 = td3("X1234567", personal="").split("\n")
    assert line2[28:43] == "<" * 15
    assert codes("X1234567", line1 + "\n" + line2) == []
    # '<' and '0' both count 0 in the composite, so only the personal check position changes.
    assert codes("X1234567", line1 + "\n" + line2[:42] + "0" + line2[43:]) == []
    assert codes("X1234567", line1 + "\n" + line2[:42] + "1" + line2[43:]) == \
        ["MRZ_CHECK_PERSONAL_NUMBER", "MRZ_CHECK_COMPOSITE"]


def test_impossible_mrz_dates() -> None:
    assert codes("X1234567", td3("X1234567", birth="741332")) == ["MRZ_INVALID_DATE"]
    assert codes("X1234567", td3("X1234567", expiry="320231")) == ["MRZ_INVALID_DATE"]


def test_germany_one_letter_state_code_maps_to_iso() -> None:
    mrz = td3("C01X00T47", issuing="D<<", nationality="D<<")
    check = verify_document(PP, "C01X00T47", today=TODAY, mrz=mrz)
    assert check.valid, check.reasons
    assert check.facts.nationality == "DEU"


@pytest.mark.parametrize("number", ["E12345678", "EA1234567", "G12345678"])
def test_chinese_ordinary_passports(number: str) -> None:
    assert codes(number, td3(number, issuing="CHN", nationality="CHN", names="ZHANG<<SAN")) == []


@pytest.mark.parametrize("number", ["E1234567A", "EI1234567", "G1234567"])
def test_chinese_e_and_g_series_must_fit_their_layout(number: str) -> None:
    assert codes(number, td3(number, issuing="CHN", nationality="CHN")) == ["DOC_FORMAT"]


def test_chinese_rule_applies_only_to_chinese_passports() -> None:
    assert codes("E1234567A", td3("E1234567A")) == []


def test_passport_number_without_mrz() -> None:
    check = verify_document(PP, " e1234 5678 ", today=TODAY)
    assert check.valid and check.number == "E12345678"
    assert check.masked == "E******78"
    assert verify_document(PP, "E12345678", today=TODAY, mrz="").valid


@pytest.mark.parametrize(("number", "expected"), [
    ("AB12", ["DOC_LENGTH"]), ("A" * 18, ["DOC_LENGTH"]), ("E1234567$", ["DOC_CHARACTERS"]),
    ("", ["DOC_EMPTY"]),
])
def test_passport_number_shape(number: str, expected: list[str]) -> None:
    assert codes(number) == expected


def test_two_digit_birth_year_takes_the_latest_century_not_after_today() -> None:
    on_today = verify_document(PP, "X1234567", today=TODAY, mrz=td3("X1234567", birth="240601"))
    tomorrow = verify_document(PP, "X1234567", today=TODAY, mrz=td3("X1234567", birth="240602"))
    assert on_today.facts.birth_date == date(2024, 6, 1)
    assert tomorrow.facts.birth_date == date(1924, 6, 2)


def test_mrz_with_a_non_passport_type_is_refused_not_ignored() -> None:
    check = verify_document(DocumentType.RESIDENT_ID, "110101199003071233", today=TODAY, mrz=SPECIMEN)
    assert [(r.code, r.field) for r in check.reasons] == [("MRZ_NOT_APPLICABLE", "mrz")]
