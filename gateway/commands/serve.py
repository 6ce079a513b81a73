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
    # A process that GATEWAY_PROCESSES's parent started (gateway/supervisor.py): serve, never supervise.
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT or SIGTERM; exit 2 for a bad setting (a port that cannot be bound included)."""
    import uvloop

    from gateway.logs import configure
    from gateway.server import ListenError, check_listen, serve
    from gateway.storage.db import migrate_dsn
    from gateway.supervisor import become_worker, process_count, supervise

    settings = settings_or_exit()
    configure(settings.log_level, settings.log_format)  # LOG_FORMAT: json (one object per line) or text

    count = 1 if args.worker else process_count(settings)
    if args.worker:
        become_worker()

    async def main() -> int:
        if args.migrate:  # once, in the parent: workers racing to migrate would block each other
            await migrate_dsn(settings.database_url)
        if count > 1:
            check_listen(settings.listen)  # once: a taken port is exit 2 here, not N workers failing
            return await supervise(settings, count)
        await serve(settings)
        return 0

    try:
        return uvloop.run(main())
    except ListenError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
