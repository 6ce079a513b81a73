"""The fuzzer's real parts: one gateway per test module (a database of its own, the authority simulator on a
real socket), a principal holding every role, and the hypothesis settings every fuzz test shares."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from hypothesis import HealthCheck, seed, settings

from gateway.core.model import Role
from gateway.security.sealing import generate_key
from gateway.settings import Settings
from tests.conftest import FIXTURES, TEMPLATE, RunningGateway, make_tokens, with_database

F = TypeVar("F", bound=Callable[..., Any])
ALL_ROLES = "+".join(sorted(r.value for r in Role))

# Deterministic by default (CI gets the same examples every run); FUZZ_RANDOM=1 explores fresh ones from a seed
# printed in the header and after a failure (FUZZ_SEED=N reruns exactly that); FUZZ_EXAMPLES scales every budget.
SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1" or "FUZZ_SEED" in os.environ
SEED = int(os.environ.get("FUZZ_SEED") or secrets.randbits(64))


def fuzz_settings(max_examples: int) -> Callable[[F], F]:
    """The settings of one fuzz test: a bounded budget, no per-example deadline, no example database, and in
    random mode the session's seed."""
    chosen = settings(max_examples=max(1, int(max_examples * SCALE)), deadline=None, derandomize=not RANDOM,
                      database=None, print_blob=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large, HealthCheck.large_base_example,
                                             HealthCheck.filter_too_much])

    def apply(test: F) -> F:
        return seed(SEED)(chosen(test)) if RANDOM else chosen(test)

    return apply


def pytest_report_header() -> str:
    """Names how the fuzz tests choose their examples."""
    return f"fuzz: seed {SEED} (FUZZ_SEED={SEED} reruns it)" if RANDOM else "fuzz: derandomized examples"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeats the seed after a failing random run, where it is needed."""
    if RANDOM and terminalreporter.stats.get("failed"):
        terminalreporter.write_line(f"fuzz: failed with seed {SEED}: rerun with FUZZ_SEED={SEED}")


class FuzzGateway:
    """A running gateway and the metadata of a principal holding every role."""

    def __init__(self, gw: RunningGateway) -> None:
        self.gw = gw

    def __repr__(self) -> str:  # hypothesis prints a failing example's arguments: not the keys and tokens
        return f"FuzzGateway(port={self.gw.port})"

    @property
    def all_roles(self) -> tuple[tuple[str, str], ...]:
        """Call metadata of a principal holding every role."""
        return (("authorization", f"Bearer {self.gw.tokens[ALL_ROLES]}"),)


async def _all_roles_token(dsn: str) -> str:
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        return (await PrincipalRepository(pool).create_token("fuzz-all-roles", frozenset(Role)))[1]
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def fuzz_gateway(pg_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory,
                       ) -> AsyncIterator[FuzzGateway]:
    """A real gateway for a whole fuzz module (starting one per example would spend the budget on start-up)."""
    from gateway.server import create_server
    from gateway.simulators.identity_authority import start_simulator

    name = f"courier_fuzz_{os.getpid()}_{tmp_path_factory.mktemp('n').name.replace('-', '_')}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    dsn = with_database(pg_dsn, name)
    sim = await start_simulator(FIXTURES / "identity" / "authority_registry.json", api_key="test-key")
    s = Settings(database_url=dsn, listen="127.0.0.1:0", data_key=generate_key(), index_key=generate_key(),
                 token_cache_ttl_s=30.0, shutdown_grace_s=1.0,
                 blob_store_dir=str(tmp_path_factory.mktemp("blobs")), evidence_signing_key=generate_key(),
                 evidence_append_s=0.05, identity_authority_url=sim.url, identity_authority_key="test-key")
    built = await create_server(s)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}", options=[
        ("grpc.max_send_message_length", s.max_message_bytes),
        ("grpc.max_receive_message_length", s.max_message_bytes)])
    tokens = await make_tokens(dsn)
    tokens[ALL_ROLES] = await _all_roles_token(dsn)
    try:
        yield FuzzGateway(RunningGateway(built.port, channel, s, tokens))
    finally:
        await channel.close()
        await built.stop(0.5)
        await sim.close()
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
