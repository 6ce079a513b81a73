"""The system under test, started for one run: PostgreSQL, identity-authority simulator, gateway, echo server
and the floor (bench/ceilings/floor.py)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from bench import procstat
from bench.procs import ChildProcess
from gateway.core.model import Role
from gateway.security.sealing import Sealer, generate_key
from gateway.storage.cluster import Cluster

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    """Everything a run talks to, with the ids of the processes it measures."""

    dsn: str
    sealer: Sealer
    token: str
    gateway: ChildProcess
    simulator: ChildProcess
    echo: ChildProcess
    floor: ChildProcess  # the minimal handler doing the gateway's work, on the same database and simulator
    postmaster_pid: int | None
    server_version: str
    managed_cluster: bool
    gateway_env: dict[str, str]  # the gateway's environment (keys, simulator), for starting another one

    async def start_gateway(self, database_url: str, extra_env: dict[str, str] | None = None, *,
                            timeout_s: float = 60.0) -> ChildProcess:
        """Another gateway process like the run's (same keys, same simulator) on another database or settings."""
        env = {**self.gateway_env, "DATABASE_URL": database_url, **(extra_env or {})}
        return await ChildProcess.start("gateway", [sys.executable, "-m", "gateway", "serve"], "gateway listening on",
                                        env=env, cwd=REPO, timeout_s=timeout_s)

    @property
    def gateway_target(self) -> str:
        """host:port of the gateway."""
        return self.gateway.address()

    @property
    def echo_target(self) -> str:
        """host:port of the echo server."""
        return self.echo.address()

    @property
    def floor_target(self) -> str:
        """host:port of the floor."""
        return self.floor.address()


async def _database_facts(dsn: str) -> tuple[int | None, str]:
    """The postmaster's pid when the server runs on this machine, and the server's version."""
    conn = await asyncpg.connect(dsn)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        # Read while the backend lives. Only a local server's pid names a process here: check it is PostgreSQL's.
        parent = procstat.parent_pid(backend) if procstat.is_postgres(backend) else None
    finally:
        await conn.close()
    return (parent if parent and procstat.is_postgres(parent) else None), version


async def create_token(dsn: str) -> str:
    """A terminal-and-scanner token in the database at dsn, for the load generators."""
    return await _token(dsn)


async def _token(dsn: str) -> str:
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        _, token = await PrincipalRepository(pool).create_token("bench-terminal", frozenset({Role.TERMINAL,
                                                                                             Role.SCANNER}))
        return token
    finally:
        await pool.close()


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def _start_processes(dsn: str, keys: tuple[bytes, bytes], extra_env: dict[str, str]
                           ) -> tuple[ChildProcess, ChildProcess, ChildProcess, ChildProcess, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    api_key = secrets.token_urlsafe(16)
    registry = Path(str(resources.files("gateway.data") / "demo_registry.json"))
    py = sys.executable
    simulator, echo = await asyncio.gather(
        ChildProcess.start("identity-authority simulator",
                           [py, "-m", "gateway.simulators.identity_authority", "--registry", str(registry),
                            "--port", "0", f"--api-key={api_key}"],  # a key may start with "-"
                           "identity-authority simulator listening on", env=env, cwd=REPO),
        ChildProcess.start("echo server", [py, "-m", "bench.echo", "--port", "0"], "echo listening on",
                           env=env, cwd=REPO),
    )
    gw_env = {**env, "DATABASE_URL": dsn, "GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_DATA_KEY": _b64(keys[0]),
              "GATEWAY_INDEX_KEY": _b64(keys[1]), "LOG_LEVEL": "WARNING", "SHUTDOWN_GRACE_S": "2",
              "IDENTITY_AUTHORITY_URL": "http://" + simulator.address(), "IDENTITY_AUTHORITY_KEY": api_key,
              # One process unless a scenario asks for more (accept-processes): the figures name one server pid.
              "GATEWAY_PROCESSES": "1", **extra_env}
    started = await asyncio.gather(
        ChildProcess.start("gateway", [py, "-m", "gateway", "serve"], "gateway listening on", env=gw_env, cwd=REPO),
        # The floor reads the gateway's environment: same database, authority, key.
        ChildProcess.start("floor", [py, "-m", "bench.ceilings.floor", "--port", "0"], "floor listening on",
                           env=gw_env, cwd=REPO),
        return_exceptions=True)
    failed = [r for r in started if isinstance(r, BaseException)]
    if failed:
        await asyncio.gather(simulator.stop(), echo.stop(),
                             *(r.stop() for r in started if isinstance(r, ChildProcess)))
        raise failed[0]
    gateway, floor = (r for r in started if isinstance(r, ChildProcess))
    return gateway, simulator, echo, floor, gw_env


@asynccontextmanager
async def running_stack(database_url: str = "", extra_env: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    """Starts the whole system (its own cluster unless database_url is given) and stops it, cluster removed."""
    from gateway.storage.db import migrate_dsn

    cluster = None
    if not database_url:
        # fsync stays on: the figures are for a durable gateway, not for one that may lose commits.
        cluster = Cluster(Path(tempfile.mkdtemp(prefix="courier-bench-")) / "pg", fsync=True)
    try:
        if cluster is not None:
            await asyncio.to_thread(cluster.start)
            database_url = cluster.dsn()
        await migrate_dsn(database_url)
        keys = (generate_key(), generate_key())
        token = await _token(database_url)
        postmaster, version = await _database_facts(database_url)
        gateway, simulator, echo, floor, gw_env = await _start_processes(database_url, keys, extra_env or {})
        stack = Stack(database_url, Sealer(*keys), token, gateway, simulator, echo, floor, postmaster, version,
                      cluster is not None, gw_env)
        try:
            yield stack
        finally:
            await asyncio.gather(gateway.stop(), floor.stop())
            await asyncio.gather(simulator.stop(), echo.stop())
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.destroy)
            shutil.rmtree(cluster.root.parent, ignore_errors=True)
