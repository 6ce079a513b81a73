"""`python -m gateway doctor` against a real database a real gateway wrote to: healthy, then each thing broken."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
import time

import asyncpg

from courier.v1 import investigation_pb2
from gateway.commands.doctor import Check, diagnose
from gateway.core.model import Role
from gateway.security.sealing import generate_key
from gateway.settings import Settings
from gateway.storage.cluster import free_port
from tests.conftest import REPO
from tests.e2e.requests import accept_request, verify_request


def _env(s: Settings, **changes: str) -> dict[str, str]:
    b64 = lambda key: base64.b64encode(key).decode()  # noqa: E731
    env = {"DATABASE_URL": s.database_url, "GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_DATA_KEY": b64(s.data_key),
           "GATEWAY_INDEX_KEY": b64(s.index_key), "EVIDENCE_SIGNING_KEY": b64(s.evidence_signing_key),
           "BLOB_STORE_DIR": s.blob_store_dir, "IDENTITY_AUTHORITY_URL": s.identity_authority_url,
           "IDENTITY_AUTHORITY_KEY": s.identity_authority_key}
    return {**env, **changes}


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def _history(gw) -> None:  # type: ignore[no-untyped-def]
    """A verification and an acceptance, in the evidence log under a signed head."""
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(Role.TERMINAL))).sender_ref
    await gw.acceptance.AcceptParcel(accept_request(ref), metadata=gw.md(Role.TERMINAL))
    deadline = time.monotonic() + 20
    while True:
        head = await gw.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(
            case_no="CASE-2026-0042", fresh=True), metadata=gw.md(Role.INVESTIGATOR))
        if head.tree_size >= 3:  # the verification, the acceptance event, the audit record of a head call
            return
        assert time.monotonic() < deadline, "the records never reached the evidence log"
        await asyncio.sleep(0.1)


async def _superuser(dsn: str, *sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET session_replication_role = replica")  # past the append-only triggers
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_healthy_gateway_is_ok_and_broken_keys_and_migrations_fail(gateway) -> None:  # type: ignore[no-untyped-def]
    await _history(gateway)
    env = _env(gateway.settings)
    healthy = _by_name(await diagnose(env))
    assert all(c.status != "fail" for c in healthy.values()), [c.detail for c in healthy.values() if c.status == "fail"]
    for name in ("settings", "keys", "database", "migrations", "sealed values", "evidence log", "signing key",
                 "identity authority", "blob store"):
        assert healthy[name].status == "ok", healthy[name]
    assert "every leaf hash" in healthy["evidence log"].detail

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "doctor", env={**os.environ, **env, "COLUMNS": "200"}, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out.decode() + err.decode()
    assert "nothing failed" in out.decode() and "evidence log" in out.decode()

    wrong = _by_name(await diagnose({**env, "GATEWAY_DATA_KEY": base64.b64encode(generate_key()).decode(),
                                     "GATEWAY_INDEX_KEY": base64.b64encode(generate_key()).decode()}))
    assert wrong["sealed values"].status == "fail" and "GATEWAY_DATA_KEY" in wrong["sealed values"].fix

    await _superuser(gateway.settings.database_url,
                     "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    pending = _by_name(await diagnose(env))
    assert pending["migrations"].status == "fail" and "1 pending" in pending["migrations"].detail
    assert "`python -m gateway migrate`" in pending["migrations"].fix


async def test_a_changed_row_or_leaf_fails_the_evidence_log(gateway) -> None:  # type: ignore[no-untyped-def]
    await _history(gateway)
    env = _env(gateway.settings)
    dsn = gateway.settings.database_url
    await _superuser(dsn, "UPDATE sender_verifications SET name = '李四'")
    changed = _by_name(await diagnose(env))["evidence log"]
    assert changed.status == "fail" and "changed since it was logged" in changed.detail, changed

    await _superuser(dsn, "UPDATE sender_verifications SET name = '张伟'")  # as logged again
    assert _by_name(await diagnose(env))["evidence log"].status == "ok"
    forged = hashlib.sha256(b"forged").hexdigest()
    await _superuser(dsn, f"UPDATE evidence_leaves SET leaf_hash = '\\x{forged}' WHERE leaf_index = 0")
    tampered = _by_name(await diagnose(env))["evidence log"]
    assert tampered.status == "fail" and "the leaves no longer give the root" in tampered.detail, tampered
    assert "leaf 0" in tampered.detail  # its stored hash is no longer its record's


async def test_an_unreachable_database_fails_naming_database_url(settings) -> None:  # type: ignore[no-untyped-def]
    env = _env(settings, DATABASE_URL=f"postgresql://doctor:secret@127.0.0.1:{free_port()}/courier")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "doctor", env={**os.environ, **env, "COLUMNS": "200"}, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode()
    assert proc.returncode == 1, text + err.decode()
    assert "cannot connect to postgresql://doctor:***@127.0.0.1" in text and "check DATABASE_URL" in text
    assert "secret" not in text and "1 failed: database" in text


async def test_a_bad_setting_fails_naming_it(settings) -> None:  # type: ignore[no-untyped-def]
    checks = await diagnose(_env(settings, GATEWAY_INDEX_KEY="c2hvcnQ="))
    assert [(c.name, c.status) for c in checks] == [("settings", "fail")]
    assert checks[0].detail == "GATEWAY_INDEX_KEY: must decode to 32 bytes, got 5"
