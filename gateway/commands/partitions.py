"""`python -m gateway partitions`: the monthly partitions of the events (shipment_events, audit_records).

    ensure                  create this month's partition and the next PARTITION_MONTHS_AHEAD months' (gateways do
                            this at start and daily)
    list                    every partition: range, rows, size, state (current, future, kept, due, default)
    archive [--to DIR]      partitions past RETENTION_MONTHS (at least 36): export to DIR/<partition>.jsonl.gz,
                            verify the file against the evidence log, then detach and drop the partition
    verify-archive FILE     re-compute every archived record's leaf hash and prove it in the latest signed tree head
    citus-ddl               print deploy/citus/schema.sql, generated from gateway/storage/layout.py

Exit 0 on success, 1 when an archive does not verify or a partition cannot be archived, 2 for a bad setting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.commands import database_url_or_exit


def register(sub: Any) -> None:
    """Adds the `partitions` command and its actions."""
    p = sub.add_parser("partitions", help="the events' monthly partitions: ensure, list, archive, verify-archive")
    actions = p.add_subparsers(dest="action", required=True)
    ensure = actions.add_parser("ensure", help="create this month's and the coming months' partitions")
    ensure.add_argument("--months-ahead", type=int, default=0,
                        help="months ahead to create (default: PARTITION_MONTHS_AHEAD, else 3)")
    ensure.set_defaults(func=run_ensure)
    actions.add_parser("list", help="every partition with its range, rows, size and state").set_defaults(func=run_list)
    archive = actions.add_parser("archive", help="archive and drop the partitions past RETENTION_MONTHS")
    archive.add_argument("--to", default=".var/archive", help="directory for the archive files (default .var/archive)")
    archive.add_argument("--partition", default="", help="only this partition (refused unless past the retention)")
    archive.set_defaults(func=run_archive)
    verify = actions.add_parser("verify-archive", help="check an archive file against the evidence log")
    verify.add_argument("file", help="an archive written by `partitions archive`")
    verify.set_defaults(func=run_verify)
    actions.add_parser("citus-ddl", help="print the Citus DDL of gateway/storage/layout.py").set_defaults(func=run_ddl)


def _setting(name: str, default: int) -> int:
    """One setting of the environment, parsed as the gateway parses it; exit 2 naming it when bad."""
    from gateway.settings import ENVIRONMENT, SettingsError

    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value: int = ENVIRONMENT[name][1](name, raw)
    except SettingsError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return value


async def _connected(work: Any) -> Any:
    # A connection of the gateway's own pool: jsonb decoded as the evidence records were built from it.
    from gateway.storage.db import create_pool

    pool = await create_pool(database_url_or_exit(), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()


def run_ensure(args: argparse.Namespace) -> int:
    """Creates the missing months and says which."""
    from gateway.storage.partitions import ensure

    ahead = args.months_ahead or _setting("PARTITION_MONTHS_AHEAD", 3)
    created = asyncio.run(_connected(lambda conn: ensure(conn, ahead)))
    print("created: " + (", ".join(created) or f"nothing, every month up to {ahead} ahead exists"))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Prints the partitions as a table."""
    from rich.console import Console
    from rich.table import Table

    from gateway.storage.partitions import list_partitions

    retention = _setting("RETENTION_MONTHS", 36)
    now = datetime.now(UTC)
    parts = asyncio.run(_connected(list_partitions))
    table = Table(title=f"partitions (retention {retention} months)")
    for column in ("partition", "range (UTC)", "rows", "size", "newest", "state"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for p in parts:
        span = f"{p.lower:%Y-%m-%d} .. {p.upper:%Y-%m-%d}" if p.lower and p.upper else "(default)"
        table.add_row(p.name, span, f"{p.rows:,}", _size(p.size_bytes),
                      f"{p.newest:%Y-%m-%d %H:%M}" if p.newest else "", p.state(now, retention))
    Console(width=120).print(table)
    return 0


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


def run_archive(args: argparse.Namespace) -> int:
    """Archives what is due and says what it archived."""
    from gateway.storage.partitions import ArchiveError, archive

    retention = _setting("RETENTION_MONTHS", 36)
    try:
        done = asyncio.run(_connected(lambda conn: archive(conn, retention, Path(args.to), only=args.partition)))
    except ArchiveError as exc:
        print(f"gateway: partitions archive: {exc}", file=sys.stderr)
        return 1
    for a in done:
        print(f"archived {a.partition}: {a.rows} rows to {a.path}, verified, partition dropped")
    if not done:
        print(f"nothing to archive: no partition is past the retention of {retention} months")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verifies one archive file; exit 1 with the failures when it does not verify."""
    from gateway.storage.partitions import ArchiveError, verify_archive

    try:
        report = asyncio.run(_connected(lambda conn: verify_archive(conn, Path(args.file))))
    except ArchiveError as exc:
        print(f"gateway: partitions verify-archive: {exc}", file=sys.stderr)
        return 1
    print(f"{report.path}: {report.partition} ({report.table}): {report.records} records, {report.matched} match "
          f"their leaves, {report.proven} proven in the signed tree head of size {report.tree_size}")
    for failure in report.failures[:20]:
        print(f"  FAILED {failure}")
    if len(report.failures) > 20:
        print(f"  ... and {len(report.failures) - 20} more")
    print("VERIFIED" if report.ok else "NOT VERIFIED")
    return 0 if report.ok else 1


def run_ddl(args: argparse.Namespace) -> int:
    """Prints the Citus DDL."""
    from gateway.storage.layout import citus_ddl

    sys.stdout.write(citus_ddl())
    return 0
