"""Where every table goes on a Citus cluster, and which tables are partitioned by time: the one declared map that
deploy/citus/schema.sql is generated from and tests/integration/test_schema_layout.py checks the migrated schema
against (distribution column in every primary key and unique constraint, foreign keys only where Citus allows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["distributed", "reference", "local"]


@dataclass(frozen=True)
class Placement:
    """One table's place: distributed by a column (co-located with a table), a reference table, or local."""

    table: str
    kind: Kind
    why: str
    column: str = ""  # distributed only: the distribution column
    colocate_with: str = ""  # distributed only: the table whose shards it shares ("" = its own group)
    partitioned_by: str = ""  # a table partitioned by range on this column, by month


def _d(table: str, column: str, colocate_with: str, why: str, partitioned_by: str = "") -> Placement:
    return Placement(table, "distributed", why, column, colocate_with, partitioned_by)


def _r(table: str, why: str) -> Placement:
    return Placement(table, "reference", why)


def _l(table: str, why: str, partitioned_by: str = "") -> Placement:
    return Placement(table, "local", why, partitioned_by=partitioned_by)


# In dependency order: a table comes after every table its foreign keys name (the order schema.sql runs in).
LAYOUT: tuple[Placement, ...] = (
    _r("principals", "every writer names its principal; small, read on every call, referenced by most tables"),
    _r("api_tokens", "looked up by token hash on every call; small"),
    _r("blocklist_entries", "the whole list is loaded by every gateway process and joined by nothing else"),
    _r("blocklist_version", "one row bumped with every list change, read with it"),
    _r("rescreen_progress", "one row, moved with the blocklist version"),
    _r("contract_customers", "a few thousand business senders, joined to shipments by re-screening"),
    _r("divisions", "the division codes and their names: a few thousand rows, joined to any table's region codes"),
    _d("sender_verifications", "id", "", "one row per verified sender, read by id or sender_ref on its own"),
    _d("shipments", "id", "", "the parcel: everything read with it shares its shard"),
    _d("shipment_events", "shipment_id", "shipments", "a parcel's history is read and written with the parcel",
       partitioned_by="accepted_at"),
    _d("inspection_photos", "shipment_id", "shipments", "read and written with the parcel"),
    _d("leads", "shipment_id", "shipments", "written with the parcel's hold, joined to it by the feed"),
    _d("shipment_waybills", "waybill_no", "", "keeps waybill numbers unique across shards (written with the parcel)"),
    _d("shipment_idempotency_keys", "idempotency_key", "",
       "keeps idempotency keys unique across shards (written with the parcel)"),
    _d("scan_events", "event_id", "", "once per event_id: its own key, since a scan may name no known parcel"),
    _d("sender_recipients", "sender_bidx", "", "counted per sender: one sender's rows on one shard"),
    _l("audit_records", "a few rows per investigator call, read by case; ordered with the evidence log",
       partitioned_by="at"),
    _l("evidence_leaves", "the evidence log has one sequential writer and a strict order: it stays on one node"),
    _l("evidence_nodes", "part of the evidence log's tree"),
    _l("evidence_cursors", "the evidence appender's position, moved with the leaves"),
    _l("evidence_heads", "signed tree heads, written by the appender"),
    _l("schema_migrations", "the migration runner's own record"),
)


def placement(table: str) -> Placement:
    """The declared place of a table; KeyError for a table the layout does not know."""
    for p in LAYOUT:
        if p.table == table:
            return p
    raise KeyError(f"table {table!r} is not in gateway/storage/layout.py's LAYOUT")


def colocation_root(p: Placement) -> str:
    """The table that names p's co-location group (itself when it starts one)."""
    return placement(p.colocate_with).table if p.colocate_with else p.table


def partitioned() -> tuple[Placement, ...]:
    """The tables partitioned by month."""
    return tuple(p for p in LAYOUT if p.partitioned_by)


def citus_ddl() -> str:
    """The statements that place every table on a Citus coordinator, in dependency order."""
    lines = ["-- Generated from gateway/storage/layout.py (python -m gateway partitions citus-ddl); do not edit.",
             "-- Run on the coordinator after `python -m gateway migrate`, as the owner of the tables.",
             "CREATE EXTENSION IF NOT EXISTS citus;",
             "-- The append-only and notify triggers stay in force on the shards.",
             "SET citus.enable_unsafe_triggers TO on;",
             ""]
    for p in LAYOUT:
        lines.append(f"-- {p.table}: {p.why}")
        if p.kind == "reference":
            lines.append(f"SELECT create_reference_table('{p.table}');")
        elif p.kind == "local":
            lines.append(f"SELECT citus_add_local_table_to_metadata('{p.table}');")
        else:
            colocate = f"'{p.colocate_with}'" if p.colocate_with else "'none'"
            lines.append(f"SELECT create_distributed_table('{p.table}', '{p.column}', colocate_with => {colocate});")
    return "\n".join(lines) + "\n"
