"""The issue's "Must show": simulators feed a running gateway through `python -m inspection run`.

The gateway runs as `python -m gateway serve` (so it can be stopped and started again) on the test's
database; the adapter is a process too (so it can be SIGKILLed). The scale station, DWS and X-ray folder
simulators speak their real protocols on real sockets and write real files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sqlite3
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from courier.v1 import acceptance_pb2, blocklist_pb2, custody_pb2
from gateway.storage.cluster import free_port
from inspection.simulators.dws import DwsSimulator, record_for
from inspection.simulators.files import write_xray
from inspection.simulators.scale import ScaleSimulator, parcel_plan
from tests.conftest import REPO
from tests.e2e.test_screening import accept, add_entry, items

ALARM = [{"category": "BATTERY", "description": "lithium cells", "confidence": 0.93, "alarm": True}]


@dataclass
class Gateway:
    """A `python -m gateway serve` process on a fixed port, restartable."""

    env: dict[str, str]
    port: int
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Starts the process and waits until it listens."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", env=self.env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        assert b"gateway listening" in line, line

    async def stop(self) -> None:
        """SIGTERM, and wait for it to go."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), timeout=20)


@pytest.fixture
async def served(gateway, tmp_path: Path) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    """A second gateway, as a process, on the fixture gateway's database, keys and blob store."""
    s = gateway.settings
    env = {**os.environ, "DATABASE_URL": s.database_url, "GATEWAY_DATA_KEY": base64.b64encode(s.data_key).decode(),
           "GATEWAY_INDEX_KEY": base64.b64encode(s.index_key).decode(), "LOG_LEVEL": "WARNING",
           "IDENTITY_AUTHORITY_URL": s.identity_authority_url, "IDENTITY_AUTHORITY_KEY": s.identity_authority_key,
           "BLOB_STORE_DIR": s.blob_store_dir, "SHUTDOWN_GRACE_S": "1"}
    port = free_port()
    gw = Gateway({**env, "GATEWAY_LISTEN": f"127.0.0.1:{port}"}, port)
    await gw.start()
    yield gw
    await gw.stop()


@dataclass
class Site:
    """The simulators, the adapter's configuration and the adapter process."""

    config: Path
    queue: Path
    log: Path
    dws: DwsSimulator
    scale: ScaleSimulator
    xray_dir: Path
    proc: asyncio.subprocess.Process | None = None

    async def start_adapter(self, metrics_port: int = 0) -> None:
        """Starts `python -m inspection run`; its log goes to a file (a full pipe would stall it)."""
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "inspection", "run", "--config", str(self.config),
                "--metrics-port", str(metrics_port), cwd=REPO, stdout=log, stderr=log)

    async def kill_adapter(self) -> None:
        """SIGKILL: no chance to finish anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    def pending(self) -> int:
        """Events the adapter has queued and the gateway not yet acknowledged."""
        if not self.queue.exists():
            return -1
        with contextlib.closing(sqlite3.connect(self.queue, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM events WHERE status = 'pending'").fetchone()[0])


CONFIG = """
[gateway]
target = "127.0.0.1:{gateway_port}"
token = "{token}"
backoff_initial_s = 0.2
backoff_max_s = 2
ack_timeout_s = 10

[queue]
path = "queue.sqlite"

[site]
location = "SH-HUB-02/line-3"

[[devices]]
id = "dws-1"
type = "dws"
connection = {{ host = "127.0.0.1", port = {dws_port} }}
record_timeout_s = 0.5

[[devices]]
id = "scale-1"
type = "scale"
connection = {{ host = "127.0.0.1", port = {scale_port} }}
reader = "reader-1"
poll_interval_s = 0.05
pair_timeout_s = 3

[[devices]]
id = "reader-1"
type = "reader"
connection = {{ host = "127.0.0.1", port = {reader_port} }}

[[devices]]
id = "xray-1"
type = "folder"
kind = "xray"
connection = {{ directory = "xray" }}
settle_s = 0.2
"""


async def make_site(tmp_path: Path, gw: Gateway, token: str, records: list[bytes], scale_plan: list[str],
                    dws_interval_s: float = 0.05) -> Site:
    """Starts the simulators and writes the adapter's configuration."""
    dws = DwsSimulator(records, interval_s=dws_interval_s)
    scale = ScaleSimulator(scale_plan, interval_s=0.05)
    dws_port, scale_port = await dws.start(), await scale.start(reader_port=0)
    config = tmp_path / "site.toml"
    config.write_text(CONFIG.format(gateway_port=gw.port, token=token, dws_port=dws_port, scale_port=scale_port,
                                    reader_port=scale.reader_port))
    (tmp_path / "xray").mkdir()
    return Site(config, tmp_path / "queue.sqlite", tmp_path / "adapter.log", dws, scale, tmp_path / "xray")


