"""Command line: `python -m gateway [serve|dev|migrate|token|demo]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

# The gateway never forks a child that uses gRPC (pg_ctl and initdb are exec'd), so gRPC's fork
# handlers only print a warning at each subprocess; set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from gateway.core.model import Role
from gateway.settings import SettingsError, load_settings


def _run(coro: object) -> None:
    import uvloop

    uvloop.run(coro)  # type: ignore[arg-type]


def _settings_or_exit():  # type: ignore[no-untyped-def]
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> None:
    """Serves with the settings in the environment."""
    settings = _settings_or_exit()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from gateway.server import serve
    from gateway.storage.db import migrate_dsn

    async def main() -> None:
        if args.migrate:
            await migrate_dsn(settings.database_url)
        await serve(settings)

    _run(main())


def cmd_dev(args: argparse.Namespace) -> None:
    """`make run`: a managed cluster (unless DATABASE_URL is set), the simulator, dev keys, a dev token."""
    from gateway.devrun import run_dev

    raise SystemExit(run_dev(listen=args.listen))


def cmd_migrate(args: argparse.Namespace) -> None:
    """Applies pending migrations to DATABASE_URL."""
    import os

    from gateway.storage.db import migrate_dsn

    dsn = os.environ.get("DATABASE_URL", "")
    if not dsn:
        print("gateway: bad setting: DATABASE_URL: required but not set", file=sys.stderr)
        raise SystemExit(2)
    applied = asyncio.run(migrate_dsn(dsn))
    print("applied: " + (", ".join(applied) or "nothing, already current"))


def cmd_token(args: argparse.Namespace) -> None:
    """Creates a principal's token and prints it once."""
    import os

    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    try:
        roles = frozenset(Role(r) for r in args.role)
    except ValueError:
        print(f"gateway: --role must be one of: {', '.join(r.value for r in Role)}", file=sys.stderr)
        raise SystemExit(2) from None

    async def main() -> str:
        pool = await create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=1)
        try:
            _, token = await PrincipalRepository(pool).create_token(args.name, roles)
            return token
        finally:
            await pool.close()

    if not os.environ.get("DATABASE_URL"):
        print("gateway: bad setting: DATABASE_URL: required but not set", file=sys.stderr)
        raise SystemExit(2)
    print(asyncio.run(main()))


def cmd_demo(args: argparse.Namespace) -> None:
    """Runs verify, accept, store, dispatch against a running gateway and prints each answer."""
    from gateway.demo import run_demo

    raise SystemExit(asyncio.run(run_demo(args.target, args.token)))


def cmd_blocklist_import(args: argparse.Namespace) -> None:
    """Imports blocklist entries from a CSV or JSONL file."""
    from gateway.blocklist_cli import run

    raise SystemExit(run(args.file, principal=args.principal))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve with the settings in the environment")
    serve.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    serve.set_defaults(func=cmd_serve)
    dev = sub.add_parser("dev", help="what `make run` runs: everything managed under .var/")
    dev.add_argument("--listen", default="127.0.0.1:50051")
    dev.set_defaults(func=cmd_dev)
    sub.add_parser("migrate", help="apply pending migrations to DATABASE_URL").set_defaults(func=cmd_migrate)
    token = sub.add_parser("token", help="manage tokens")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="create a token; printed once, stored only as a hash")
    create.add_argument("--name", required=True)
    create.add_argument("--role", action="append", required=True, help="repeat for several roles")
    create.set_defaults(func=cmd_token)
    blocklist = sub.add_parser("blocklist", help="manage the counterfeit blocklist")
    blocklist_sub = blocklist.add_subparsers(dest="action", required=True)
    imp = blocklist_sub.add_parser("import", help="add entries from FILE.csv or FILE.jsonl, reporting rejected lines")
    imp.add_argument("file")
    imp.add_argument("--as", dest="principal", default="blocklist-import",
                     help="the principal recorded as having added the entries")
    imp.set_defaults(func=cmd_blocklist_import)
    demo = sub.add_parser("demo", help="verify, accept, store and dispatch one parcel, printing each answer")
    demo.add_argument("--target", default="127.0.0.1:50051")
    demo.add_argument("--token", default="", help="defaults to $GATEWAY_TOKEN, then .var/dev-token")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["serve", *(argv or [])])
    args.func(args)


if __name__ == "__main__":
    main()
