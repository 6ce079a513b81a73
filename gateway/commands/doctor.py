"""`python -m gateway doctor`: checks what a gateway needs before (or while) it serves, and says what to fix.

One line per check, ok, warn or fail, with what was found and, when it is not ok, what to do: the settings parse;
TLS files and their expiry; the data and index keys; DATABASE_URL answers (and how fast, which server); every
migration is applied; DATABASE_REPLICA_URL is a streaming standby of it, and how far behind; the newest sealed
values open under the configured keys (`keys status` counts all of them); the evidence log's latest signed head
verifies and its leaves still give its root, with the newest leaves' records rebuilt from their rows; the signing
key; the identity authority answers; the blob store is writable; the gRPC and metrics ports are free. Reads the
environment, or make run's .var/env. Exit 0 when nothing failed (warnings allowed), 1 when something did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.settings import Settings, SettingsError, load_settings

SAMPLE = 1000  # the newest rows per table whose keys are checked, and the newest leaves whose records are rebuilt


@dataclass(frozen=True)
class Check:
    """One check's outcome: ok, warn or fail, what was found, and what to do about it."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def shown_dsn(dsn: str) -> str:
    """DATABASE_URL without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_transport(s: Settings) -> Check:
    """TLS files (parsed with the settings) and how long the certificate stays valid."""
    from cryptography import x509

    from gateway.security.tls import describe

    if not s.tls_cert:
        if s.allow_plaintext:
            return Check("tls", "warn", describe("", "", s.listen), "GATEWAY_ALLOW_PLAINTEXT=1: TLS must end in a"
                         " proxy in front of the gateway; otherwise set GATEWAY_TLS_CERT and GATEWAY_TLS_KEY")
        return _ok("tls", describe("", "", s.listen))
    cert = x509.load_pem_x509_certificate(Path(s.tls_cert).read_bytes())
    left = cert.not_valid_after_utc - datetime.now(UTC)
    until = cert.not_valid_after_utc
    detail = f"{describe(s.tls_cert, s.tls_client_ca, s.listen)}; certificate valid until {until:%Y-%m-%d}"
    if left <= timedelta(0):
        return Check("tls", "fail", detail, f"the certificate in GATEWAY_TLS_CERT ({s.tls_cert}) has expired: renew it")
    if left < timedelta(days=30):
        return Check("tls", "warn", detail, f"GATEWAY_TLS_CERT expires in {left.days} days: renew it")
    return _ok("tls", detail)


def check_keys(s: Settings) -> Check:
    """The data and index keys (32 bytes each and different, as the settings insist), by key id."""
    from gateway.security.sealing import key_id

    detail = f"data key {key_id(s.data_key, purpose='data')}, index key {key_id(s.index_key, purpose='index')}"
    if s.past_data_keys or s.past_index_keys:
        return Check("keys", "warn", f"{detail}; {len(s.past_data_keys)} past data, {len(s.past_index_keys)} past"
                     " index keys", "a rotation is under way: run `python -m gateway keys rotate`, then remove the"
                     " past keys once `keys status` says every value is under the current ones")
    return _ok("keys", detail)


async def check_database(s: Settings) -> tuple[list[Check], asyncpg.Connection | None]:
    """DATABASE_URL answers within DB_CONNECT_TIMEOUT_S; the server's version; the migrations applied."""
    from gateway.storage.db import migration_files

    started = time.perf_counter()
    try:
        conn = await asyncpg.connect(s.database_url, timeout=s.db_connect_timeout_s)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc) or type(exc).__name__
        return [Check("database", "fail", f"cannot connect to {shown_dsn(s.database_url)}: {reason}",
                      "check DATABASE_URL (host, port, database, user, password) and that PostgreSQL runs and"
                      " accepts connections from here")], None
    ms = (time.perf_counter() - started) * 1000
    # jsonb as Python objects, as the gateway's pool reads it, so records rebuild as they were logged.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    version = await conn.fetchval("SHOW server_version")
    found = [_ok("database", f"{shown_dsn(s.database_url)} answered in {ms:.0f} ms; PostgreSQL {version}")]
    shipped = {n: f"{n:03d}_{name}" for n, name, _ in migration_files()}
    has_table = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if has_table else set()
    pending = [shipped[n] for n in sorted(shipped) if n not in applied]
    unknown = sorted(applied - set(shipped))
    if pending:
        found.append(Check("migrations", "fail", f"{len(pending)} pending: {', '.join(pending)}",
                           "run `python -m gateway migrate` (or `serve --migrate`)"))
    elif unknown:
        found.append(Check("migrations", "warn", f"the database has migrations this version does not ship: {unknown}",
                           "a newer gateway migrated it: run that version"))
    else:
        found.append(_ok("migrations", f"all {len(shipped)} applied (latest {shipped[max(shipped)]})"))
    return found, conn


