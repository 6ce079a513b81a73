"""Investigation reads on a streaming replica: a real primary, a real standby made by pg_basebackup -R, a real
gateway between them. Searches and histories are served by the standby and say how current they are, their
audit records land on the primary, a paused replay shows as an older as_of, and a standby that is down or
absent leaves the primary to answer."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from prometheus_client import REGISTRY

from courier.v1 import blocklist_pb2, investigation_pb2
from gateway.core.model import Role
from gateway.security.sealing import generate_key
from gateway.settings import Settings
from gateway.storage.cluster import SUPERUSER, Cluster, find_bindir
from gateway.storage.db import migrate_dsn
from gateway.storage.replica import REPLICA_APPLICATION, RETRY_AFTER_S
from tests.conftest import RunningGateway, make_tokens
from tests.e2e.test_investigation import CASE, accepted, search
from tests.e2e.test_screening import add_entry, items

pytestmark = pytest.mark.slow
INV = Role.INVESTIGATOR


class Pair:
    """A primary and its streaming standby, each a cluster of its own."""

    def __init__(self, root: Path) -> None:
        self.primary = Cluster(root / "primary")
        self.standby = Cluster(root / "standby", fsync=False)

    def start(self) -> None:
        """Starts the primary, copies it with pg_basebackup -R (a standby.signal and primary_conninfo), starts
        the copy on another port."""
        self.primary.start()  # initdb's pg_hba lets local replication connections in; wal_level is replica
        standby = self.standby
        standby._bindir = find_bindir()  # the cluster's own helpers: run as the service user when root
        standby.root.mkdir(parents=True)
        standby._prepare_owner()
        standby._run("pg_basebackup", "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast",
                     "-h", str(self.primary.socket_dir), "-p", str(self.primary.port), "-U", SUPERUSER)
        standby.start()  # PG_VERSION is there: no initdb; the database courier came with the copy

    def destroy(self) -> None:
        """Stops both and removes their files."""
        self.standby.destroy()
        self.primary.destroy()


@pytest.fixture(scope="module")
async def pair() -> AsyncIterator[Pair]:
    """A migrated primary and a standby streaming from it, for this module."""
    made = Pair(Path(tempfile.mkdtemp(prefix="courier-replica-")))
    try:
        made.start()
        await migrate_dsn(made.primary.dsn())
        yield made
    finally:
        made.destroy()


async def caught_up(pair: Pair, *, replayed: bool = True) -> None:
    """Waits until the standby has received (and, if replayed, replayed) everything the primary wrote so far."""
    primary = await asyncpg.connect(pair.primary.dsn())
    standby = await asyncpg.connect(pair.standby.dsn())
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        function = "pg_last_wal_replay_lsn" if replayed else "pg_last_wal_receive_lsn"
        for _ in range(600):  # a restarted standby may wait wal_retrieve_retry_interval (5 s) to stream again
            if await standby.fetchval(f"SELECT {function}() >= $1::pg_lsn", target):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the standby's {function} never reached {target}")
    finally:
        await primary.close()
        await standby.close()


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """One query on one server."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture
async def gateways(pair: Pair, tmp_path: Path, authority_simulator: object) -> AsyncIterator[
        dict[str, RunningGateway]]:
    """Two real gateways on the primary: one reading from the standby (DATABASE_REPLICA_URL), one without."""
    from gateway.server import create_server

    base = Settings(database_url=pair.primary.dsn(), listen="127.0.0.1:0", data_key=generate_key(),
                    index_key=generate_key(), token_cache_ttl_s=0.0, shutdown_grace_s=1.0,
                    blob_store_dir=str(tmp_path / "blobs"), evidence_signing_key=generate_key(),
                    evidence_append_s=0.05, db_pool_min=1, db_pool_max=4, db_connect_timeout_s=2.0,
                    identity_authority_url=authority_simulator.url,  # type: ignore[attr-defined]
                    identity_authority_key="test-key")
    tokens = await make_tokens(base.database_url)
    running: dict[str, RunningGateway] = {}
    built = []
    for name, s in (("replica", replace(base, database_replica_url=pair.standby.dsn())), ("primary", base)):
        gw = await create_server(s)
        await gw.server.start()
        built.append(gw)
        running[name] = RunningGateway(gw.port, grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}"), s, tokens)
    try:
        yield running
    finally:
        for r in running.values():
            await r.channel.close()
        for gw in built:
            await gw.stop(0.5)


def reads(served_by: str) -> float:
    """gateway_investigation_reads_total of this process, for one server."""
    return REGISTRY.get_sample_value("gateway_investigation_reads_total", {"served_by": served_by}) or 0.0


