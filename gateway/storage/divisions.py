"""The administrative division codes (GB/T 2260) as a table, generated from the table the identity rules use.

Region codes are checked in the core against python-stdnum's loc.dat (gateway/core/identity/regions.py); the
database holds the same codes in `divisions`, so that SQL over shipments (reports, an analyst's query, a join on
`sender_region_code`) names the places, and on Citus it is a reference table every node joins locally. Migration
013 carries the rows; `python -m gateway.storage.divisions > FILE.sql` writes them again for a later migration when
the codes change (tests/integration/test_divisions.py fails when the installed table and the database disagree).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import NamedTuple

from stdnum import numdb

from gateway.core.identity.regions import region_periods

# Rows that stand for "the districts directly under the city": a county's full name leaves them out, as the
# identity rules' region_name does.
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政单位", "自治区直辖县级行政单位", "省直辖行政单位"})


class Division(NamedTuple):
    """One name a division code carried, with the years it was in force (None: open) and its full name."""

    code: str
    period: int
    name: str
    full_name: str
    level: str
    valid_from: int | None
    valid_to: int | None


def _codes() -> Iterator[str]:
    def walk(prefixes: list, above: str) -> Iterator[str]:  # type: ignore[type-arg]
        for _length, low, _high, _props, children in prefixes:
            code = above + low
            if len(code) == 6:
                yield code
            yield from walk(children, code)

    yield from walk(numdb.get("cn/loc").prefixes, "")
    yield "830000"  # Taiwan residents' permits: not in loc.dat, supplied by the identity rules


def _level(code: str) -> str:
    return "province" if code.endswith("0000") else "prefecture" if code.endswith("00") else "county"


def _own(code: str, year: int | None) -> str:
    periods = region_periods(code)
    for p in periods:
        if year is not None and p.covers(year):
            return p.name
    return periods[-1].name if periods else ""


def _full_name(code: str, name: str, year: int | None) -> str:
    """The name with its province and prefecture as they were named in that year (the latest when None)."""
    if code.endswith("0000"):
        return name
    province = _own(code[:2] + "0000", year)
    if code.endswith("00"):
        return province + name
    prefecture = _own(code[:4] + "00", year)
    return province + ("" if prefecture in _PLACEHOLDERS else prefecture) + name


def divisions() -> list[Division]:
    """Every period of every known code, in code order."""
    rows = []
    for code in sorted(set(_codes())):
        for period, p in enumerate(region_periods(code)):
            year = p.end  # a period still in force: its parents as they are named now
            rows.append(Division(code, period, p.name, _full_name(code, p.name, year), _level(code), p.start, p.end))
    return rows


def _literal(value: str | int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def insert_sql(rows: list[Division], batch: int = 500) -> str:
    """INSERT statements for the rows, a batch of VALUES each."""
    out = []
    for at in range(0, len(rows), batch):
        values = ",\n".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows[at:at + batch])
        out.append("INSERT INTO divisions (code, period, name, full_name, level, valid_from, valid_to) VALUES\n"
                   + values + ";\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(insert_sql(divisions()))
