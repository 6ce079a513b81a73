"""The monthly partitions on a real database: months ensured, listed, archived past the retention only, and archives
that verify against the evidence log (and tampered ones that do not); migration 012 on a database with data."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.evidence_service import EvidenceService, Signer
from gateway.core.retention import add_months, month_start
from gateway.live.evidence import EvidenceAppender
from gateway.settings import Settings, SettingsError, load_settings
from gateway.storage.db import create_pool, migrate, migration_files
from gateway.storage.evidence import EvidenceRepository
from gateway.storage.partitions import ArchiveError, archive, ensure, list_partitions, verify_archive
from tests.conftest import REPO, b64key, with_database

NOW = datetime.now(UTC)


async def _principal(conn: asyncpg.Connection) -> int:
    pid: int = await conn.fetchval("INSERT INTO principals (name, roles) VALUES ('p', '{terminal}') RETURNING id")
    return pid


async def _parcel(conn: asyncpg.Connection, pid: int, n: int, at: datetime, events: int, *,
                  accepted_column: bool = True) -> str:
    """A parcel accepted at `at` with `events` history events, recorded a day apart."""
    vid = await conn.fetchval(
        "INSERT INTO sender_verifications (verdict, document_type, document_masked, name, authority_result,"
        " principal_id, terminal_id, created_at) VALUES ('VERIFIED', 'RESIDENT_ID', 'x', 'n', 'NOT_CHECKED', $1, 't',"
        " $2) RETURNING id", pid, at)
    sid = await conn.fetchval(
        "INSERT INTO shipments (waybill_no, idempotency_key, request_digest, decision, state, sender_name,"
        " sender_region_code, sender_address, recipient_name, recipient_phone_enc, recipient_phone_bidx,"
        " recipient_phone_masked, recipient_region_code, recipient_address, items, inspection, terminal_id,"
        " principal_id, sender_verification_id, created_at) VALUES ($3, $4, '\\x00', 'ACCEPTED', 'ACCEPTED', 's',"
        " '110101', 'a', 'r', '\\x00', '\\x00', 'm', '110101', 'a', '[]', '{}', 't', $1, $2, $5) RETURNING id",
        pid, vid, f"WB{n:08d}", f"key-{n:08d}", at)
    for seq in range(1, events + 1):
        recorded = at + timedelta(days=seq - 1)
        if accepted_column:
            await conn.execute(
                "INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, to_state, principal_id, principal,"
                " recorded_at) VALUES ($1, $2, $3, 'ACCEPTED', 'ACCEPTED', $4, 'p', $5)", sid, at, seq, pid, recorded)
        else:  # before migration 012
            await conn.execute(
                "INSERT INTO shipment_events (shipment_id, seq, kind, to_state, principal_id, principal, recorded_at)"
                " VALUES ($1, $2, 'ACCEPTED', 'ACCEPTED', $3, 'p', $4)", sid, seq, pid, recorded)
    return str(sid)


async def _audit(conn: asyncpg.Connection, pid: int, at: datetime) -> None:
    await conn.execute("INSERT INTO audit_records (principal_id, principal, method, case_no, status, at)"
                       " VALUES ($1, 'p', 'Search', 'CASE-1', 'OK', $2)", pid, at)


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    found = await create_pool(db_dsn, min_size=1, max_size=2)
    yield found
    await found.close()


async def _log_everything(pool: asyncpg.Pool) -> None:
    """The evidence appender takes every row into the log, and a head is signed over it."""
    repo = EvidenceRepository(pool)
    service = EvidenceService(repo, Signer("test", Ed25519PrivateKey.generate()), origin="test/evidence",
                              past_keys=(), clock=lambda: datetime.now(UTC))
    await EvidenceAppender(pool, repo, service).append_pending()
    await service.sign_now()


OLD = month_start(add_months(month_start(NOW), -40))  # past the 36 months
KEPT = month_start(add_months(month_start(NOW), -30))  # inside them


def _at(month: object) -> datetime:
    return datetime(month.year, month.month, 10, 8, 0, tzinfo=UTC)  # type: ignore[attr-defined]


async def _history(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for month in (OLD, KEPT):
            for table in ("shipment_events", "audit_records"):
                await conn.execute("SELECT courier_ensure_month($1, $2)", table, month)
        pid = await _principal(conn)
        await _parcel(conn, pid, 1, _at(OLD), 3)
        await _parcel(conn, pid, 2, _at(OLD), 2)
        await _parcel(conn, pid, 3, _at(KEPT), 2)
        await _parcel(conn, pid, 4, NOW, 1)
        await _audit(conn, pid, _at(OLD))
        await _audit(conn, pid, _at(KEPT))


async def test_ensure_creates_the_months_ahead_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        created = await ensure(conn, 5)
        months = [f"{add_months(month_start(NOW), n):%Y%m}" for n in (4, 5)]  # 012 made this month and three more
        assert created == [f"{t}_p{m}" for t in ("shipment_events", "audit_records") for m in months]
        assert await ensure(conn, 5) == []
        names = {p.name for p in await list_partitions(conn)}
        assert {f"shipment_events_p{m}" for m in months} <= names


async def test_list_says_which_partitions_are_due(pool: asyncpg.Pool) -> None:
    await _history(pool)
    async with pool.acquire() as conn:
        parts = {p.name: p for p in await list_partitions(conn)}
    old, kept, now = f"shipment_events_p{OLD:%Y%m}", f"shipment_events_p{KEPT:%Y%m}", f"shipment_events_p{NOW:%Y%m}"
    assert parts[old].rows == 5 and parts[kept].rows == 2 and parts[now].rows == 1
    assert parts[old].lower == _at(OLD).replace(day=1, hour=0)
    states = {name: p.state(NOW, 36) for name, p in parts.items()}
    assert states[old] == "due" and states[kept] == "kept" and states[now] == "current"
    assert states["shipment_events_default"] == "default"
    assert states[f"shipment_events_p{add_months(month_start(NOW), 1):%Y%m}"] == "future"
    assert states[f"audit_records_p{OLD:%Y%m}"] == "due"
    # A longer retention keeps what 36 months would let go.
    assert parts[old].state(NOW, 48) == "kept"


async def test_archive_exports_verifies_and_drops_only_what_is_past_the_retention(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _history(pool)
    await _log_everything(pool)
    async with pool.acquire() as conn:
        with pytest.raises(ArchiveError, match="inside the retention of 36 months"):
            await archive(conn, 36, tmp_path, only=f"shipment_events_p{KEPT:%Y%m}")
        empty = add_months(OLD, -1)  # a month past the retention with nothing in it goes too, as an empty archive
        await conn.execute("SELECT courier_ensure_month('shipment_events', $1)", empty)
        done = await archive(conn, 36, tmp_path)
        assert sorted((a.partition, a.rows) for a in done) == [
            (f"audit_records_p{OLD:%Y%m}", 1), (f"shipment_events_p{empty:%Y%m}", 0),
            (f"shipment_events_p{OLD:%Y%m}", 5)]
        for a in done:
            assert await conn.fetchval("SELECT to_regclass($1)", a.partition) is None
        assert await conn.fetchval("SELECT count(*) FROM shipment_events") == 3  # the kept and the current
        names = {p.name for p in await list_partitions(conn)}
        assert f"shipment_events_p{KEPT:%Y%m}" in names
        events = next(a for a in done if a.partition == f"shipment_events_p{OLD:%Y%m}")
        report = await verify_archive(conn, events.path)
        assert report.ok and report.records == report.matched == report.proven == 5
        assert report.tree_size == await conn.fetchval("SELECT count(*) FROM evidence_leaves")
        # Archived, the records are still in the log's tree: a new event of the old parcel lands in the default.
        assert await archive(conn, 36, tmp_path) == []


def _rewrite(path: Path, change: object) -> Path:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    change(lines)  # type: ignore[operator]
    out = path.with_name("tampered.jsonl.gz")
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    return out


async def test_a_tampered_archive_does_not_verify(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _history(pool)
    await _log_everything(pool)
    async with pool.acquire() as conn:
        done = await archive(conn, 36, tmp_path, only=f"shipment_events_p{OLD:%Y%m}")
        path = done[0].path

        def edit_note(lines: list[dict[str, object]]) -> None:
            lines[2]["record"]["note"] = "changed"  # type: ignore[index]

        report = await verify_archive(conn, _rewrite(path, edit_note))
        assert not report.ok and report.matched == 4
        assert len(report.failures) == 1 and "does not hash to the log's leaf" in report.failures[0]

        def drop_one(lines: list[dict[str, object]]) -> None:
            del lines[3]

        report = await verify_archive(conn, _rewrite(path, drop_one))
        assert not report.ok and "the manifest says 5 rows, the file holds 4" in report.failures

        def move_leaf(lines: list[dict[str, object]]) -> None:
            lines[1]["leaf_index"], lines[2]["leaf_index"] = lines[2]["leaf_index"], lines[1]["leaf_index"]

        report = await verify_archive(conn, _rewrite(path, move_leaf))
        assert not report.ok and report.matched == 3
        with pytest.raises(ArchiveError, match="not a readable archive"):
            await verify_archive(conn, REPO / "README.md")


async def test_rows_not_yet_in_the_evidence_log_keep_their_partition(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _history(pool)
    async with pool.acquire() as conn:
        with pytest.raises(ArchiveError, match="not in the evidence log yet"):
            await archive(conn, 36, tmp_path)
        assert await conn.fetchval("SELECT to_regclass($1)", f"shipment_events_p{OLD:%Y%m}") is not None


def test_a_retention_below_three_years_is_refused() -> None:
    env = {"DATABASE_URL": "postgresql://x/y", "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key()}
    with pytest.raises(SettingsError, match="RETENTION_MONTHS: 12 months is below 36.*at least 3 years"):
        load_settings({**env, "RETENTION_MONTHS": "12"})
    assert load_settings({**env, "RETENTION_MONTHS": "48"}).retention_months == 48
    assert load_settings(env).retention_months == 36


def _command(db_dsn: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "RETENTION_"))}
    return subprocess.run([sys.executable, "-m", "gateway", "partitions", *argv], cwd=REPO,
                          env={**environ, "DATABASE_URL": db_dsn, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


async def test_the_command_archives_lists_and_verifies(pool: asyncpg.Pool, db_dsn: str, tmp_path: Path) -> None:
    await _history(pool)
    await _log_everything(pool)
    refused = _command(db_dsn, "archive", "--to", str(tmp_path), RETENTION_MONTHS="12")
    assert refused.returncode == 2 and "RETENTION_MONTHS: 12 months is below 36" in refused.stderr
    listed = _command(db_dsn, "list")
    assert listed.returncode == 0 and f"shipment_events_p{OLD:%Y%m}" in listed.stdout and "due" in listed.stdout
    done = _command(db_dsn, "archive", "--to", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"archived shipment_events_p{OLD:%Y%m}: 5 rows" in done.stdout
    verified = _command(db_dsn, "verify-archive", str(tmp_path / f"shipment_events_p{OLD:%Y%m}.jsonl.gz"))
    assert verified.returncode == 0 and "5 records, 5 match their leaves, 5 proven" in verified.stdout
    assert verified.stdout.strip().endswith("VERIFIED")


async def test_012_moves_the_rows_of_a_database_with_data(pg_dsn: str) -> None:
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute("DROP DATABASE IF EXISTS courier_partition_check WITH (FORCE)")
    await admin.execute("CREATE DATABASE courier_partition_check")
    conn = await asyncpg.connect(with_database(pg_dsn, "courier_partition_check"))
    try:
        await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
        for number, name, sql in migration_files():
            if number <= 10:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)
        pid = await _principal(conn)
        old = await _parcel(conn, pid, 1, _at(OLD), 3, accepted_column=False)
        await _parcel(conn, pid, 2, NOW, 2, accepted_column=False)
        await _audit(conn, pid, _at(KEPT))
        before = await conn.fetch("SELECT id, shipment_id, seq, ins_xid FROM shipment_events ORDER BY id")
        assert (await migrate(conn))[:2] == ["011_citus_ready", "012_time_partitions"]  # and any later ones
        after = await conn.fetch("SELECT id, shipment_id, seq, ins_xid FROM shipment_events ORDER BY id")
        assert [tuple(r) for r in after] == [tuple(r) for r in before]
        assert await conn.fetchval(f"SELECT count(*) FROM shipment_events_p{OLD:%Y%m}") == 3
        assert await conn.fetchval("SELECT count(*) FROM shipment_events_default") == 0
        assert await conn.fetchval("SELECT accepted_at FROM shipment_events WHERE shipment_id = $1 LIMIT 1",
                                   old) == _at(OLD)
        assert await conn.fetchval(f"SELECT count(*) FROM audit_records_p{KEPT:%Y%m}") == 1
        assert await conn.fetchval("SELECT count(*) FROM shipment_waybills") == 2
        assert await conn.fetchval("SELECT shipment_id::text FROM shipment_idempotency_keys"
                                   " WHERE idempotency_key = 'key-00000001'") == old
        # The sequence goes on from where it was, now owned by the new table.
        new_id = await conn.fetchval(
            "INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, to_state, principal_id, principal)"
            " VALUES ($1, $2, 4, 'STORED', 'STORED', $3, 'p') RETURNING id", old, _at(OLD), pid)
        assert new_id == before[-1]["id"] + 1
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, to_state, principal_id, principal)"
                " VALUES ($1, $2, 4, 'STORED', 'STORED', $3, 'p')", old, _at(OLD), pid)
    finally:
        await conn.close()
        await admin.execute("DROP DATABASE courier_partition_check WITH (FORCE)")
        await admin.close()


async def test_a_gateway_creates_the_months_ahead_at_start(settings: Settings) -> None:
    from gateway.server import create_server

    built = await create_server(replace(settings, partition_months_ahead=6))
    try:
        conn = await asyncpg.connect(settings.database_url)
        try:
            for n in range(7):
                month = add_months(month_start(NOW), n)
                for table in ("shipment_events", "audit_records"):
                    assert await conn.fetchval("SELECT to_regclass($1)", f"{table}_p{month:%Y%m}") is not None
            assert await conn.fetchval("SELECT to_regclass($1)",
                                       f"shipment_events_p{add_months(month_start(NOW), 7):%Y%m}") is None
        finally:
            await conn.close()
    finally:
        await built.stop(0)
