"""Goods keywords: one automaton, robust to width, spacing and case, careful at Latin edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.screening import Action, Entry, EntryKind, Item, Outcome
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


@pytest.mark.parametrize("text", ["到货时间 21:10", "banana货架", "普通 T恤", "11:15 发货"])
def test_latin_and_digit_edges_need_a_word_boundary(text: str) -> None:
    assert matched(index_of(*KEYWORDS), text) == []


def test_brand_and_category_fields_are_searched_too() -> None:
    item = Item("手袋", 1, 100, brand="复刻 LV", category="一比一 精品")
    hits = list(index_of(*KEYWORDS).screen_item(item, "items[2]"))
    assert [(h.field, h.matched) for h in hits] == [("items[2].brand", "复刻"), ("items[2].category", "一比一")]


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
