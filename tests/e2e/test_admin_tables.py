"""The admin commands' tables against a real database: tokens, contract customers, migrations, the evidence log."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from dataclasses import replace

import asyncpg
from stdnum.cn import uscc

from gateway.core.model import Role
from gateway.settings import Settings
from gateway.storage.db import migration_files
from tests.conftest import REPO, RunningGateway, b64key
from tests.e2e.requests import ZHANG, accept_request, verify_request
from tests.e2e.test_acceptance import customer_request
from tests.e2e.test_limits import serving

T = Role.TERMINAL


async def command(dsn: str, *args: str, **more: str) -> tuple[int, str, str]:
    """`python -m gateway ARGS` on dsn, with a wide terminal so that rich does not fold the tables."""
    dropped = ("GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY", "EVIDENCE_SIGNING_KEY", "EVIDENCE_PAST_KEYS")
    env = {**{k: v for k, v in os.environ.items() if k not in dropped}, "DATABASE_URL": dsn, "COLUMNS": "250",
           **more}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=REPO, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def row_of(out: str, needle: str) -> str:
    """The one table line holding needle."""
    [line] = [line for line in out.splitlines() if needle in line]
    return line


async def test_token_list_shows_every_token_and_its_state_but_never_a_secret(db_dsn: str) -> None:
    made = {}
    for name, more in (("courier-7", ["--role", "terminal"]), ("scanner-2", ["--role", "scanner", "--role",
                                                                                "terminal", "--expires-in", "90d"]),
                       ("gone-1", ["--role", "reviewer"])):
        code, out, err = await command(db_dsn, "token", "create", "--name", name, *more)
        assert code == 0, err
        made[name] = out.strip()
    assert (await command(db_dsn, "token", "revoke", "--name", "gone-1"))[0] == 0
    conn = await asyncpg.connect(db_dsn)
    try:
        hashes = [bytes(r["token_hash"]).hex() for r in await conn.fetch("SELECT token_hash FROM api_tokens")]
    finally:
        await conn.close()
    code, out, err = await command(db_dsn, "token", "list")
    assert code == 0, err
    assert "live" in row_of(out, "courier-7") and "never" in row_of(out, "courier-7")
    assert "scanner, terminal" in row_of(out, "scanner-2") and "never" not in row_of(out, "scanner-2")
    assert "revoked 20" in row_of(out, "gone-1")
    assert "3 shown of 3 tokens, 2 live" in out
    assert not [secret for secret in (*made.values(), *hashes) if secret in out]
    code, out, _ = await command(db_dsn, "token", "list", "--live")
    assert "gone-1" not in out and "2 shown of 3 tokens" in out
    code, out, err = await command(db_dsn, "token", "list", "--name", "nobody")
    assert code == 1 and "'nobody' has no token" in err


async def test_customers_list_and_show_give_masked_numbers_and_parcels(gateway: RunningGateway) -> None:
    code_ = "91110108MA01AB2C3"
    credit = code_ + uscc.calc_check_digit(code_)
    registered = await gateway.acceptance.RegisterContractCustomer(
        customer_request(credit_code=credit), metadata=gateway.md(Role.ADMIN))
    for _ in range(2):
        await gateway.acceptance.AcceptParcel(accept_request(contract_customer_id=registered.customer_id),
                                              metadata=gateway.md(T))
    dsn = gateway.settings.database_url
    code, out, err = await command(dsn, "customers", "list")
    assert code == 0, err
    line = row_of(out, registered.customer_id)
    assert "北京示例科技有限公司" in line and registered.masked_responsible_document in line and "SA-2026-001" in line
    assert line.rstrip(" │").endswith("2") and "1 contract customer" in out
    assert credit not in out and ZHANG["number"] not in out and "13800138000" not in out
    assert "0 contract customers" in (await command(dsn, "customers", "list", "--name", "上海"))[1]
    code, out, err = await command(dsn, "customers", "show", "北京示例科技有限公司")
    assert code == 0, err
    assert registered.customer_id in out and "110108" in out and "中关村大街 1 号" in out
    assert "on file (sealed)" in out and "ACCEPTED" in row_of(out, "ACCEPTED") and "2 parcels in all" in out
    assert credit not in out and ZHANG["number"] not in out and "13800138000" not in out
    code, _, err = await command(dsn, "customers", "show", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "no contract customer" in err


async def test_migrate_status_names_each_migration_applied_or_pending(db_dsn: str) -> None:
    shipped = migration_files()
    code, out, err = await command(db_dsn, "migrate", "--status")
    assert code == 0, err
    for number, name, _ in shipped:
        assert "20" in row_of(out, f"{number:03d}_{name}")  # an applied-at time
    assert f"{len(shipped)} applied, 0 pending" in out
    conn = await asyncpg.connect(db_dsn)
    try:
        number, name, _ = shipped[-1]
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", number)
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")
    finally:
        await conn.close()
    code, out, _ = await command(db_dsn, "migrate", "--status")
    assert code == 1
    assert "pending" in row_of(out, f"{number:03d}_{name}")
    assert "not shipped" in row_of(out, "999_from_the_future")
    assert f"{len(shipped) - 1} applied, 1 pending, 1 unknown to this version" in out


async def test_evidence_check_passes_a_kept_log_and_fails_a_changed_leaf(settings: Settings) -> None:
    async with serving(replace(settings, evidence_head_interval_s=1.0)) as gateway:  # a head signed each second
        await _check_the_log(gateway)


async def _check_the_log(gateway: RunningGateway) -> None:
    s = gateway.settings
    keys = {"GATEWAY_DATA_KEY": base64.b64encode(s.data_key).decode(),
            "GATEWAY_INDEX_KEY": base64.b64encode(s.index_key).decode(),
            "EVIDENCE_SIGNING_KEY": base64.b64encode(s.evidence_signing_key).decode()}
    conn = await asyncpg.connect(s.database_url)
    try:
        for _ in range(3):
            await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
        for _ in range(100):  # the appender (every 50 ms here) logs them and signs a head
            if await conn.fetchval("SELECT count(*) FROM evidence_heads WHERE tree_size >= 3"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no head signed over the three verifications")
        code, out, err = await command(s.database_url, "evidence", "check", **keys)
        assert code == 0, out + err
        assert "all verify" in out and "nothing failed" in out
        await conn.execute("SET session_replication_role = replica")  # past the append-only trigger
        changed = await conn.execute("UPDATE evidence_leaves SET leaf_hash = sha256(leaf_hash) WHERE leaf_index = 0")
        assert changed == "UPDATE 1"
    finally:
        await conn.close()
    code, out, _ = await command(s.database_url, "evidence", "check", **keys)
    assert code == 1 and "fail" in out, out
    assert "fail" in out and "no longer give the root" in out
    code, _, err = await command(s.database_url, "evidence", "check", **{**keys, "GATEWAY_DATA_KEY": b64key()[:5]})
    assert code == 2 and "GATEWAY_DATA_KEY" in err