REPLICA_LAG_WARN_S = 60.0  # a standby further behind than this answers investigators with visibly old data


async def check_replica(s: Settings, primary: asyncpg.Connection | None) -> Check:
    """DATABASE_REPLICA_URL answers, is a standby of DATABASE_URL's cluster, streams, and how far behind it is."""
    if not s.database_replica_url:
        return _ok("replica", "DATABASE_REPLICA_URL is not set: Investigation reads from the primary")
    shown = shown_dsn(s.database_replica_url)
    try:
        conn = await asyncpg.connect(s.database_replica_url, timeout=s.db_connect_timeout_s)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return Check("replica", "fail", f"cannot connect to {shown}: {str(exc) or type(exc).__name__}",
                     "check DATABASE_REPLICA_URL and that the standby runs; until then the primary answers"
                     " Investigation's reads")
    try:
        standby = await conn.fetchrow(
            "SELECT pg_is_in_recovery() AS recovering, (SELECT system_identifier FROM pg_control_system()) AS system,"
            " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS behind_s,"
            " pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS caught_up,"
            " (SELECT status FROM pg_stat_wal_receiver) AS receiver")
        applied = await conn.fetchval("SELECT max(version) FROM schema_migrations") if await conn.fetchval(
            "SELECT to_regclass('schema_migrations') IS NOT NULL") else None
    finally:
        await conn.close()
    if not standby["recovering"]:
        return Check("replica", "fail", f"{shown} is not a standby (pg_is_in_recovery() is false)",
                     "point DATABASE_REPLICA_URL at a streaming replica of DATABASE_URL (pg_basebackup -R)")
    if primary is not None:
        system = await primary.fetchval("SELECT system_identifier FROM pg_control_system()")
        if system != standby["system"]:
            return Check("replica", "fail", f"{shown} is a standby of another cluster (system {standby['system']},"
                         f" the primary's {system})", "point DATABASE_REPLICA_URL at a replica of DATABASE_URL")
        newest = await primary.fetchval("SELECT max(version) FROM schema_migrations")
        if applied != newest:
            return Check("replica", "warn", f"{shown} has replayed migrations up to {applied}, the primary {newest}",
                         "wait for replay to catch up; reads it cannot serve go to the primary meanwhile")
    receiving = standby["receiver"] or "no WAL receiver"
    if standby["caught_up"] and standby["receiver"] == "streaming":
        return _ok("replica", f"{shown}: a standby, streaming, every received change replayed")
    behind = standby["behind_s"]
    detail = f"{shown}: a standby, {receiving}" + (f", last replayed commit {behind:.0f} s ago" if behind is not None
                                                   else ", no transaction replayed yet")
    if standby["receiver"] != "streaming" or behind is None or behind > REPLICA_LAG_WARN_S:
        return Check("replica", "warn", detail, "check the standby's replication (primary_conninfo, replay paused?);"
                     " its answers say how current they are (as_of)")
    return _ok("replica", detail)


