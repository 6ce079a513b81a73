"""The migrated schema against gateway/storage/layout.py: what Citus needs of it keeps holding (issue 11)."""

from __future__ import annotations

import asyncpg

from gateway.storage.layout import LAYOUT, Placement, citus_ddl, colocation_root, partitioned, placement
from tests.conftest import REPO

_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
# Primary keys, unique constraints and unique indexes (a unique index need not back a constraint), by column names.
_UNIQUES = """
SELECT t.relname AS table, i.relname AS name,
    ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k)
        AS columns
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND x.indisunique AND NOT t.relispartition
"""
_FOREIGN = """
SELECT c.conname AS name, f.relname AS table, r.relname AS referenced,
    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = f.oid AND a.attnum = k)
        AS columns,
    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = k)
        AS referenced_columns
FROM pg_constraint c JOIN pg_class f ON f.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
WHERE c.contype = 'f' AND NOT f.relispartition
"""
_PARTITIONED = """
SELECT c.relname AS table, p.partstrat,
    ARRAY(SELECT a.attname::text FROM unnest(p.partattrs) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k)
        AS columns
FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
"""


def _fk_allowed(src: Placement, dst: Placement, columns: list[str], referenced: list[str]) -> bool:
    """Whether Citus can keep this foreign key: to a reference table, or between co-located distributed tables on
    the distribution column (a local table on the coordinator may reference reference and local tables)."""
    if dst.kind == "reference":
        return True
    if src.kind == "local":
        return dst.kind == "local"
    if src.kind == "distributed" and dst.kind == "distributed":
        return (colocation_root(src) == colocation_root(dst) and src.column in columns
                and referenced[columns.index(src.column)] == dst.column)
    return False


async def violations(conn: asyncpg.Connection) -> list[str]:
    """Every way the database's schema breaks the layout or what Citus needs of it."""
    found: list[str] = []
    tables = {r["relname"] for r in await conn.fetch(_TABLES)}
    declared = {p.table for p in LAYOUT}
    found += [f"{t}: not in gateway/storage/layout.py" for t in sorted(tables - declared)]
    found += [f"{t}: in layout.py, not in the schema" for t in sorted(declared - tables)]
    column_type = "SELECT atttypid, attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2"
    for p in LAYOUT:
        if p.kind != "distributed" or p.table not in tables:
            continue
        own = await conn.fetchrow(column_type, p.table, p.column)
        if own is None or not own["attnotnull"]:
            found.append(f"{p.table}.{p.column}: a distribution column must exist and be NOT NULL")
        root = placement(colocation_root(p))
        if root.kind != "distributed" or (own and own["atttypid"] !=
                                          (await conn.fetchrow(column_type, root.table, root.column))["atttypid"]):
            found.append(f"{p.table}: co-located with {root.table}, whose distribution column differs in type")
    for u in await conn.fetch(_UNIQUES):
        p = placement(u["table"]) if u["table"] in declared else None
        if p and p.kind == "distributed" and p.column not in u["columns"]:
            found.append(f"{u['name']} on {u['table']}: lacks the distribution column {p.column}")
        if p and p.partitioned_by and p.partitioned_by not in u["columns"]:
            found.append(f"{u['name']} on {u['table']}: lacks the partition key {p.partitioned_by}")
    for f in await conn.fetch(_FOREIGN):
        if f["table"] in declared and f["referenced"] in declared:
            src, dst = placement(f["table"]), placement(f["referenced"])
            if not _fk_allowed(src, dst, f["columns"], f["referenced_columns"]):
                found.append(f"{f['name']}: {src.kind} {src.table} -> {dst.kind} {dst.table} cannot exist on Citus")
    parts = {r["table"]: r for r in await conn.fetch(_PARTITIONED)}
    for table in sorted(set(parts) - {p.table for p in partitioned()}):
        found.append(f"{table}: partitioned, but layout.py does not say so")
    for p in partitioned():
        r = parts.get(p.table)
        if r is None or r["partstrat"] != b"r" or r["columns"] != [p.partitioned_by]:
            found.append(f"{p.table}: must be partitioned by range on {p.partitioned_by}")
    return found


async def test_every_table_has_its_declared_place_and_keeps_the_rules(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        assert len(await conn.fetch(_UNIQUES)) > 20 and len(await conn.fetch(_FOREIGN)) > 10  # the checks see them
        assert await violations(conn) == []
    finally:
        await conn.close()


async def test_the_check_names_each_way_of_breaking_the_rules(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("ALTER TABLE shipments ADD CONSTRAINT waybill_once UNIQUE (waybill_no)")
        await conn.execute("ALTER TABLE scan_events ADD CONSTRAINT scan_parcel FOREIGN KEY (shipment_id)"
                           " REFERENCES shipments (id)")
        await conn.execute("ALTER TABLE principals ADD CONSTRAINT principal_token FOREIGN KEY (id)"
                           " REFERENCES sender_verifications (id)")
        await conn.execute("CREATE TABLE stray (id int)")
        found = await violations(conn)
        assert sorted(found) == sorted([
            "stray: not in gateway/storage/layout.py",
            "waybill_once on shipments: lacks the distribution column id",
            "scan_parcel: distributed scan_events -> distributed shipments cannot exist on Citus",
            "principal_token: reference principals -> distributed sender_verifications cannot exist on Citus",
        ])
    finally:
        await conn.close()


async def test_every_partition_is_append_only_and_indexed_like_its_parent(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        for p in partitioned():
            parts = await conn.fetch("SELECT inhrelid::regclass::text AS name FROM pg_inherits"
                                     " WHERE inhparent = $1::regclass", p.table)
            assert len(parts) >= 5  # this month, three ahead, the default
            parent_indexes = await conn.fetchval("SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass",
                                                 p.table)
            for part in parts:
                triggers = await conn.fetch(
                    "SELECT t.tgtype FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid"
                    " WHERE t.tgrelid = $1::regclass AND f.proname = 'forbid_change'", part["name"])
                kinds = {("row" if t["tgtype"] & 1 else "statement", bool(t["tgtype"] & 32)) for t in triggers}
                assert kinds == {("row", False), ("statement", True)}, f"{part['name']}: {kinds}"
                assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass",
                                           part["name"]) == parent_indexes
                for statement in (f'TRUNCATE "{part["name"]}"',):  # a DELETE of no rows fires no row trigger
                    try:
                        await conn.execute(statement)
                    except asyncpg.InsufficientPrivilegeError:
                        continue
                    raise AssertionError(f"{statement} was allowed")
    finally:
        await conn.close()


def test_the_citus_ddl_in_deploy_is_the_one_the_layout_gives() -> None:
    shipped = (REPO / "deploy" / "citus" / "schema.sql").read_text(encoding="utf-8")
    assert shipped == citus_ddl(), "regenerate: python -m gateway partitions citus-ddl > deploy/citus/schema.sql"
    for p in LAYOUT:
        assert f"'{p.table}'" in shipped
    # In dependency order: a referenced table is placed before the tables that reference it.
    order = [p.table for p in LAYOUT]
    for p in LAYOUT:
        if p.colocate_with:
            assert order.index(p.colocate_with) < order.index(p.table)
