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


def test_punctuation_inside_a_word_is_a_gap_but_stays_at_its_edges() -> None:
    assert compact_with_gaps("高-仿") == ("高仿", frozenset({1}))
    assert compact_with_gaps("A_货") == ("a货", frozenset({1}))
    assert normalize_text("L.V 包") == "lv包"
    assert normalize_text("【高仿】") == "【高仿】"
    assert normalize_text("C++") == "c++"  # a listed "C++" must not shrink to "c"
    assert normalize_text("高\u200b仿\u00ad包") == "高仿包"  # invisible characters go without a gap


def test_ratios_are_written_in_arabic_numerals_with_a_plain_colon() -> None:
    for text in ("1:1", "1∶1", "1：1", "1﹕1", "1比1", "一比一", "壹比壹", "一 比 一", "1 : 1"):
        assert normalize_text(text) == "1:1", text
    assert normalize_text("一比一万") == "1:10000"
    assert normalize_text("一比一点五") == "1:15"  # the decimal mark joins digits: 1:1.5 is not 1:1
    assert normalize_text("21:10") == "21:10"
    assert normalize_text("时间: 10点") == "时间10点"  # a colon outside a ratio is punctuation


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
