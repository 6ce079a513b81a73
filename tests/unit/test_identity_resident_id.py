"""Resident ID (居民身份证) and HK/Macao/Taiwan residence permit numbers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from gateway.core.identity import DocumentType, Sex, mod11_2_check, upgrade_legacy, verify_document
from tests.fixtures.identity.builders import CURRENT_REGIONS, TODAY, check_mod11_2, resident_id

RID = DocumentType.RESIDENT_ID
HMT = DocumentType.RESIDENCE_PERMIT_HMT


def codes(document_type: DocumentType, number: str, today: date = TODAY) -> list[str]:
    """Reason codes for a number, in order."""
    return [r.code for r in verify_document(document_type, number, today=today).reasons]


def test_the_brief_example_number_is_computed_not_remembered() -> None:
    assert resident_id("110101", "19900307", "123") == "110101199003071233"


def test_valid_number_yields_birth_sex_region_and_mask() -> None:
    check = verify_document(RID, "110101199003071233", today=TODAY)
    assert check.valid and check.reasons == ()
    assert check.facts.birth_date == date(1990, 3, 7)
    assert check.facts.sex is Sex.MALE
    assert (check.facts.region_code, check.facts.region_name) == ("110101", "北京市东城区")
    assert check.masked == "110101********1233"


def test_even_sequence_digit_is_female() -> None:
    assert verify_document(RID, resident_id(sequence="124"), today=TODAY).facts.sex is Sex.FEMALE


def test_full_width_digits_spaces_and_lower_x_are_folded() -> None:
    number = next(n for n in (resident_id(sequence=f"{s:03d}") for s in range(1000)) if n.endswith("X"))
    full_width = number[6:-1].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    messy = " " + number[:6] + " " + full_width + "x "
    check = verify_document(RID, messy, today=TODAY)
    assert check.valid, check.reasons
    assert check.number == number


def test_legacy_15_digit_number_is_upgraded_exactly() -> None:
    assert upgrade_legacy("610104620927690") == "610104196209276908"
    check = verify_document(RID, "610104620927690", today=TODAY)
    assert check.valid
    assert check.number == "610104196209276908"
    assert check.facts.upgraded_from == "610104620927690"
    assert check.facts.birth_date == date(1962, 9, 27)


def test_wrong_check_character_names_found_and_expected() -> None:
    number = resident_id()[:-1] + "4"
    [reason] = verify_document(RID, number, today=TODAY).reasons
    assert reason.code == "DOC_CHECK_CHARACTER"
    assert reason.field == "document_number"
    assert reason.message == "check character is 4, expected 3"


@pytest.mark.parametrize("number", ["11010119900307123", "1101011990030712333", "1101011990"])
def test_wrong_length(number: str) -> None:
    assert codes(RID, number) == ["DOC_LENGTH"]


@pytest.mark.parametrize("number", ["11010119900307123A", "1101011990X3071233", "61010462092769X"])
def test_characters_other_than_digits_and_final_x(number: str) -> None:
    assert codes(RID, number) == ["DOC_CHARACTERS"]


def test_empty_number() -> None:
    assert codes(RID, "  ") == ["DOC_EMPTY"]


def test_unknown_region() -> None:
    assert codes(RID, resident_id(region="999999")) == ["DOC_UNKNOWN_REGION"]


def test_impossible_date_is_reported_even_with_a_correct_check() -> None:
    assert codes(RID, resident_id(birth="19900230")) == ["DOC_INVALID_DATE"]


def test_several_problems_are_all_reported() -> None:
    good = resident_id(birth="19901301")
    number = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert set(codes(RID, number)) == {"DOC_CHECK_CHARACTER", "DOC_INVALID_DATE"}


def test_future_birth_date() -> None:
    assert codes(RID, resident_id(birth="20240602")) == ["DOC_FUTURE_BIRTH"]
    assert codes(RID, resident_id(birth="20240601")) == []


def test_age_limit_is_130_years_inclusive() -> None:
    assert codes(RID, resident_id(birth="18940601")) == []
    assert codes(RID, resident_id(birth="18930601")) == ["DOC_IMPLAUSIBLE_AGE"]


def test_region_abolished_before_birth() -> None:
    # 110103 崇文区 was merged into 东城区 in 2010.
    assert codes(RID, resident_id(region="110103", birth="20120101")) == ["DOC_REGION_NOT_VALID_AT_BIRTH"]
    assert codes(RID, resident_id(region="110103", birth="20090101")) == []


def test_region_created_after_birth_is_accepted_unlike_stdnum() -> None:
    # 110112 通州区 dates from 1997; people born earlier got it when their card was issued.
    number = resident_id(region="110112", birth="19900101")
    assert not ric.is_valid(number)
    assert verify_document(RID, number, today=TODAY).valid


def test_region_name_is_the_one_in_force_in_the_birth_year() -> None:
    assert verify_document(RID, resident_id("130502", "19900101"), today=TODAY).facts.region_name == \
        "河北省邢台市桥东区"
    assert verify_document(RID, resident_id("130502", "20210101"), today=TODAY).facts.region_name == \
        "河北省邢台市襄都区"


@pytest.mark.parametrize("region", ["810000", "820000", "830000"])
def test_residence_permit_valid_for_any_birth_year(region: str) -> None:
    check = verify_document(HMT, resident_id(region=region, birth="19600101"), today=TODAY)
    assert check.valid, check.reasons
    assert check.facts.region_code == region


def test_residence_permit_region_names() -> None:
    assert verify_document(HMT, resident_id("830000"), today=TODAY).facts.region_name == "台湾地区"
    assert verify_document(HMT, resident_id("820000"), today=TODAY).facts.region_name == "澳门特别行政区"


def test_residence_permit_submitted_as_resident_id_is_wrong_type() -> None:
    assert codes(RID, resident_id(region="810000")) == ["DOC_WRONG_TYPE"]


def test_resident_id_submitted_as_residence_permit_is_wrong_type() -> None:
    assert codes(HMT, resident_id(region="110101")) == ["DOC_WRONG_TYPE"]


def test_residence_permit_has_no_legacy_15_digit_form() -> None:
    assert codes(HMT, "810000600101123") == ["DOC_LENGTH"]
    assert codes(RID, "110101600101123") == []


def test_residence_permit_with_other_hk_prefix_is_unknown_region() -> None:
    assert codes(HMT, resident_id(region="810001")) == ["DOC_UNKNOWN_REGION"]


def test_foreign_permanent_resident_number_as_resident_id_is_wrong_type() -> None:
    body = "911840198506150" + "01"
    assert codes(RID, body + check_mod11_2(body)) == ["DOC_WRONG_TYPE"]


@st.composite
def plausible_bodies(draw: st.DrawFn) -> str:
    """17-digit bodies with a current region and a birth date in the plausible range."""
    region = draw(st.sampled_from(CURRENT_REGIONS))
    birth = draw(st.dates(min_value=date(1895, 1, 1), max_value=TODAY))
    sequence = draw(st.integers(min_value=0, max_value=999))
    return f"{region}{birth:%Y%m%d}{sequence:03d}"


@given(body=plausible_bodies(), position=st.integers(0, 16), shift=st.integers(1, 9))
def test_valid_bodies_validate_and_any_single_digit_change_invalidates(body: str, position: int,
                                                                        shift: int) -> None:
    number = body + mod11_2_check(body)
    assert verify_document(RID, number, today=TODAY).valid
    flipped = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1:]
    assert not verify_document(RID, flipped, today=TODAY).valid


@given(body=plausible_bodies(), replacement=st.sampled_from("0123456789X"))
def test_any_other_check_character_invalidates(body: str, replacement: str) -> None:
    check = mod11_2_check(body)
    if replacement != check:
        assert codes(RID, body + replacement) == ["DOC_CHECK_CHARACTER"]


@given(body=st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_mod11_2_agrees_with_the_textbook_weights(body: str) -> None:
    assert mod11_2_check(body) == check_mod11_2(body)
