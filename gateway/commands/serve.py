"""`python -m gateway serve`: serves with the settings in the environment."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.commands import settings_or_exit


def register(sub: Any) -> None:
    """Adds the `serve` command."""
    p = sub.add_parser("serve", help="serve with the settings in the environment")
    p.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT or SIGTERM; exit 2 for a bad setting (a port that cannot be bound included)."""
    import uvloop

    from gateway.logs import configure
    from gateway.server import ListenError, serve
    from gateway.storage.db import migrate_dsn

    settings = settings_or_exit()
    configure(settings.log_level, settings.log_format)  # LOG_FORMAT: json (one object per line) or text

    async def main() -> None:
        if args.migrate:
            await migrate_dsn(settings.database_url)
        await serve(settings)

    try:
        uvloop.run(main())
    except ListenError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
    return 0