async def check_sealed(s: Settings, conn: asyncpg.Connection, sample: int) -> Check:
    """The newest sealed values and blind indexes of each table, by key id (as `keys status` counts them)."""
    from gateway.commands.keys import TABLES, UNKNOWN, TableReport, examine
    from gateway.security.sealing import sealer_of

    sealer = sealer_of(s)
    reports: dict[str, TableReport] = {}
    for spec in TABLES:
        alias = spec.key.split(".")[0]
        limit = f"LIMIT {int(sample)}" if sample else ""
        keys = [r["key"] for r in await conn.fetch(
            f"SELECT {spec.key} AS key FROM {spec.table} {alias} WHERE {spec.where} ORDER BY {spec.key} DESC {limit}")]
        report = reports[spec.table] = TableReport()
        rows = await conn.fetch(spec.select.format(where=f"{spec.key} = ANY($1::{spec.key_type}[])", lock=""), keys)
        for row in rows:
            report.rows += 1
            examine(sealer, spec, row, report)
    data: Counter[str] = Counter()
    index: Counter[str] = Counter()
    for r in reports.values():
        data.update(r.data)
        index.update(r.index)
    rows = sum(r.rows for r in reports.values())
    scope = f"the newest {sample} rows of each table" if sample else "every row"
    foreign = {k: n for k, n in data.items() if k not in (*sealer.data_key_ids, "v1")}
    problems = [p for r in reports.values() for p in r.problems]
    if foreign or index.get(UNKNOWN) or problems:
        ids = ", ".join(f"{k}: {n}" for k, n in sorted(foreign.items())) or "none"
        return Check("sealed values", "fail", f"{scope} ({rows}): values under key ids not configured ({ids}),"
                     f" {index.get(UNKNOWN, 0)} blind indexes no configured key gives",
                     "GATEWAY_DATA_KEY / GATEWAY_INDEX_KEY are not the keys that sealed these rows: set the right"
                     " keys (or add the old ones to GATEWAY_PAST_DATA_KEYS / GATEWAY_PAST_INDEX_KEYS);"
                     " `python -m gateway keys status` counts every row")
    past = sum(n for k, n in data.items() if k != sealer.data_key_id) + \
        sum(n for k, n in index.items() if k != sealer.index_key_id)
    if past:
        return Check("sealed values", "warn", f"{scope} ({rows}): {past} values under past keys",
                     "run `python -m gateway keys rotate`")
    return _ok("sealed values", f"{scope} ({rows} rows): every value opens under the current keys")


