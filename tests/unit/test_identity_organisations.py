"""Unified social credit codes."""

from __future__ import annotations

import pytest
from stdnum.cn import uscc

from gateway.core.identity import check_organisation_code
from tests.fixtures.identity.builders import uscc_code

KNOWN = "91110000600037341L"  # python-stdnum's own doctest example


def codes(code: str) -> list[str]:
    """Reason codes for a credit code."""
    return [r.code for r in check_organisation_code(code).reasons]


def test_known_valid_code() -> None:
    assert uscc.is_valid(KNOWN)
    check = check_organisation_code(" 9111 0000-6000 3734 1l ")
    assert check.valid and check.code == KNOWN
    assert check.region_code == "110000"
    assert check.masked == "911100********341L"


def test_wrong_check_character_names_found_and_expected() -> None:
    [reason] = check_organisation_code(KNOWN[:-1] + "M").reasons
    assert reason.code == "USCC_CHECK_CHARACTER"
    assert reason.message == "check character is M, expected L"


@pytest.mark.parametrize("code", [KNOWN[:-1], KNOWN + "0", ""])
def test_length(code: str) -> None:
    assert codes(code) == ["USCC_LENGTH"]


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V", "*"])
def test_characters_outside_the_gb32100_alphabet(letter: str) -> None:
    [reason] = check_organisation_code(KNOWN[:10] + letter + KNOWN[11:]).reasons
    assert reason.code == "USCC_CHARACTERS" and f"'{letter}'" in reason.message


def test_letters_in_the_region_part() -> None:
    assert codes(uscc_code("911A0000600037341")) == ["USCC_CHARACTERS"]


def test_unknown_region_with_a_correct_check() -> None:
    assert codes(uscc_code("91999999600037341")) == ["USCC_UNKNOWN_REGION"]


def test_unknown_authority_with_a_correct_check() -> None:
    assert codes(uscc_code("B1110000600037341")) == ["USCC_AUTHORITY"]
    assert codes(uscc_code("90110000600037341")) == ["USCC_AUTHORITY"]


def test_central_government_region_100000_is_accepted() -> None:
    assert codes(uscc_code("11100000MB0000001")) == []


def test_agricultural_authority_n_is_accepted_though_stdnum_refuses_it() -> None:
    code = uscc_code("N2110105MF0000001")
    assert not uscc.is_valid(code)
    assert check_organisation_code(code).valid