async def created_at(pair: Pair, waybill_no: str) -> datetime:
    """When the primary recorded the parcel."""
    return (await fetch(pair.primary.dsn(), "SELECT created_at FROM shipments WHERE waybill_no = $1",
                        waybill_no))[0]["created_at"]


async def audits(pair: Pair, method: str) -> list[tuple[str, int]]:
    """The primary's audit records of one method, oldest first: (status, returned)."""
    rows = await fetch(pair.primary.dsn(), "SELECT status, returned FROM audit_records WHERE method = $1"
                       " AND case_no = $2 ORDER BY id", f"/courier.v1.Investigation/{method}", CASE)
    return [(r["status"], r["returned"]) for r in rows]


async def paused(pair: Pair) -> asyncpg.Connection:
    """Pauses the standby's replay (once the pause has taken effect); the connection resumes it."""
    standby = await asyncpg.connect(pair.standby.dsn())
    await standby.execute("SELECT pg_wal_replay_pause()")
    for _ in range(200):  # a pause requested takes effect at the next record
        if await standby.fetchval("SELECT pg_get_wal_replay_pause_state()") == "paused":
            return standby
        await asyncio.sleep(0.05)
    raise AssertionError("the standby's replay never paused")


async def test_searches_and_histories_are_served_by_the_standby_and_audited_on_the_primary(
        pair: Pair, gateways: dict[str, RunningGateway]) -> None:
    gw = gateways["replica"]
    parcel = await accepted(gw)
    written = await created_at(pair, parcel.waybill_no)
    await caught_up(pair)
    before = await audits(pair, "SearchShipments")
    found = await gw.investigation.SearchShipments(search(waybill_no=parcel.waybill_no), metadata=gw.md(INV))
    assert [s.waybill_no for s in found.shipments] == [parcel.waybill_no]
    assert found.from_replica  # pg_is_in_recovery() on the connection that read the rows
    assert written <= found.as_of.ToDatetime(UTC) <= datetime.now(UTC) + timedelta(seconds=1)
    history = await gw.investigation.GetShipmentHistory(
        investigation_pb2.GetShipmentHistoryRequest(case_no=CASE, waybill_no=parcel.waybill_no), metadata=gw.md(INV))
    assert history.shipment.waybill_no == parcel.waybill_no and history.from_replica
    assert history.as_of.ToDatetime(UTC) >= written
    # The read pool's connections are on the standby, none on the primary; the audit row is the primary's.
    standby_apps = await fetch(pair.standby.dsn(), "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                               REPLICA_APPLICATION)
    primary_apps = await fetch(pair.primary.dsn(), "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                               REPLICA_APPLICATION)
    assert standby_apps and not primary_apps
    assert (await audits(pair, "SearchShipments"))[len(before):] == [("OK", 1)]


async def test_a_paused_replay_answers_without_the_new_parcel_and_says_it_is_older(
        pair: Pair, gateways: dict[str, RunningGateway]) -> None:
    gw = gateways["replica"]
    standby = await paused(pair)
    try:
        parcel = await accepted(gw)
        written = await created_at(pair, parcel.waybill_no)
        await caught_up(pair, replayed=False)  # the WAL is on the standby, not yet replayed
        lagging = await gw.investigation.SearchShipments(search(waybill_no=parcel.waybill_no), metadata=gw.md(INV))
        assert list(lagging.shipments) == [] and lagging.from_replica
        assert lagging.as_of.ToDatetime(UTC) < written  # says it may lack what was written after as_of
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await gw.investigation.GetShipmentHistory(
                investigation_pb2.GetShipmentHistoryRequest(case_no=CASE, waybill_no=parcel.waybill_no),
                metadata=gw.md(INV))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # Both calls are on record on the primary while the standby stands still.
        assert (await audits(pair, "SearchShipments"))[-1] == ("OK", 0)
        assert (await audits(pair, "GetShipmentHistory"))[-1] == ("NOT_FOUND", 0)
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()
    await caught_up(pair)
    current = await gw.investigation.SearchShipments(search(waybill_no=parcel.waybill_no), metadata=gw.md(INV))
    assert [s.waybill_no for s in current.shipments] == [parcel.waybill_no] and current.from_replica
    assert current.as_of.ToDatetime(UTC) >= written


async def test_watched_leads_come_from_the_standby_once_it_replays_them(
        pair: Pair, gateways: dict[str, RunningGateway]) -> None:
    gw = gateways["replica"]
    await add_entry(gw, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    await caught_up(pair)
    watch = gw.investigation.WatchLeads(investigation_pb2.WatchLeadsRequest(case_no=CASE, kinds=["HELD"]),
                                        metadata=gw.md(INV))
    first = asyncio.ensure_future(watch.read())
    await asyncio.sleep(0.5)  # the watch is open, its position taken on the standby
    standby = await paused(pair)
    try:
        held = await accepted(gw, items=items("复刻 球鞋"))
        await asyncio.sleep(1.0)  # the primary has the lead and notified; the standby has not replayed it
        assert not first.done()
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()
    lead = await asyncio.wait_for(first, 10)
    assert lead.waybill_no == held.waybill_no and lead.kind == "HELD"
    watch.cancel()


async def test_without_a_replica_the_primary_answers(pair: Pair, gateways: dict[str, RunningGateway]) -> None:
    gw = gateways["primary"]
    parcel = await accepted(gw)
    found = await gw.investigation.SearchShipments(search(waybill_no=parcel.waybill_no), metadata=gw.md(INV))
    assert [s.waybill_no for s in found.shipments] == [parcel.waybill_no]  # at once: no lag on the primary
    assert not found.from_replica and found.as_of.ToDatetime(UTC) >= await created_at(pair, parcel.waybill_no)


async def test_a_standby_that_is_down_leaves_the_primary_to_answer_until_it_is_back(
        pair: Pair, gateways: dict[str, RunningGateway], caplog: pytest.LogCaptureFixture) -> None:
    from gateway.server import create_server

    caplog.set_level(logging.INFO, logger="gateway.storage.replica")

    gw = gateways["replica"]
    parcel = await accepted(gw)
    pair.standby.stop()
    late = None
    try:
        # A gateway started while its replica is down starts all the same.
        late = await create_server(gw.settings)
        await late.server.start()
        late_channel = grpc.aio.insecure_channel(f"127.0.0.1:{late.port}")
        callers = [gw, RunningGateway(late.port, late_channel, gw.settings, gw.tokens)]
        before = len(await audits(pair, "SearchShipments"))
        served = {k: reads(k) for k in ("fallback", "primary")}
        for caller in (*callers, gw):  # dead pooled connections, a refused connect, the replica resting
            found = await caller.investigation.SearchShipments(search(waybill_no=parcel.waybill_no),
                                                               metadata=caller.md(INV))
            assert [s.waybill_no for s in found.shipments] == [parcel.waybill_no] and not found.from_replica
        assert (await audits(pair, "SearchShipments"))[before:] == [("OK", 1)] * 3
        # Two reads the replica failed, one the primary served while the replica rested.
        assert (reads("fallback") - served["fallback"], reads("primary") - served["primary"]) == (2, 1)
        pair.standby.start()
        await caught_up(pair)
        await asyncio.sleep(RETRY_AFTER_S)  # the replica is tried again once its rest is over
        for caller in callers:
            back = await caller.investigation.SearchShipments(search(waybill_no=parcel.waybill_no),
                                                              metadata=caller.md(INV))
            assert [s.waybill_no for s in back.shipments] == [parcel.waybill_no] and back.from_replica
        await late_channel.close()
        said = [r.getMessage() for r in caplog.records if r.name == "gateway.storage.replica"]
        # Once per gateway and outage, not once per call: the late one also said so at its start.
        assert sum("the replica is unreachable" in m for m in said) == 2
        assert sum("cannot reach the replica at start" in m for m in said) == 1
        assert sum("the replica answers again" in m for m in said) == 2
    finally:
        if late is not None:
            await late.stop(0.5)
        if not (pair.standby.data_dir / "postmaster.pid").exists():
            pair.standby.start()


async def test_doctor_checks_the_replica_is_a_streaming_standby_of_the_primary(pair: Pair) -> None:
    from gateway.commands.doctor import check_replica

    base = Settings(database_url=pair.primary.dsn(), db_connect_timeout_s=2.0)
    primary = await asyncpg.connect(pair.primary.dsn())
    try:
        await caught_up(pair)
        good = await check_replica(replace(base, database_replica_url=pair.standby.dsn()), primary)
        assert good.status == "ok" and "a standby, streaming" in good.detail
        # The primary itself named as the replica (replace() skips the settings' own refusal of the same URL).
        itself = await check_replica(replace(base, database_replica_url=pair.primary.dsn() + "&application_name=x"),
                                     primary)
        assert itself.status == "fail" and "is not a standby" in itself.detail
        unset = await check_replica(base, primary)
        assert unset.status == "ok" and "not set" in unset.detail
        gone = await check_replica(replace(base, database_replica_url="postgresql://courier@127.0.0.1:1/courier"),
                                   primary)
        assert gone.status == "fail" and "DATABASE_REPLICA_URL" in gone.fix
    finally:
        await primary.close()
