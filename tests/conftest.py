"""The test session's real parts: a PostgreSQL cluster, a database per test, a gateway on a free port."""

from __future__ import annotations

import base64
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest

from courier.v1 import (
    acceptance_pb2_grpc,
    blocklist_pb2_grpc,
    custody_pb2_grpc,
    inspection_pb2_grpc,
    investigation_pb2_grpc,
)
from gateway.core.model import Role
from gateway.security.sealing import generate_key
from gateway.settings import Settings
from gateway.storage.cluster import Cluster
from gateway.storage.db import migrate_dsn

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
TEMPLATE = "courier_test_template"
_numbers = itertools.count()
# `serve` runs one process per core unless GATEWAY_PROCESSES says otherwise; the tests' gateways are one process
# each (the tests that run several set it themselves), so a test's pid is its gateway and 2 cores go round.
os.environ.setdefault("GATEWAY_PROCESSES", "1")


def with_database(dsn: str, database: str) -> str:
    """The same DSN naming another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """An administrative DSN: TEST_DATABASE_URL, or a throwaway cluster made for this session."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="courier-test-")) / "pg", fsync=False)
    cluster.start()
    try:
        yield cluster.dsn("postgres")
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
async def template_dsn(pg_dsn: str) -> str:
    """A template database with every migration applied, made once per session."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    dsn = with_database(pg_dsn, TEMPLATE)
    await migrate_dsn(dsn)
    return dsn


@pytest.fixture
async def db_dsn(pg_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, copied from the template."""
    name = f"courier_test_{os.getpid()}_{next(_numbers)}"
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield with_database(pg_dsn, name)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    """Settings for a gateway on a free port with fresh keys and a blob store of its own."""
    return Settings(database_url=db_dsn, listen="127.0.0.1:0", data_key=generate_key(),
                    index_key=generate_key(), token_cache_ttl_s=0.0, shutdown_grace_s=1.0,
                    blob_store_dir=str(tmp_path / "blobs"), evidence_signing_key=generate_key(),
                    evidence_append_s=0.05)


@dataclass
class RunningGateway:
    """A gateway serving on a real port, with a channel and a token per role."""

    port: int
    channel: grpc.aio.Channel
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def md(self, *roles: Role | str) -> tuple[tuple[str, str], ...]:
        """Call metadata for a principal holding exactly these roles."""
        key = "+".join(sorted(r.value if isinstance(r, Role) else r for r in roles))
        return (("authorization", f"Bearer {self.tokens[key]}"),)

    @property
    def acceptance(self) -> acceptance_pb2_grpc.AcceptanceStub:
        """The Acceptance stub."""
        return acceptance_pb2_grpc.AcceptanceStub(self.channel)

    @property
    def custody(self) -> custody_pb2_grpc.CustodyStub:
        """The Custody stub."""
        return custody_pb2_grpc.CustodyStub(self.channel)

    @property
    def blocklist(self) -> blocklist_pb2_grpc.BlocklistStub:
        """The Blocklist stub."""
        return blocklist_pb2_grpc.BlocklistStub(self.channel)

    @property
    def inspection(self) -> inspection_pb2_grpc.InspectionStub:
        """The Inspection stub."""
        return inspection_pb2_grpc.InspectionStub(self.channel)

    @property
    def investigation(self) -> investigation_pb2_grpc.InvestigationStub:
        """The Investigation stub."""
        return investigation_pb2_grpc.InvestigationStub(self.channel)


async def make_tokens(dsn: str) -> dict[str, str]:
    """One principal and token per single role, plus one holding every role."""
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        repo = PrincipalRepository(pool)
        tokens = {}
        for role in Role:
            tokens[role.value] = (await repo.create_token(f"test-{role.value}", frozenset({role})))[1]
        return tokens
    finally:
        await pool.close()


@pytest.fixture
async def authority_simulator() -> AsyncIterator[object]:
    """The identity-authority simulator on a free port, with the test registry."""
    from gateway.simulators.identity_authority import start_simulator

    sim = await start_simulator(FIXTURES / "identity" / "authority_registry.json", api_key="test-key")
    yield sim
    await sim.close()


@pytest.fixture
async def gateway(settings: Settings, authority_simulator: object) -> AsyncIterator[RunningGateway]:
    """A real gateway (real server, real port, real PostgreSQL) talking to the authority simulator."""
    from gateway.server import create_server

    s = replace(settings, identity_authority_url=authority_simulator.url,  # type: ignore[attr-defined]
                identity_authority_key="test-key")
    built = await create_server(s)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    running = RunningGateway(built.port, channel, s, await make_tokens(s.database_url))
    try:
        yield running
    finally:
        await channel.close()
        await built.stop(0.5)


def b64key() -> str:
    """A fresh key in the form the settings take."""
    return base64.b64encode(generate_key()).decode()
