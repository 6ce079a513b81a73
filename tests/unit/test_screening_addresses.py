"""Listed addresses: fuzzy within the same region code, with house numbers that must agree."""

from __future__ import annotations

import pytest

from gateway.core.screening import Action, Entry, EntryKind, Party
from gateway.core.screening.addresses import AddressIndex, address_key, address_score, parse_address_value

THRESHOLD = 0.85
LISTED = Entry(5, EntryKind.ADDRESS, "440111|广州市白云区三元里大道88号3栋201", Action.HOLD)


def index_of(*entries: Entry) -> AddressIndex:
    index = AddressIndex()
    for entry in entries:
        index.add(entry)
    return index


def hit_ids(region: str, address: str) -> list[int | None]:
    party = Party(region_code=region, address=address)
    return [h.entry_id for h in index_of(LISTED).screen_party(party, "recipient", THRESHOLD)]


@pytest.mark.parametrize("address", [
    "广州市白云区三元里大道88号3栋201",   # identical
    "白云区三元里大道88号3栋201",         # city omitted
    "广州市白云区 三元里大道 88 号 3 栋 201",  # spacing
    "廣州市白雲區三元里大道８８號３棟２０１",    # traditional and full-width digits
    "广州市白云区三元里大道88号3幢201",   # 栋/幢 written differently
])
def test_variants_of_a_listed_address_hit(address: str) -> None:
    assert hit_ids("440111", address) == [5]


def test_another_region_is_never_compared() -> None:
    assert hit_ids("440106", "广州市白云区三元里大道88号3栋201") == []


def test_a_different_house_or_flat_number_is_a_different_address() -> None:
    assert hit_ids("440111", "广州市白云区三元里大道86号3栋201") == []
    assert hit_ids("440111", "广州市白云区三元里大道88号3栋202") == []


def test_a_different_street_with_the_same_numbers_does_not_hit() -> None:
    assert hit_ids("440111", "广州市白云区机场路88号3栋201") == []


def test_missing_region_or_address_is_not_screened() -> None:
    assert hit_ids("", "广州市白云区三元里大道88号3栋201") == []
    assert hit_ids("4401", "广州市白云区三元里大道88号3栋201") == []
    assert hit_ids("440111", "  ") == []


def test_hit_reports_score_threshold_region_and_entry() -> None:
    party = Party(region_code="440111", address="白云区三元里大道88号3栋201")
    (hit,) = index_of(LISTED).screen_party(party, "sender", THRESHOLD)
    assert hit.field == "sender.address" and hit.threshold == THRESHOLD
    assert THRESHOLD <= hit.score < 1.0
    assert "440111" in hit.explanation and "entry 5" in hit.explanation


def test_value_format_is_checked() -> None:
    assert parse_address_value("110105|朝阳区建国路1号") == ("110105", "朝阳区建国路1号")
    for bad in ("朝阳区建国路1号", "11010|x", "110105|  "):
        with pytest.raises(ValueError):
            parse_address_value(bad)


def test_key_and_score_helpers() -> None:
    assert address_key("Room 3, No.８８") == ("room3no88", ("3", "88"))
    assert address_score("abc", "abc") == 1.0
    assert address_score("建国路88号", "北京市朝阳区建国路88号") < THRESHOLD  # too much missing


def test_a_road_of_another_direction_is_another_road() -> None:
    east, _ = address_key("南京东路300号2号楼1501室")
    west, _ = address_key("南京西路300号2号楼1501室")
    typo, _ = address_key("南京东璐300号2号楼1501室")
    assert address_score(west, east) < 0.85 <= address_score(typo, east)
    prefixed, _ = address_key("广东省深圳市福田区华强北路1002号赛格广场3楼A区88号铺")
    plain, _ = address_key("华强北路1002号赛格广场3楼A区88号铺")
    assert address_score(prefixed, plain) >= 0.85  # an added 东 is a prefix, not another direction
