"""`python -m gateway token create --name NAME --role ROLE`: a principal's token, printed once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.commands import database_url_or_exit
from gateway.core.model import Role


def register(sub: Any) -> None:
    """Adds the `token` command."""
    token = sub.add_parser("token", help="manage tokens")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token; printed once, stored only as a hash")
    create.add_argument("--name", required=True)
    create.add_argument("--role", action="append", required=True,
                        help=f"repeat for several roles: {', '.join(r.value for r in Role)}")
    create.set_defaults(func=create_token)


def create_token(args: argparse.Namespace) -> int:
    """Creates the principal if new and prints its new token."""
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    try:
        roles = frozenset(Role(r) for r in args.role)
    except ValueError:
        print(f"gateway: --role must be one of: {', '.join(r.value for r in Role)}", file=sys.stderr)
        return 2
    dsn = database_url_or_exit()

    async def main() -> str:
        pool = await create_pool(dsn, min_size=1, max_size=1)
        try:
            _, token = await PrincipalRepository(pool).create_token(args.name, roles)
            return token
        finally:
            await pool.close()

    print(asyncio.run(main()))
    return 0
