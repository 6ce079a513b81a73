"""`python -m gateway token create|revoke|list`: a principal's token, printed once; revocation, at once
everywhere; the table of tokens (never a secret or its hash)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gateway.commands import database_url_or_exit
from gateway.core.model import Role

T = TypeVar("T")
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: Any) -> None:
    """Adds the `token` command."""
    token = sub.add_parser("token", help="manage tokens")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token; printed once, stored only as a hash")
    create.add_argument("--name", required=True)
    create.add_argument("--role", action="append", required=True,
                        help=f"repeat for several roles: {', '.join(r.value for r in Role)}")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=duration, metavar="DURATION",
                        help="the token stops working after this long: 3600, 90s, 30m, 12h, 90d")
    expiry.add_argument("--expires-at", type=moment, metavar="TIME",
                        help="the token stops working at this ISO 8601 time with its offset (2027-01-31T18:00+08:00)")
    create.set_defaults(func=create_token)
    revoke = actions.add_parser("revoke", help="revoke tokens; every gateway process refuses them at once")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="revoke every token of this principal")
    which.add_argument("--token", help="revoke this one token, as it was printed")
    revoke.set_defaults(func=revoke_tokens)
    listing = actions.add_parser("list", help="a table of tokens: principal, roles, created, expires, state")
    listing.add_argument("--name", help="only this principal's tokens")
    listing.add_argument("--live", action="store_true", help="only tokens that still work")
    listing.set_defaults(func=list_tokens)


def duration(raw: str) -> timedelta:
    """A positive duration: whole seconds, or a number with s, m, h or d."""
    found = _DURATION.fullmatch(raw.strip())
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration such as 3600, 90s, 30m, 12h or 90d")
    return timedelta(seconds=int(found.group(1)) * _UNIT_S[found.group(2)])


def moment(raw: str) -> datetime:
    """An ISO 8601 time with its UTC offset (or Z), in the future."""
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} has no UTC offset; add one, e.g. +08:00 or Z")
    if at <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{raw!r} is not in the future")
    return at


def _with_repository(work: Callable[[Any], Awaitable[T]]) -> T:
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    dsn = database_url_or_exit()

    async def main() -> T:
        pool = await create_pool(dsn, min_size=1, max_size=1)
        try:
            return await work(PrincipalRepository(pool))
        finally:
            await pool.close()

    return asyncio.run(main())


def create_token(args: argparse.Namespace) -> int:
    """Creates the principal if new and prints its new token (and, on stderr, when it expires)."""
    try:
        roles = frozenset(Role(r) for r in args.role)
    except ValueError:
        print(f"gateway: --role must be one of: {', '.join(r.value for r in Role)}", file=sys.stderr)
        return 2
    expires_at: datetime | None = args.expires_at
    if args.expires_in is not None:
        expires_at = datetime.now(UTC) + args.expires_in

    async def create(repo: Any) -> str:
        _, token = await repo.create_token(args.name, roles, expires_at=expires_at)
        return str(token)

    token = _with_repository(create)
    if expires_at is not None:
        print(f"gateway: the token expires at {expires_at.astimezone(UTC).isoformat(timespec='seconds')}",
              file=sys.stderr)
    print(token)
    return 0


def revoke_tokens(args: argparse.Namespace) -> int:
    """Revokes a principal's tokens, or one token; exit 1 when nothing live matched."""
    async def revoke(repo: Any) -> int:
        if args.token is not None:
            return 1 if await repo.revoke_token(args.token.strip()) else 0
        return int(await repo.revoke_all(args.name))

    count = _with_repository(revoke)
    if count == 0:
        whose = f"principal {args.name!r}" if args.token is None else "that token"
        print(f"gateway: no live token of {whose} to revoke (unknown, or revoked already)", file=sys.stderr)
        return 1
    whose = f" of {args.name}" if args.token is None else ""
    print(f"revoked {count} token{'s' if count != 1 else ''}{whose}; every gateway refuses "
          f"{'them' if count != 1 else 'it'} from now on")
    return 0


def state_of(row: Any, now: datetime) -> str:
    """live, revoked, expired or disabled (the principal), as of now."""
    if row["revoked_at"] is not None:
        return "revoked"
    if row["disabled_at"] is not None:
        return "disabled"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "live"


def list_tokens(args: argparse.Namespace) -> int:
    """Prints the tokens as a table, oldest first; exit 1 when --name names no principal with a token."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from gateway.commands.tables import when, with_connection
    from gateway.storage import admin

    rows = with_connection(lambda conn: admin.tokens(conn, name=args.name))
    now = datetime.now(UTC)
    shown = [r for r in rows if not args.live or state_of(r, now) == "live"]
    table = Table("id", "principal", "roles", "created", "expires", "state", title="tokens")
    for r in shown:
        state = state_of(r, now)
        stamp = {"revoked": r["revoked_at"], "disabled": r["disabled_at"]}.get(state)
        table.add_row(str(r["id"]), escape(r["name"]), ", ".join(sorted(r["roles"])), when(r["created_at"]),
                      when(r["expires_at"], "never"), state + (f" {when(stamp)}" if stamp else ""))
    console = Console()
    console.print(table)
    live = sum(state_of(r, now) == "live" for r in rows)
    console.print(f"{len(shown)} shown of {len(rows)} tokens, {live} live (last use is not recorded)")
    if args.name and not rows:
        print(f"gateway: principal {args.name!r} has no token", file=sys.stderr)
        return 1
    return 0
