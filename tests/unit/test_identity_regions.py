"""Division codes from python-stdnum's loc.dat."""

from __future__ import annotations

import pytest

from gateway.core.identity import is_known_region, region_name, region_periods
from gateway.core.identity.regions import region_retired_before, region_valid_in
from tests.fixtures.identity.builders import CURRENT_REGIONS


@pytest.mark.parametrize(("code", "name"), [
    ("110101", "北京市东城区"), ("130102", "河北省石家庄市长安区"), ("110000", "北京市"),
    ("130100", "河北省石家庄市"), ("429004", "湖北省仙桃市"), ("830000", "台湾地区"),
])
def test_full_names(code: str, name: str) -> None:
    assert region_name(code) == name


@pytest.mark.parametrize("code", ["999999", "11010", "1101011", "abcdef", "", "１１０１０１"])
def test_unknown_codes(code: str) -> None:
    assert region_name(code) is None
    assert not is_known_region(code)


def test_historical_code_is_known_with_its_years() -> None:
    assert is_known_region("110103")
    assert region_retired_before("110103", 2011) and not region_retired_before("110103", 2010)
    assert not region_valid_in("110103", 2011)


def test_renamed_code_has_both_names() -> None:
    assert [p.name for p in region_periods("130502")] == ["桥东区", "襄都区"]
    assert region_name("130502", year=2019) == "河北省邢台市桥东区"
    assert region_name("130502") == "河北省邢台市襄都区"


def test_fixture_regions_were_never_abolished() -> None:
    assert all(region_periods(code) and not region_retired_before(code, 2100) for code in CURRENT_REGIONS)
