"""The connection pool, the migrations, and the translation of driver errors into core errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import wraps
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import asyncpg

from gateway.core.errors import StorageUnavailable

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# One advisory lock id for migrations, so that gateways starting together apply them once.
_MIGRATION_LOCK = 0x636F7572  # "cour"

# SQLSTATE classes that mean "the database is not there right now": safe to retry.
_UNAVAILABLE = (
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def translate_errors(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turns a lost or refused database connection into StorageUnavailable (UNAVAILABLE: safe to retry)."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except _UNAVAILABLE as exc:
            log.warning("database unavailable in %s: %s", fn.__qualname__, type(exc).__name__)
            raise StorageUnavailable("the database is unavailable; retry") from exc

    return wrapper


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come and go as Python objects.
    import json

    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Returns a connection to the pool as it is: the gateway never changes session state (no SET, LISTEN or
    advisory lock on pooled connections), so asyncpg's default reset query would only cost a round trip.
    asyncpg still rolls back any open transaction before calling this."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 16) -> asyncpg.Pool:
    """Opens the pool; raises StorageUnavailable when the database cannot be reached."""
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30,
            reset=_keep_session,
            server_settings={"application_name": "courier-gateway"},
        )
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(f"cannot connect to the database: {type(exc).__name__}") from exc
    assert pool is not None
    return pool


def migration_files() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped with the package: (number, name, sql), in order."""
    found = []
    for entry in resources.files("gateway.storage.migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Applies the migrations not yet recorded, each in its own transaction; returns their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for number, name, sql in migration_files():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)
            applied.append(f"{number:03d}_{name}")
            log.info("applied migration %03d_%s", number, name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def migrate_dsn(dsn: str) -> list[str]:
    """Connects once and applies the migrations."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
