"""Chinese administrative division codes, read from python-stdnum's loc.dat table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum import numdb

# loc.dat has no row for 830000: the Ministry of Public Security uses it only on
# residence permits for Taiwan residents, so we supply it ourselves.
_EXTRA_REGIONS: dict[str, tuple[str, str]] = {"830000": ("台湾地区", "台湾地区")}
_PERIOD = re.compile(r"^\[(?P<start>\d*)-(?P<end>\d*)\](?P<name>.*)$")
# Placeholder rows stand for "the districts directly under the city"; they add nothing to a full name.
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政单位", "自治区直辖县级行政单位", "省直辖行政单位"})


@dataclass(frozen=True)
class RegionPeriod:
    """One name a division code carried, with the years (inclusive) it was in force."""

    name: str
    start: int | None
    end: int | None

    def covers(self, year: int) -> bool:
        """Whether the code carried this name in the given year."""
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)


def _parse_periods(county: str) -> tuple[RegionPeriod, ...]:
    """Split loc.dat's '[1983-2019]桥东区,[2020-]襄都区' into periods."""
    periods = []
    for part in county.split(","):
        match = _PERIOD.match(part)
        if match is None:
            periods.append(RegionPeriod(part, None, None))
            continue
        start, end = match["start"], match["end"]
        periods.append(RegionPeriod(match["name"], int(start) if start else None, int(end) if end else None))
    return tuple(periods)


@lru_cache(maxsize=8192)
def region_periods(code: str) -> tuple[RegionPeriod, ...]:
    """Every name a 6-digit division code has carried; empty if the code is unknown."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return ()
    if code in _EXTRA_REGIONS:
        return (RegionPeriod(_EXTRA_REGIONS[code][1], None, None),)
    parts = numdb.get("cn/loc").info(code)
    # A lookup that stops short of six digits (e.g. only the province matched) is not a known code.
    if len(parts) != 2 or "county" not in parts[1][1]:
        return ()
    return _parse_periods(parts[1][1]["county"])


def is_known_region(code: str) -> bool:
    """Whether the 6-digit division code appears in the table at all, current or historical."""
    return bool(region_periods(code))


def region_valid_in(code: str, year: int) -> bool:
    """Whether the division code was in force during the given year."""
    return any(period.covers(year) for period in region_periods(code))


def region_retired_before(code: str, year: int) -> bool:
    """Whether every period of a known code ended before the given year."""
    periods = region_periods(code)
    return bool(periods) and all(p.end is not None and p.end < year for p in periods)


def _name_in(code: str, year: int | None) -> str | None:
    """The code's own name in the given year, or its latest name when year is None or uncovered."""
    periods = region_periods(code)
    if not periods:
        return None
    if year is not None:
        for period in periods:
            if period.covers(year):
                return period.name
    return periods[-1].name


def region_name(code: str, *, year: int | None = None) -> str | None:
    """Full name of a 6-digit division code, e.g. '北京市东城区'; None if the code is unknown."""
    own = _name_in(code, year)
    if own is None:
        return None
    if code.endswith("0000"):
        return own
    province = _name_in(code[:2] + "0000", year) or ""
    if code.endswith("00"):
        return province + own
    prefecture = _name_in(code[:4] + "00", year)
    if prefecture is None or prefecture in _PLACEHOLDERS:
        prefecture = ""
    return province + prefecture + own


def is_known_province(two_digits: str) -> bool:
    """Whether a 2-digit province prefix (e.g. '11') names a province-level division."""
    return is_known_region(two_digits + "0000")
