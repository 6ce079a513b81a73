"""Contact phone numbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.identity import check_phone


@pytest.mark.parametrize("raw", [
    "13800138000", "+86 138 0013 8000", "１３８００１３８０００", "008613800138000",
    "86 138-0013-8000", "(+86) 138.0013.8000",
])
def test_chinese_mobile_in_many_spellings(raw: str) -> None:
    check = check_phone(raw)
    assert check.valid, check.reasons
    assert (check.e164, check.kind, check.masked) == ("+8613800138000", "MOBILE", "138****8000")


@pytest.mark.parametrize(("raw", "e164", "masked"), [
    ("010-12345678", "+861012345678", "010-****5678"), ("021 6123 4567", "+862161234567", "021-****4567"),
    ("+86 10 1234 5678", "+861012345678", "010-****5678"),
])
def test_landline_with_area_code(raw: str, e164: str, masked: str) -> None:
    check = check_phone(raw)
    assert check.valid and check.kind == "FIXED_LINE"
    assert (check.e164, check.masked) == (e164, masked)


def test_foreign_number_with_country_code_is_valid_other() -> None:
    check = check_phone("+44 20 7946 0958")
    assert check.valid and check.kind == "OTHER" and check.e164 == "+442079460958"
    assert check.masked == "+44 ****0958"


def test_default_region_applies_to_national_numbers() -> None:
    assert check_phone("020 7946 0958", default_region="GB").e164 == "+442079460958"
    assert check_phone("020 7946 0958").e164 == "+862079460958"


@pytest.mark.parametrize("raw", ["12000138000", "12345678", "0755-8888888"])
def test_numbers_in_no_allocated_range(raw: str) -> None:
    assert [r.code for r in check_phone(raw).reasons] == ["PHONE_INVALID"]


@pytest.mark.parametrize(("raw", "found"), [("1380013800", "found 10"), ("138001380001", "found 12")])
def test_mobile_with_a_digit_missing_or_extra(raw: str, found: str) -> None:
    [reason] = check_phone(raw).reasons
    assert reason.code == "PHONE_LENGTH" and found in reason.message


@pytest.mark.parametrize("raw", ["", "1-800-FLOWERS", "138 0013 8000 ext 5", "+999 1234", "1"])
def test_unreadable_numbers(raw: str) -> None:
    check = check_phone(raw)
    assert [r.code for r in check.reasons] == ["PHONE_FORMAT"]
    assert check.e164 == "" and not check.valid


def test_invalid_number_mask_reveals_at_most_40_percent() -> None:
    masked = check_phone("12345678").masked
    assert sum(ch != "*" for ch in masked) <= 0.4 * len(masked)


@given(st.from_regex(r"1[0-9]{10}", fullmatch=True))
def test_fast_mobile_path_agrees_with_the_full_parse(number: str) -> None:
    from gateway.core.identity import phones

    fast = phones._fast_cn_mobile(number)
    if fast is None:
        return
    parsed = phonenumbers.parse(number, "CN")
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    assert fast.e164 == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_fast_mobile_path_takes_the_common_case() -> None:
    from gateway.core.identity import phones

    assert phones._fast_cn_mobile("13800138000") is not None
    assert phones._fast_cn_mobile("12345678901") is None  # not a mobile range: the full parse explains why
