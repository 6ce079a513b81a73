"""Goods keywords: one automaton, robust to width, spacing and case, careful at Latin edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.screening import Action, Entry, EntryKind, Item, Outcome
from gateway.core.screening.exclusions import DEFAULT_EXCLUSIONS, inert_exclusions
from gateway.core.screening.keywords import KeywordIndex

KEYWORDS = ["高仿", "A货", "一比一", "1:1", "复刻", "原单", "最高版本"]


def index_of(*terms: str, aliases: tuple[str, ...] = ()) -> KeywordIndex:
    index = KeywordIndex()
    for i, term in enumerate(terms, start=1):
        index.add(Entry(i, EntryKind.GOODS_KEYWORD, term, Action.REFUSE, aliases=aliases))
    index.build()
    return index


INDEX = index_of(*KEYWORDS)


def matched(index: KeywordIndex, description: str) -> list[str]:
    return [h.matched for h in index.screen_item(Item(description, 1, 100), "items[0]")]


@pytest.mark.parametrize("text, expected", [
    ("高仿手表", "高仿"), ("Ａ 货包包", "A货"), ("a货 包包", "A货"), ("A貨", "A货"),
    ("一 比 一 复刻", "一比一"), ("1：1 品质", "1:1"), ("size 1:1 copy", "1:1"), ("原單", "原单"),
    ("最高 版本 球鞋", "最高版本"),
])
def test_listed_keywords_are_found_in_disguise(text: str, expected: str) -> None:
    assert expected in matched(index_of(*KEYWORDS), text)


@pytest.mark.parametrize("text", ["到货时间 21:10", "banana货架", "普通 T恤", "11:15 发货", "比例 1:10", "1:1.5 配比",
                                  "一比一万 地形图", "1比1000 模型", "1 : 100 沙盘", "11:11 下单"])
def test_latin_and_digit_edges_need_a_word_boundary(text: str) -> None:
    assert matched(index_of(*KEYWORDS), text) == []


@pytest.mark.parametrize("text, expected", [
    ("高-仿手表", "高仿"), ("高_仿", "高仿"), ("高.仿", "高仿"), ("高*仿", "高仿"), ("高🔥仿 包", "高仿"),
    ("高\u200b仿", "高仿"), ("高 - 仿", "高仿"), ("A_货", "A货"), ("A-货", "A货"), ("a.货", "A货"),
    ("复/刻", "复刻"), ("原~单", "原单"), ("1∶1", "1:1"), ("1比1", "1:1"), ("壹比壹", "1:1"), ("一 比 一", "1:1"),
    ("１比１", "1:1"), ("1﹕1", "1:1"), ("1：1", "1:1"), ("GUCCI1:1", "1:1"), ("gucci 1:1包", "1:1"),
    ("1:1版", "1:1"), ("LV一比一", "一比一"),
])
def test_punctuation_inside_a_keyword_and_ratio_look_alikes_still_hit(text: str, expected: str) -> None:
    assert expected in matched(INDEX, text)


@pytest.mark.parametrize("text", ["高仿真绿植", "高仿真婴儿护理模型", "原单据复印件", "退货 原单号 123",
                                  "可重复刻录光盘", "一比一万 地形图", "A货架 三层", "原單號", "高 仿 真 花",
                                  "可重复 刻录"])
def test_innocent_words_containing_a_keyword_do_not_hit(text: str) -> None:
    assert matched(INDEX, text) == []


def test_an_excluded_occurrence_does_not_hide_a_genuine_one() -> None:
    assert matched(INDEX, "高仿真模型 高仿包") == ["高仿"]
    assert matched(INDEX, "原单号 A1 原单 包") == ["原单"]
    assert matched(INDEX, "高仿包 高仿真模型") == ["高仿"]


def test_an_entry_s_own_exclusions_apply_besides_the_defaults() -> None:
    index = KeywordIndex()
    index.add(Entry(1, EntryKind.GOODS_KEYWORD, "复刻", Action.HOLD, exclusions=("复刻版黑胶", "  ")))
    index.add(Entry(2, EntryKind.GOODS_KEYWORD, "精仿", Action.HOLD))
    index.build()
    assert matched(index, "复刻版黑胶唱片") == []  # the entry's own context
    assert matched(index, "可重复刻录") == []  # the default still applies
    assert matched(index, "复刻手表") == ["复刻"]
    # Another entry's exclusions never cancel this one.
    assert matched(index, "精仿复刻版黑胶") == ["精仿"]


def test_an_exclusion_that_is_not_longer_than_the_keyword_is_ignored() -> None:
    index = KeywordIndex()
    index.add(Entry(1, EntryKind.GOODS_KEYWORD, "高仿", Action.HOLD, exclusions=("高仿", "仿")))
    index.build()
    assert matched(index, "高仿包") == ["高仿"]


def test_brand_and_category_fields_are_searched_too() -> None:
    item = Item("手袋", 1, 100, brand="复刻 LV", category="一比一 精品")
    hits = list(index_of(*KEYWORDS).screen_item(item, "items[2]"))
    # 一比一 and 1:1 are one ratio once normalised, so both entries that list it are hit.
    assert [(h.field, h.matched) for h in hits] == [("items[2].brand", "复刻"), ("items[2].category", "一比一"),
                                                    ("items[2].category", "1:1")]


def test_a_hit_names_the_entry_and_field_and_carries_the_action() -> None:
    (hit,) = index_of("高仿").screen_item(Item("高仿 高仿 高仿", 1, 100), "items[0]")
    assert hit.entry_id == 1 and hit.kind is EntryKind.GOODS_KEYWORD and hit.action is Outcome.REFUSE
    assert hit.explanation == "items[0].description contains listed keyword 高仿 (entry 1)"


def test_aliases_belong_to_their_entry() -> None:
    index = index_of("复刻", aliases=("复制品",))
    assert [h.entry_id for h in index.screen_item(Item("复制品", 1, 1), "items[0]")] == [1]


def test_empty_keyword_is_rejected_and_empty_index_finds_nothing() -> None:
    with pytest.raises(ValueError, match="entry 1"):
        index_of(" · ")
    assert matched(index_of(), "高仿") == []


@given(st.sampled_from(KEYWORDS), st.lists(st.sampled_from(["", " ", "\u3000", "\t"]), min_size=8, max_size=8),
       st.booleans())
def test_any_spacing_and_width_of_a_keyword_still_hits(keyword: str, spaces: list[str], wide: bool) -> None:
    text = "".join(ch + gap for ch, gap in zip(keyword, spaces, strict=False))
    if wide:  # full-width forms of ASCII letters, digits and punctuation
        text = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
    assert keyword in matched(INDEX, "商品：" + text + " 包邮")


@given(st.sampled_from(["高仿", "A货", "复刻", "原单", "最高版本"]),
       st.lists(st.sampled_from(["", "-", "_", ".", "*", "~", "/", "|", "\u200b", "·", " - ", "、", "！", "♥"]),
                min_size=4, max_size=4))
def test_any_punctuation_wedged_inside_a_keyword_still_hits(keyword: str, marks: list[str]) -> None:
    text = "".join(ch + mark for ch, mark in zip(keyword, marks, strict=False)).rstrip("".join(marks))
    assert keyword in matched(INDEX, "商品 " + text + "包 包邮")


def test_every_default_exclusion_cancels_a_keyword_it_contains() -> None:
    # Each default must contain a usual slang term, or it is dead weight in every keyword's contexts.
    slang = ["高仿", "原单", "复刻", "一比一", "1:1", "A货", "纯原", "高版本", "副厂", "同厂", "公司级", "无标"]
    index = index_of(*slang)
    for context in DEFAULT_EXCLUSIONS:
        assert any(term in context for term in slang), context
        assert matched(index, context) == [], context
        assert matched(index, context + " 高仿") == ["高仿"], context


def test_inert_exclusions_are_those_containing_none_of_the_entry_s_terms() -> None:
    entry = Entry(1, EntryKind.GOODS_KEYWORD, "高仿", Action.HOLD, aliases=("高倣",),
                  exclusions=("高仿真绿植", "绿植", "高倣真", "高仿"))
    assert inert_exclusions(entry) == ["绿植", "高仿"]


def test_a_text_finds_the_same_terms_again_and_after_a_rebuild_the_new_ones() -> None:
    from gateway.core.screening import automaton
    from gateway.core.screening.automaton import TermAutomaton

    terms: TermAutomaton[int] = TermAutomaton()
    terms.add("高仿", 1)
    terms.build()
    assert list(terms.find("高仿 包包")) == [1] and list(terms.find("高仿 包包")) == [1]  # the second is the kept one
    terms.add("包包", 2)
    assert list(terms.find("高仿 包包")) == []  # not searchable until built again
    terms.build()
    assert sorted(terms.find("高仿 包包")) == [1, 2]
    texts = [f"高仿{i}号" for i in range(automaton.FOUND_CACHE + 10)]  # more texts than are kept: still right
    assert all(list(terms.find(t)) == [1] for t in texts) and list(terms.find(texts[0])) == [1]
