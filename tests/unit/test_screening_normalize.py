"""Text normalisation: the folding every text matcher relies on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.screening import normalize_text
from gateway.core.screening.normalize import compact_with_gaps, fold, is_han, strip_accents


def test_full_width_latin_and_punctuation_fold_to_ascii() -> None:
    assert normalize_text("Ａ 货") == "a货"
    assert normalize_text("1：1") == "1:1"
    assert normalize_text("ＬＶ") == "lv"


def test_traditional_becomes_simplified() -> None:
    assert normalize_text("陳偉明") == "陈伟明"
    assert normalize_text("原單 復刻") == "原单复刻"


def test_whitespace_of_every_kind_is_removed() -> None:
    assert normalize_text(" 高\u3000仿\t A\n货 ") == "高仿a货"


def test_middle_dot_variants_are_removed() -> None:
    variants = ["阿沛·阿旺晋美", "阿沛•阿旺晋美", "阿沛・阿旺晋美", "阿沛･阿旺晋美", "阿沛‧阿旺晋美", "阿沛∙阿旺晋美"]
    assert {normalize_text(v) for v in variants} == {"阿沛阿旺晋美"}


def test_fold_keeps_spacing_but_lowers_case() -> None:
    assert fold("John SMITH") == "john smith"
    assert fold("ＪＯＨＮ　ＳＭＩＴＨ") == "john smith"


def test_gaps_mark_where_separators_stood() -> None:
    compact, gaps = compact_with_gaps("lv bag·x")
    assert compact == "lvbagx"
    assert 2 in gaps and 5 in gaps and 1 not in gaps


def test_accents_are_stripped_and_han_is_recognised() -> None:
    assert strip_accents("José Nguyễn") == "Jose Nguyen"
    assert is_han("张") and is_han("㐀") and not is_han("a") and not is_han("・")


@given(st.text(max_size=40))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert not any(ch.isspace() for ch in once)
