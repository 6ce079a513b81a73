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

# What "the database is not there right now" looks like from asyncpg: safe to retry. SQLSTATE class 08
# (connection exceptions), 57P01..57P03 (admin or crash shutdown, cannot connect now: a restart), 53300 (too
# many connections), a closed connection (InterfaceError), the socket's own errors, and a timeout (connect,
# pool acquire or command: TimeoutError is an OSError).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection left mid-protocol by a lost server: use another
    ConnectionError,
    OSError,
    TimeoutError,
)
_UNAVAILABLE = UNAVAILABLE_ERRORS

# Bounds on every wait for the database, so a call during an outage answers UNAVAILABLE in seconds, never hangs
# (the settings DB_CONNECT_TIMEOUT_S, DB_ACQUIRE_TIMEOUT_S and DB_COMMAND_TIMEOUT_S override them).
CONNECT_TIMEOUT_S = 5.0
ACQUIRE_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 30.0


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the database is unreachable right now (and the work may be retried)."""
    return isinstance(error, (*UNAVAILABLE_ERRORS, StorageUnavailable))


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


class BoundedPool(asyncpg.Pool):
    """asyncpg's pool whose acquire() waits at most acquire_timeout_s unless told otherwise: with every
    connection busy or the database gone, a caller gets a TimeoutError (UNAVAILABLE) instead of waiting on."""

    def __init__(self, *args: Any, acquire_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout_s = acquire_timeout_s

    def acquire(self, *, timeout: float | None = None) -> Any:
        """A connection from the pool, within timeout (default: the pool's acquire_timeout_s)."""
        return super().acquire(timeout=self.acquire_timeout_s if timeout is None else timeout)


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 16,
                      connect_timeout_s: float = CONNECT_TIMEOUT_S, acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
                      command_timeout_s: float = COMMAND_TIMEOUT_S,
                      application_name: str = "courier-gateway") -> asyncpg.Pool:
    """Opens the pool, every wait bounded; raises StorageUnavailable when the database cannot be reached."""
    pool = BoundedPool(
        dsn, acquire_timeout_s=acquire_timeout_s, connection_class=asyncpg.Connection,
        record_class=asyncpg.Record, min_size=min_size, max_size=max_size, max_queries=50_000,
        max_inactive_connection_lifetime=300.0, loop=None, init=_init_connection, reset=_keep_session,
        timeout=connect_timeout_s, command_timeout=command_timeout_s,
        server_settings={"application_name": application_name},
    )
    try:
        await pool
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(f"cannot connect to the database: {type(exc).__name__}") from exc
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
