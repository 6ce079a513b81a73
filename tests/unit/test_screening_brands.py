"""Brand price floors: a named brand below its lowest genuine unit price."""

from __future__ import annotations

import pytest

from gateway.core.screening import Action, Entry, EntryKind, Item, Outcome
from gateway.core.screening.brands import BrandIndex, below_floor

LV = Entry(7, EntryKind.BRAND_PRICE_FLOOR, "Louis Vuitton", Action.HOLD,
           aliases=("LV", "路易威登"), price_floor_fen=300_000, label="Louis Vuitton")


def index_of(*entries: Entry) -> BrandIndex:
    index = BrandIndex()
    for entry in entries:
        index.add(entry)
    index.build()
    return index


def hits(item: Item) -> list[tuple[str, str]]:
    return [(h.field, h.matched) for h in index_of(LV).screen_item(item, "items[0]")]


@pytest.mark.parametrize("description, alias", [
    ("LV bag", "LV"), ("LV包", "LV"), ("ＬＶ 手袋", "LV"), ("路易威登 手袋", "路易威登"),
    ("路易・威登", "路易威登"), ("LOUIS VUITTON Neverfull", "Louis Vuitton"),
])
def test_brand_named_in_description_below_floor_hits(description: str, alias: str) -> None:
    assert hits(Item(description, 1, 15_000)) == [("items[0].description", alias)]


@pytest.mark.parametrize("description", ["LVMH annual report", "SLV camera", "velvet scarf", "plain bag"])
def test_short_alias_needs_a_word_boundary(description: str) -> None:
    # LVMH names the group rather than a Louis Vuitton product, so it is deliberately not a hit.
    assert hits(Item(description, 1, 100)) == []


def test_unit_price_is_total_over_quantity() -> None:
    assert hits(Item("LV bag", 2, 599_998)) != []  # 299,999 fen each
    assert hits(Item("LV bag", 2, 600_000)) == []  # exactly the floor is genuine-priced
    assert below_floor(Item("LV", 0, 1), LV)  # a zero quantity counts as one unit


def test_brand_field_is_reported_first_and_only_once() -> None:
    assert hits(Item("路易威登 LV bag", 1, 100, brand="LV")) == [("items[0].brand", "LV")]


def test_hit_explains_prices_and_carries_the_entry_action() -> None:
    (hit,) = index_of(LV).screen_item(Item("LV bag", 4, 60_000), "items[3]")
    assert hit.action is Outcome.HOLD and hit.entry_id == 7
    assert "¥150.00" in hit.explanation and "¥3000.00" in hit.explanation and "entry 7" in hit.explanation


def test_brand_needs_a_positive_floor() -> None:
    with pytest.raises(ValueError, match="entry 8"):
        index_of(Entry(8, EntryKind.BRAND_PRICE_FLOOR, "Gucci", Action.HOLD))


def test_a_brand_alias_that_is_a_common_noun_has_default_contexts() -> None:
    apple = Entry(9, EntryKind.BRAND_PRICE_FLOOR, "Apple", Action.HOLD, aliases=("苹果",), price_floor_fen=99_900)
    index = index_of(apple)
    for fruit in ("红富士苹果 5斤", "冰糖心 苹果", "苹果醋 饮料"):
        assert list(index.screen_item(Item(fruit, 1, 3_000), "items[0]")) == [], fruit
    (hit,) = index.screen_item(Item("苹果 手机", 1, 30_000), "items[0]")
    assert hit.entry_id == 9
    # An entry's own exclusions work for brands too.
    coach = Entry(8, EntryKind.BRAND_PRICE_FLOOR, "Coach", Action.HOLD, price_floor_fen=150_000,
                  exclusions=("coach bus",))
    assert list(index_of(coach).screen_item(Item("Coach bus model", 1, 100), "items[0]")) == []
    assert len(list(index_of(coach).screen_item(Item("Coach bag", 1, 100), "items[0]"))) == 1
