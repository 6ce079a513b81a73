"""Tokens over their life: expiry, and revocation that every gateway process honours at once, not after a cache
lifetime (TOKEN_CACHE_TTL_S=30 here), even after the listening connection was killed."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest

from gateway.core.model import Role
from gateway.settings import Settings
from gateway.storage.cluster import free_port
from tests.conftest import REPO, RunningGateway
from tests.e2e.test_limits import code_of, serving

T, S, R = Role.TERMINAL, Role.SCANNER, Role.REVIEWER
LISTENER = "courier-gateway revocations"  # the revocation listener's application_name


async def gateway_command(dsn: str, *args: str) -> tuple[int, str, str]:
    """Runs `python -m gateway ARGS` against the database; (exit code, stdout, stderr)."""
    env = {**os.environ, "DATABASE_URL": dsn}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def cached(settings: Settings) -> AsyncIterator[RunningGateway]:
    """A gateway whose token look-ups are cached for 30 s, as in production."""
    async with serving(replace(settings, token_cache_ttl_s=30.0)) as gw:
        yield gw


@pytest.fixture
async def second_process(cached: RunningGateway) -> AsyncIterator[RunningGateway]:
    """Another gateway, as its own `python -m gateway serve` process, on the same database and tokens."""
    s = cached.settings
    port = free_port()
    env = {**os.environ, "DATABASE_URL": s.database_url, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
           "GATEWAY_DATA_KEY": base64.b64encode(s.data_key).decode(),
           "GATEWAY_INDEX_KEY": base64.b64encode(s.index_key).decode(), "TOKEN_CACHE_TTL_S": "30",
           "BLOB_STORE_DIR": s.blob_store_dir, "EVIDENCE_APPEND_S": "0"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert b"gateway listening on" in line, line
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield RunningGateway(port, channel, s, cached.tokens)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def let_through(gw: RunningGateway, metadata: Any) -> bool:
    """Whether the door let the call in (it then answers NOT_FOUND for the unknown waybill)."""
    err = await code_of(gw, metadata)
    assert err is not None
    return err.code() == grpc.StatusCode.NOT_FOUND


async def refused_after(gw: RunningGateway, metadata: Any, *, within_s: float) -> tuple[float, str]:
    """Seconds until the door refuses the token (UNAUTHENTICATED), and what it said; fails after within_s."""
    started = time.monotonic()
    while True:
        err = await code_of(gw, metadata)
        assert err is not None
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return time.monotonic() - started, err.details()
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert time.monotonic() - started < within_s, f"still let through after {within_s} s"
        await asyncio.sleep(0.02)


async def sql(dsn: str, statement: str, *args: Any) -> Any:
    """One statement on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def revoke_unannounced(dsn: str, name: str) -> None:
    """Revokes a principal's tokens with the notification switched off: what a cache without one would miss."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_changed")
            await conn.execute("UPDATE api_tokens SET revoked_at = now() FROM principals p"
                               " WHERE p.id = api_tokens.principal_id AND p.name = $1", name)
            await conn.execute("ALTER TABLE api_tokens ENABLE TRIGGER api_tokens_changed")
    finally:
        await conn.close()


async def test_a_revoked_token_is_refused_at_once_by_two_gateway_processes(
        cached: RunningGateway, second_process: RunningGateway) -> None:
    gateways = (cached, second_process)
    for gw in gateways:  # both have the tokens in their caches now
        assert await let_through(gw, gw.md(T)) and await let_through(gw, gw.md(S))
    # The caches do hold: a revocation nobody is told of is not seen (this is what a 30 s TTL used to mean).
    await revoke_unannounced(cached.settings.database_url, "test-scanner")
    for gw in gateways:
        assert await let_through(gw, gw.md(S))

    code, out, err = await gateway_command(cached.settings.database_url, "token", "revoke", "--name", "test-terminal")
    assert code == 0, err
    assert "revoked 1 token of test-terminal" in out
    waits = await asyncio.gather(*(refused_after(gw, gw.md(T), within_s=1.0) for gw in gateways))
    for elapsed, said in waits:
        assert elapsed < 1.0 and said == "the token has been revoked"
    for gw in gateways:  # another principal's token is untouched
        assert await let_through(gw, gw.md(R))


async def test_revoking_one_token_and_what_the_command_says_when_nothing_matches(cached: RunningGateway) -> None:
    dsn = cached.settings.database_url
    token = cached.tokens["reviewer"]
    assert await let_through(cached, cached.md(R))
    code, out, err = await gateway_command(dsn, "token", "revoke", "--token", token)
    assert code == 0 and "revoked 1 token;" in out, err
    await refused_after(cached, cached.md(R), within_s=1.0)
    assert await let_through(cached, cached.md(T))
    code, out, err = await gateway_command(dsn, "token", "revoke", "--token", token)
    assert code == 1 and "no live token of that token" in err
    code, out, err = await gateway_command(dsn, "token", "revoke", "--name", "nobody")
    assert code == 1 and "no live token of principal 'nobody'" in err


async def test_a_token_expires_at_its_time_even_from_the_cache(cached: RunningGateway) -> None:
    dsn = cached.settings.database_url
    code, out, err = await gateway_command(dsn, "token", "create", "--name", "courier-temp", "--role", "terminal",
                                           "--expires-in", "3s")
    assert code == 0, err
    token, before = out.strip(), datetime.now(UTC)
    assert "the token expires at" in err
    stored = await sql(dsn, "SELECT t.expires_at FROM api_tokens t JOIN principals p ON p.id = t.principal_id"
                            " WHERE p.name = 'courier-temp'")
    assert before - timedelta(seconds=5) < stored <= before + timedelta(seconds=3)
    md = (("authorization", f"Bearer {token}"),)
    assert await let_through(cached, md)  # cached now, for 30 s
    await asyncio.sleep(max(0.0, (stored - datetime.now(UTC)).total_seconds()) + 0.05)
    err_ = await code_of(cached, md)
    assert err_ is not None and err_.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err_.details() == "the token has expired"

    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    code, out, err = await gateway_command(dsn, "token", "create", "--name", "courier-month", "--role", "terminal",
                                           "--expires-at", later)
    assert code == 0, err
    assert await let_through(cached, (("authorization", f"Bearer {out.strip()}"),))
    for bad, said in (("--expires-at=2020-01-01T00:00:00+00:00", "is not in the future"),
                      ("--expires-at=2099-01-01T00:00:00", "has no UTC offset"),
                      ("--expires-in=soon", "is not a duration")):
        code, out, err = await gateway_command(dsn, "token", "create", "--name", "x", "--role", "terminal", bad)
        assert code == 2 and said in err


async def test_a_revocation_while_the_listener_was_cut_off_still_takes_effect(cached: RunningGateway) -> None:
    dsn = cached.settings.database_url
    assert await let_through(cached, cached.md(T)) and await let_through(cached, cached.md(S))
    conn = await asyncpg.connect(dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", LISTENER)
        assert killed == 1
        # At once, before the gateway can listen again: nobody is listening for this notification.
        await conn.execute("UPDATE api_tokens SET revoked_at = now() FROM principals p"
                           " WHERE p.id = api_tokens.principal_id AND p.name = 'test-terminal'")
        elapsed, said = await refused_after(cached, cached.md(T), within_s=1.0)
        assert said == "the token has been revoked"
        for _ in range(100):  # the listener is back
            if await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                   LISTENER) == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the revocation listener did not reconnect")
    finally:
        await conn.close()
    await asyncio.sleep(0.2)
    # And caching again (not every call a query): a revocation it is not told of is not seen...
    assert await let_through(cached, cached.md(R)) and await let_through(cached, cached.md(S))
    await revoke_unannounced(dsn, "test-reviewer")
    assert await let_through(cached, cached.md(R))
    # ...while one it is told of is, at once.
    await sql(dsn, "UPDATE api_tokens SET revoked_at = now() FROM principals p"
                   " WHERE p.id = api_tokens.principal_id AND p.name = 'test-scanner'")
    await refused_after(cached, cached.md(S), within_s=1.0)


async def test_a_principals_changed_roles_apply_at_once(cached: RunningGateway) -> None:
    assert await let_through(cached, cached.md(T))
    await sql(cached.settings.database_url, "UPDATE principals SET roles = '{admin}' WHERE name = 'test-terminal'")
    started = time.monotonic()
    while True:
        err = await code_of(cached, cached.md(T))
        assert err is not None
        if err.code() == grpc.StatusCode.PERMISSION_DENIED:
            break
        assert time.monotonic() - started < 1.0, "the old roles were still served from the cache"
        await asyncio.sleep(0.02)
    await sql(cached.settings.database_url, "UPDATE principals SET disabled_at = now() WHERE name = 'test-scanner'")
    assert (await refused_after(cached, cached.md(S), within_s=1.0))[1] == "the token is not valid"


async def test_a_listener_that_stops_answering_is_noticed_within_its_heartbeat(cached: RunningGateway) -> None:
    dsn = cached.settings.database_url
    assert await let_through(cached, cached.md(T))
    conn = await asyncpg.connect(dsn)
    pid = await conn.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER)
    try:
        os.kill(pid, signal.SIGSTOP)  # its socket stays open: no error reaches the gateway, no notification either
    except (PermissionError, ProcessLookupError):
        await conn.close()
        pytest.skip("the database server's processes are not on this machine or not ours to signal")
    try:
        await conn.execute("UPDATE api_tokens SET revoked_at = now() FROM principals p"
                           " WHERE p.id = api_tokens.principal_id AND p.name = 'test-terminal'")
        # Not after TOKEN_CACHE_TTL_S (30 s): the heartbeat (every 2 s, 2 s to answer) gives the listener up and
        # the cache is bypassed from then on.
        elapsed, said = await refused_after(cached, cached.md(T), within_s=6.0)
        assert said == "the token has been revoked"
    finally:
        os.kill(pid, signal.SIGCONT)
        await conn.close()
