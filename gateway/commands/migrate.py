"""`python -m gateway migrate [--status]`: applies pending migrations to DATABASE_URL, or shows each one's state."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.commands import database_url_or_exit


def register(sub: Any) -> None:
    """Adds the `migrate` command."""
    p = sub.add_parser("migrate", help="apply pending migrations to DATABASE_URL (--status: only show them)")
    p.add_argument("--status", action="store_true",
                   help="a table of every migration: when it was applied, or pending; exit 1 when any is pending")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Applies what is pending and says what it applied; with --status, changes nothing."""
    if args.status:
        return status()
    from gateway.storage.db import migrate_dsn

    applied = asyncio.run(migrate_dsn(database_url_or_exit()))
    print("applied: " + (", ".join(applied) or "nothing, already current"))
    return 0


def status() -> int:
    """The table of migrations shipped and recorded; 1 when some are pending (or recorded but not shipped)."""
    from rich.console import Console
    from rich.table import Table

    from gateway.commands.tables import when, with_connection
    from gateway.storage import admin
    from gateway.storage.db import migration_files

    applied = with_connection(admin.applied_migrations)
    shipped = {number: name for number, name, _ in migration_files()}
    table = Table("migration", "applied", title="migrations")
    for number in sorted(shipped.keys() | applied.keys()):
        name = shipped.get(number) or applied[number][0]
        if number not in applied:
            state = "[yellow]pending[/]"
        elif number not in shipped:  # a newer gateway migrated this database: this one must not serve it
            state = f"{when(applied[number][1])} [red](not shipped with this version)[/]"
        else:
            state = when(applied[number][1])
        table.add_row(f"{number:03d}_{name}", state)
    console = Console()
    console.print(table)
    pending = len(shipped.keys() - applied.keys())
    unknown = len(applied.keys() - shipped.keys())
    console.print(f"{len(applied.keys() & shipped.keys())} applied, {pending} pending"
                  + (f", {unknown} unknown to this version" if unknown else "")
                  + (": `python -m gateway migrate` applies them" if pending else ""))
    return 1 if pending or unknown else 0