class _TreeHead:
    """RFC 9162 tree head of leaf hashes fed in order, kept as the perfect subtrees so far (O(log n) memory)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        """Appends one leaf hash, merging the subtrees it completes."""
        from gateway.core.evidence.merkle import node_hash

        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            node, height = node_hash(self._stack.pop()[1], node), height + 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        """The root over every leaf added (the smaller subtrees on the right, as RFC 9162 splits)."""
        import hashlib

        from gateway.core.evidence.merkle import node_hash

        if not self._stack:
            return hashlib.sha256(b"").digest()
        subtrees = [node for _, node in self._stack]
        root = subtrees.pop()
        while subtrees:
            root = node_hash(subtrees.pop(), root)
        return root


async def _leaves_give(conn: asyncpg.Connection, size: int) -> tuple[bool, bytes]:
    """Reads the first size leaf hashes in order through a cursor: whether they have no gap, and their root."""
    tree = _TreeHead()
    async with conn.transaction(readonly=True):
        async for r in conn.cursor("SELECT leaf_index, leaf_hash FROM evidence_leaves WHERE leaf_index < $1"
                                   " ORDER BY leaf_index", size, prefetch=10_000):
            if r["leaf_index"] != tree.size:
                return False, b""
            tree.add(bytes(r["leaf_hash"]))
    return tree.size == size, tree.root()


async def check_evidence(s: Settings, conn: asyncpg.Connection, sample: int) -> list[Check]:
    """The latest signed head: its signature, its root from the stored subtrees and from every leaf, and the
    newest leaves' records rebuilt from their rows."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.core.evidence.checkpoint import CheckpointError, open_checkpoint, verifier_key
    from gateway.core.evidence.merkle import needed_for_root, root_hash
    from gateway.core.evidence.records import record_leaf_hash
    from gateway.storage.evidence import SOURCES, EvidenceRepository, record_of

    found: list[Check] = []
    keys = list(s.evidence_past_keys)
    if s.evidence_signing_key:
        private = Ed25519PrivateKey.from_private_bytes(s.evidence_signing_key)
        keys.insert(0, verifier_key(s.evidence_key_name, private.public_key()))
    head = await conn.fetchrow("SELECT tree_size, root_hash, note FROM evidence_heads"
                               " ORDER BY tree_size DESC, signed_at DESC LIMIT 1")
    size = await EvidenceRepository.tree_size(conn)
    if head is None:
        found.append(Check("evidence log", "warn" if size else "ok", f"{size} leaves, no signed head yet",
                           "a serving gateway with EVIDENCE_SIGNING_KEY signs one" if size else ""))
        return found
    n, root = head["tree_size"], bytes(head["root_hash"])
    problems = []
    try:
        if keys and open_checkpoint(head["note"], keys).root != root:
            problems.append("the signed note states another root than the head's row")
    except CheckpointError as exc:
        problems.append(f"the latest head's signature does not verify with the configured keys ({exc.message})")
    complete, from_leaves = await _leaves_give(conn, n)
    if not complete:
        problems.append(f"the log's first {n} leaves have gaps")
    elif from_leaves != root:
        problems.append(f"the leaves no longer give the root signed at size {n}")
    if root_hash(n, await EvidenceRepository.stored(conn, needed_for_root(n))) != root:
        problems.append(f"the stored subtree hashes no longer give the root signed at size {n}")
    newest = await conn.fetch("SELECT leaf_index, source, source_key, leaf_hash FROM evidence_leaves"
                              " WHERE leaf_index < $1 ORDER BY leaf_index DESC" + (f" LIMIT {int(sample)}" if sample
                                                                                   else ""), n)
    for code, source in SOURCES.items():
        mine = [r for r in newest if r["source"] == code]
        if not mine:
            continue
        cast = "::bigint[]" if source.numeric else "::text[]"
        keys_ = [int(r["source_key"]) if source.numeric else r["source_key"] for r in mine]
        rows = {r["key"]: record_of(code, r) for r in await conn.fetch(
            f"{source.select} WHERE {source.key} = ANY($1{cast})", keys_)}
        for leaf in mine:
            record = rows.get(leaf["source_key"])
            if record is None or record_leaf_hash(record) != bytes(leaf["leaf_hash"]):
                problems.append(f"leaf {leaf['leaf_index']}'s row ({code} {leaf['source_key']}) "
                                + ("is gone" if record is None else "changed since it was logged"))
    detail = f"head at {n} of {size} leaves; checked every leaf hash, and the newest {len(newest)} records"
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        found.append(Check("evidence log", "fail", f"{detail}: {shown}",
                           "the log or its rows were changed outside the gateway: keep the database as it is for"
                           " investigation, and compare with exported bundles (`gateway evidence verify`)"))
    else:
        found.append(_ok("evidence log", detail + ": all verify"))
    return found


def check_signing(s: Settings) -> Check:
    """EVIDENCE_SIGNING_KEY is set: its verifier key (what investigators are given to trust)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.core.evidence.checkpoint import verifier_key

    if not s.evidence_signing_key:
        return Check("signing key", "warn", "EVIDENCE_SIGNING_KEY is not set: the log is kept, no head is signed",
                     "`python -m gateway keys new --signing NAME` prints one")
    private = Ed25519PrivateKey.from_private_bytes(s.evidence_signing_key)
    return _ok("signing key", verifier_key(s.evidence_key_name, private.public_key()))


def check_authority(s: Settings) -> Check:
    """The identity authority's base URL answers HTTP at all, within IDENTITY_AUTHORITY_TIMEOUT_S."""
    if not s.identity_authority_url:
        return Check("identity authority", "warn", "IDENTITY_AUTHORITY_URL is not set: documents are checked by rule,"
                     " the person by the courier", "set IDENTITY_AUTHORITY_URL to have people checked by the authority")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(s.identity_authority_url, timeout=s.identity_authority_timeout_s) as answer:
            status = answer.status
    except urllib.error.HTTPError as answer:  # any HTTP answer means it is there
        status = answer.code
    except (OSError, ValueError) as exc:
        return Check("identity authority", "fail", f"{s.identity_authority_url}: {getattr(exc, 'reason', exc)}",
                     "check IDENTITY_AUTHORITY_URL and that the authority is reachable from here")
    ms = (time.perf_counter() - started) * 1000
    return _ok("identity authority", f"{s.identity_authority_url} answered HTTP {status} in {ms:.0f} ms")


