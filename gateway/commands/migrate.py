"""`python -m gateway migrate`: applies pending migrations to DATABASE_URL."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.commands import database_url_or_exit


def register(sub: Any) -> None:
    """Adds the `migrate` command."""
    sub.add_parser("migrate", help="apply pending migrations to DATABASE_URL").set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Applies what is pending and says what it applied."""
    from gateway.storage.db import migrate_dsn

    applied = asyncio.run(migrate_dsn(database_url_or_exit()))
    print("applied: " + (", ".join(applied) or "nothing, already current"))
    return 0
