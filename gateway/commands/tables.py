"""What the admin commands' tables share: one connection to DATABASE_URL, and times as an operator reads them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from gateway.commands import database_url_or_exit

T = TypeVar("T")


def with_connection(work: Callable[..., Awaitable[T]]) -> T:
    """Runs work(conn) on one connection to DATABASE_URL (or make run's); exit 1 naming why it cannot connect."""
    import asyncpg

    dsn = database_url_or_exit()

    async def main() -> T:
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            print(f"gateway: cannot connect to DATABASE_URL: {type(exc).__name__}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        try:
            # jsonb as Python objects, as the gateway's pool reads it (the evidence check rebuilds records).
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def when(at: datetime | None, empty: str = "-") -> str:
    """A time in UTC to the second, or empty."""
    return empty if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
