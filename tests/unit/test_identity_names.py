"""Name normalisation, validation and comparison."""

from __future__ import annotations

import pytest

from gateway.core.identity import check_name, names_match

DOT = "\u00b7"


def codes(name: str) -> list[str]:
    """Reason codes for a name."""
    return [r.code for r in check_name(name).reasons]


def test_minority_name_with_middle_dot_is_valid() -> None:
    check = check_name("阿沛·阿旺晋美")
    assert check.valid and check.normalized == "阿沛·阿旺晋美"


@pytest.mark.parametrize("dot", ["\u30fb", "\uff65", "\u2022", "\u2027", "\u2219", "\u0387", "\uff0e", "."])
def test_every_dot_variant_becomes_u00b7(dot: str) -> None:
    check = check_name(f"买买提{dot}艾力")
    assert check.normalized == f"买买提{DOT}艾力"
    assert check.valid


def test_spaces_around_the_dot_and_between_chinese_characters_are_dropped() -> None:
    assert check_name("阿沛 · 阿旺晋美").normalized == "阿沛·阿旺晋美"
    assert check_name("张 三").normalized == "张三"


def test_full_width_latin_and_ideographic_space_fold() -> None:
    check = check_name("ＪＯＨＮ　ＳＭＩＴＨ")
    assert check.valid and check.normalized == "JOHN SMITH"


def test_whitespace_collapses() -> None:
    assert check_name("  John \t  Smith \n").normalized == "John Smith"


def test_diacritics_hyphen_and_typographic_apostrophe() -> None:
    check = check_name("José Müller-O\u2019Brien")
    assert check.valid and check.normalized == "José Müller-O'Brien"


def test_decomposed_accent_is_composed() -> None:
    check = check_name("Jose\u0301")
    assert check.valid and check.normalized == "José"


@pytest.mark.parametrize(("name", "shown"), [
    ("张3", "U+0033"), ("李四😀", "U+1F600"), ("王\x00五", "U+0000"), ("J. Smith", "U+002E"),
    ("Иван", "U+0418"), ("张@三", "U+0040"),
])
def test_disallowed_characters_are_named(name: str, shown: str) -> None:
    [reason] = check_name(name).reasons
    assert reason.code == "NAME_CHARACTERS" and reason.field == "name"
    assert shown in reason.message


@pytest.mark.parametrize("name", ["·张三", "张三·", "阿沛··阿旺", "阿沛・·阿旺", "阿沛 . . 阿旺"])
def test_dot_at_an_end_or_doubled(name: str) -> None:
    assert "NAME_DOT_POSITION" in codes(name)


@pytest.mark.parametrize("name", ["", "   ", "\u3000"])
def test_empty(name: str) -> None:
    assert codes(name) == ["NAME_EMPTY"]


def test_length_limit_is_64() -> None:
    assert codes("张" * 64) == []
    assert codes("张" * 65) == ["NAME_TOO_LONG"]


def test_names_match_ignores_case_width_and_dot_spacing() -> None:
    assert names_match("John Smith", "ＪＯＨＮ  smith")
    assert names_match("阿沛 · 阿旺晋美", "阿沛・阿旺晋美")
    assert not names_match("张三", "张四")
    assert not names_match("John Smith", "Smith John")


def test_empty_names_match_nothing() -> None:
    assert not names_match("", "")
    assert not names_match(" ", "张三")