async def close_site(site: Site) -> None:
    """Stops the adapter and the simulators."""
    if site.proc is not None and site.proc.returncode is None:
        site.proc.terminate()
        await asyncio.wait_for(site.proc.wait(), timeout=20)
    await site.dws.close()
    await site.scale.close()


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Waits for check() to be true."""
    for _ in range(int(within / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within} s: {what}")


async def rows(dsn: str) -> list[asyncpg.Record]:
    """The gateway's scan events."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT event_id, device_id, kind, waybill_no, decision, ack FROM scan_events "
                                "ORDER BY recorded_at, event_id")
    finally:
        await conn.close()


async def drained(site: Site, dsn: str, count: int, within: float) -> list[asyncpg.Record]:
    """Waits until the gateway holds `count` scan events and the adapter's queue is empty."""
    async def done() -> bool:
        return len(await rows(dsn)) >= count and site.pending() == 0
    try:
        await until(done, within, f"{count} scan events recorded and the queue drained")
    except AssertionError as err:
        raise AssertionError(f"{err}; adapter log:\n{site.log.read_text()[-3000:]}") from err
    return await rows(dsn)


@pytest.mark.slow
async def test_held_refused_and_unknown_parcels_are_diverted_or_rejected(gateway, served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok_dws, ok_scale, ok_xray, alarmed = [(await accept(gateway)).waybill_no for _ in range(4)]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    held = await accept(gateway, items=items("复刻 球鞋"))
    refused = await accept(gateway, items=items("复刻 外套"))
    assert held.decision == refused.decision == acceptance_pb2.ACCEPT_DECISION_HELD
    await gateway.custody.RefuseParcel(custody_pb2.ReviewDecisionRequest(
        waybill_no=refused.waybill_no, reason="counterfeit", case_no="C-7"), metadata=gateway.md("reviewer"))
    unknown = "SF000000000077"
    records = [record_for(i + 1, w) for i, w in enumerate([ok_dws, held.waybill_no, refused.waybill_no, unknown])]
    records.append(record_for(9, ok_dws, "truncated"))
    site = await make_site(tmp_path, served, gateway.tokens["scanner"], records,
                           parcel_plan([(ok_scale, 800), ("", 500)]))
    write_xray(site.xray_dir, "bag-1", ok_xray, "dicom", seed=1)
    write_xray(site.xray_dir, "bag-2", alarmed, "png", ALARM, seed=2)
    write_xray(site.xray_dir, "bag-3", ok_xray, "dicom", bad="corrupt", seed=3)
    metrics_port = free_port()
    await site.start_adapter(metrics_port)
    try:
        found = await drained(site, gateway.settings.database_url, 10, within=40)
        metrics = await asyncio.to_thread(_read, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        await close_site(site)
    told = {(r["device_id"], r["waybill_no"], r["decision"]) for r in found}
    assert {("dws-1", ok_dws, "PASS"), ("dws-1", held.waybill_no, "DIVERT_TO_HOLD"),
            ("dws-1", refused.waybill_no, "REJECT"), ("dws-1", unknown, "DIVERT_TO_HOLD"),
            ("dws-1", "", "DIVERT_TO_HOLD"),  # the truncated record
            ("scale-1", ok_scale, "PASS"), ("scale-1", "", "DIVERT_TO_HOLD"),  # a parcel whose code was not read
            ("xray-1", ok_xray, "PASS"), ("xray-1", alarmed, "DIVERT_TO_HOLD"),
            ("xray-1", "", "DIVERT_TO_HOLD")} == told  # the corrupt image
    assert len(found) == 10 and len({r["event_id"] for r in found}) == 10
    assert sorted(p.name for p in (site.xray_dir / "done").iterdir()) == ["bag-1.dcm", "bag-1.dcm.json",
                                                                          "bag-2.png", "bag-2.png.json"]
    assert sorted(p.name for p in (site.xray_dir / "bad").iterdir()) == ["bag-3.dcm", "bag-3.dcm.json"]
    assert 'inspection_unreadable_total{device="dws-1",reason="TRUNCATED_RECORD"} 1.0' in metrics
    assert 'inspection_unreadable_total{device="xray-1",reason="CORRUPT_IMAGE"} 1.0' in metrics
    assert "inspection_queue_depth 0.0" in metrics
    log = site.log.read_text()
    assert f"dws-1 {refused.waybill_no} REJECT: PARCEL_REFUSED" in log
    assert f"xray-1 {alarmed} DIVERT_TO_HOLD: XRAY_ALARM" in log, log[-2000:]


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def _dws_records(count: int) -> tuple[list[bytes], set[str]]:
    waybills = [f"SF{7_000_000_000 + i:010d}" for i in range(count)]
    return [record_for(i + 1, w) for i, w in enumerate(waybills)], set(waybills)


def _exactly_once(found: list[asyncpg.Record], waybills: set[str]) -> None:
    dws = [r["waybill_no"] for r in found if r["device_id"] == "dws-1"]
    assert sorted(dws) == sorted(waybills), f"{len(dws)} DWS events for {len(waybills)} readings"
    assert len({r["event_id"] for r in found}) == len(found)


@pytest.mark.slow
async def test_a_gateway_down_for_30_s_loses_and_duplicates_nothing(gateway, served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    records, waybills = _dws_records(60)
    site = await make_site(tmp_path, served, gateway.tokens["scanner"], records, [], dws_interval_s=0.5)
    await site.start_adapter()
    try:
        await until(lambda: _count(gateway.settings.database_url, 5), 20, "the first readings recorded")
        await served.stop()
        for i in range(4):  # readings keep coming while the gateway is away; the queue holds them
            write_xray(site.xray_dir, f"outage-{i}", f"SF{8_000_000_000 + i:010d}", "dicom", seed=i)
        await asyncio.sleep(30)
        waiting = site.pending()
        assert waiting >= 40, f"only {waiting} readings queued during the outage"
        await served.start()
        found = await drained(site, gateway.settings.database_url, 64, within=60)
    finally:
        await close_site(site)
    _exactly_once(found, waybills)
    assert sum(r["device_id"] == "xray-1" for r in found) == 4
    assert "reconnecting" in site.log.read_text()


async def _count(dsn: str, at_least: int) -> bool:
    return len(await rows(dsn)) >= at_least


@pytest.mark.slow
async def test_an_adapter_killed_and_restarted_loses_and_duplicates_nothing(gateway, served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    records, waybills = _dws_records(40)
    site = await make_site(tmp_path, served, gateway.tokens["scanner"], records, [], dws_interval_s=0.05)
    for i in range(6):
        write_xray(site.xray_dir, f"kill-{i}", f"SF{9_000_000_000 + i:010d}", "dicom", seed=i)
    await site.start_adapter()
    try:
        await until(lambda: _count(gateway.settings.database_url, 8), 20, "some readings recorded")
        await site.kill_adapter()
        killed_at = len(await rows(gateway.settings.database_url))
        await site.start_adapter()
        found = await drained(site, gateway.settings.database_url, 46, within=40)
    finally:
        await close_site(site)
    assert killed_at < 46, "the adapter was killed after it had finished: nothing was tested"
    _exactly_once(found, waybills)
    assert sorted(r["waybill_no"] for r in found if r["device_id"] == "xray-1") == [
        f"SF{9_000_000_000 + i:010d}" for i in range(6)]


async def _token(dsn: str, *roles: str) -> str:
    from gateway.core.model import Role
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        return (await PrincipalRepository(pool).create_token("scan-demo", frozenset(Role(r) for r in roles)))[1]
    finally:
        await pool.close()


@pytest.mark.slow
async def test_the_demo_scans_accepted_parcels_and_prints_each_ack(gateway) -> None:  # type: ignore[no-untyped-def]
    token = await _token(gateway.settings.database_url, "terminal", "scanner")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inspection", "demo", "--target", f"127.0.0.1:{gateway.port}", "--token", token,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert text.count("AcceptParcel SF") == 4 and "VERDICT_VERIFIED" in text
    assert "8 readings, 4 PASS, 4 diverted or rejected" in text, text
    for expected in ("UNKNOWN_WAYBILL", "TRUNCATED_RECORD", "NO_READ", "XRAY_ALARM"):
        assert expected in text, f"{expected} missing from the demo's output"