def check_blobs(s: Settings) -> Check:
    """BLOB_STORE_DIR exists (or can be made) and takes a file."""
    path = Path(s.blob_store_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("blob store", "fail", f"{path}: {exc.strerror}",
                     "make BLOB_STORE_DIR a directory this user can write (shared by every gateway of the database)")
    return _ok("blob store", f"{path.resolve()} is writable")


def _port_free(host: str, port: int) -> str:
    """An empty string when host:port can be bound now, else why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def check_ports(s: Settings) -> list[Check]:
    """GATEWAY_LISTEN and METRICS_PORT can be bound (a warning only: a running gateway holds them)."""
    host, _, port = s.listen.rpartition(":")
    host = host.strip("[]")
    found = []
    for name, number in (("GATEWAY_LISTEN", int(port)), ("METRICS_PORT", s.metrics_port)):
        if not number:
            found.append(_ok(name, "0: " + ("any free port" if name == "GATEWAY_LISTEN" else "no metrics server")))
            continue
        why = _port_free(host, number)
        found.append(Check(name, "warn", f"{host}:{number}: {why}", f"another process holds it (a running gateway?):"
                           f" stop it or choose another {name}") if why else _ok(name, f"{host}:{number} is free"))
    return found


async def _guarded(name: str, work: Any) -> Any:
    """The check's outcome, or a failure naming what the database answered (a check never ends in a traceback)."""
    try:
        return await work
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        failed = Check(name, "fail", f"the database refused the check: {type(exc).__name__}: {exc}",
                       "check that DATABASE_URL's user may read the gateway's tables")
        return failed if name == "sealed values" else [failed]


async def diagnose(environ: Mapping[str, str] | None = None, *, sample: int = SAMPLE) -> list[Check]:
    """Every check, in order; a settings failure stops the rest, an unreachable database the checks that need it."""
    from gateway.commands.dev import dev_env

    try:
        s = load_settings(dev_env(environ))
    except SettingsError as exc:
        return [Check("settings", "fail", str(exc), "fix that variable (README: Settings)")]
    checks = [_ok("settings", "every variable parses"), check_transport(s), check_keys(s), check_signing(s)]
    database, conn = await check_database(s)
    checks += database
    if conn is not None:
        try:
            if all(c.status != "fail" for c in database):
                checks.append(await _guarded("sealed values", check_sealed(s, conn, sample)))
                checks += await _guarded("evidence log", check_evidence(s, conn, sample))
            checks.append(await check_replica(s, conn))
        finally:
            await conn.close()
    else:
        checks.append(await check_replica(s, None))
    checks += [await asyncio.to_thread(check_authority, s), check_blobs(s), *check_ports(s)]
    return checks


_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def show(checks: list[Check], console: Console) -> None:
    """The checks as a table, then one summary line."""
    table = Table("check", "status", "found", "what to do")
    for c in checks:
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", escape(c.detail), escape(c.fix))
    console.print(table)
    failed = [c.name for c in checks if c.status == "fail"]
    warned = [c.name for c in checks if c.status == "warn"]
    console.print(f"[bold red]{len(failed)} failed[/]: {', '.join(failed)}" if failed else
                  "[green]nothing failed[/]" + (f" ({len(warned)} warnings: {', '.join(warned)})" if warned else ""))


def run(args: argparse.Namespace) -> int:
    """Runs every check, prints the table; 1 when any check failed."""
    checks = asyncio.run(diagnose(os.environ, sample=args.sample))
    show(checks, Console())
    return 1 if any(c.status == "fail" for c in checks) else 0


def register(sub: Any) -> None:
    """Adds the `doctor` command."""
    p = sub.add_parser("doctor", help="check settings, database, migrations, keys and the evidence log")
    p.add_argument("--sample", type=int, default=SAMPLE, metavar="N",
                   help=f"check the keys of the newest N rows per table and the newest N evidence records"
                        f" (default {SAMPLE}; 0: all)")
    p.set_defaults(func=run)
