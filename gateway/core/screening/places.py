"""Place names at the head of a Chinese organisation name: 深圳市华强电子 is compared as 华强电子.

A company name is registration place + trade name + industry + legal form; two companies of one city
and industry share all but the trade name, so a fuzzy ratio over the whole name rates 深圳市华强电子科技
and 深圳市诚强电子科技 as one (0.89). The place is taken off before comparing, so the trade name carries
the weight. The names come from the division table python-stdnum ships (the one identity/regions.py
reads): every province, city and county name in full (广东省, 深圳市, 福田区), and for provinces and
prefecture-level cities their name without the suffix too (广东, 深圳), as companies write it.
"""

from __future__ import annotations

import functools
import re

from stdnum import numdb

_PERIOD = re.compile(r"^\[\d*-\d*\]")
_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "地区", "省", "市", "盟")
MIN_LEFT = 2  # a name must keep at least this many characters, or the place was the name


def _names(field: str) -> list[str]:
    return [_PERIOD.sub("", part) for part in field.split(",")]


@functools.cache
def place_names() -> tuple[frozenset[str], int]:
    """Every place name that may head an organisation name, and the longest one's length."""
    names: set[str] = set()
    for _, _, _, province, counties in numdb.get("cn/loc").prefixes:
        for name in _names(province.get("province", "")):
            names.update(_with_stem(name))
        for _, code, _, county, _ in counties:
            for name in _names(county.get("county", "")):
                if name in ("市辖区", "县") or len(name) < 2:
                    continue
                # Stems only for prefecture-level cities (code ending 00): a county's stem (朝阳, 和平,
                # 新华) is too often a trade name itself.
                names.update(_with_stem(name) if code.endswith("00") else (name,))
    names.update(("北京", "上海", "天津", "重庆", "香港", "澳门"))
    return frozenset(names), max(map(len, names))


def _with_stem(name: str) -> tuple[str, ...]:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name, name[: -len(suffix)]
    return (name,)


def strip_places(compact: str) -> str:
    """``compact`` without the place names at its head (广东省深圳市福田区...), if enough is left."""
    names, longest = place_names()
    changed = True
    while changed:
        changed = False
        for size in range(min(longest, len(compact) - MIN_LEFT), 1, -1):
            if compact[:size] in names:
                compact, changed = compact[size:], True
                break
    return compact
