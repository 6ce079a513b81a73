"""The divisions table: the same codes, names and years as the identity rules know, and joinable to parcels."""

from __future__ import annotations

import asyncpg

from gateway.core.identity.regions import is_known_region
from gateway.storage.divisions import Division, divisions


async def test_the_table_holds_every_code_the_identity_rules_know_with_its_names(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch("SELECT code, period, name, full_name, level, valid_from, valid_to FROM divisions"
                                " ORDER BY code, period")
        east = await conn.fetchval("SELECT full_name FROM divisions WHERE code = '110101'")
        retired = await conn.fetchrow("SELECT name, valid_to FROM divisions WHERE code = '110103'")
    finally:
        await conn.close()
    # A python-stdnum whose table changed fails here: write a migration with the new rows
    # (`python -m gateway.storage.divisions`) after a DELETE of the old.
    assert [Division(*r) for r in rows] == divisions()
    assert len(rows) > 3000 and all(is_known_region(r["code"]) for r in rows)
    assert east == "北京市东城区"
    assert (retired["name"], retired["valid_to"]) == ("崇文区", 2010)  # merged into 东城区 in 2010


async def test_a_parcel_s_region_codes_name_their_places_in_sql(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        named = await conn.fetchval(
            "SELECT string_agg(full_name, ' / ' ORDER BY code) FROM divisions"
            " WHERE code = ANY($1::text[]) AND valid_to IS NULL", ["310104", "440305"])
    finally:
        await conn.close()
    assert named == "上海市徐汇区 / 广东省深圳市南山区"
