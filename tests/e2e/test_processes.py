"""GATEWAY_PROCESSES=2: two whole gateways on one port, each with its own live blocklist, under one parent."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from courier.v1 import acceptance_pb2, blocklist_pb2, blocklist_pb2_grpc, common_pb2
from gateway.security.sealing import generate_key
from gateway.storage.cluster import free_port
from tests.conftest import REPO, make_tokens
from tests.e2e.processes import wait_for_line

pytestmark = pytest.mark.slow
CHANNELS = 16  # new connections; all 16 landing on one of two workers would be a 1 in 32768 chance
# Channels in one process share their connections unless each keeps its own subchannels.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@dataclass
class Supervised:
    """A `python -m gateway serve` parent, its stdout seen so far, and the port it printed."""

    proc: asyncio.subprocess.Process
    port: int
    seen: list[str]

    def workers(self) -> list[int]:
        """The parent's child processes right now."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return sorted(int(pid) for pid in children)


def _env(dsn: str, tmp: Path, **more: str) -> dict[str, str]:
    key = lambda: base64.b64encode(generate_key()).decode()  # noqa: E731
    return {**os.environ, "DATABASE_URL": dsn, "GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_PROCESSES": "2",
            "GATEWAY_DATA_KEY": key(), "GATEWAY_INDEX_KEY": key(), "BLOB_STORE_DIR": str(tmp / "blobs"),
            "SHUTDOWN_GRACE_S": "2", "LOG_FORMAT": "text", "BLOCKLIST_POLL_S": "30", **more}


@asynccontextmanager
async def supervised(env: dict[str, str]) -> AsyncIterator[Supervised]:
    """The parent started with env, once it printed that it listens; SIGKILLed afterwards if still running."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        line = await wait_for_line(proc.stdout, "gateway listening on", seen, timeout_s=90)
        yield Supervised(proc, int(line.rsplit(":", 1)[1]), seen)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _server_sockets(pid: int, port: int) -> int:
    """How many established connections to port the process holds (its accepted sockets)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    rows = [row for table in ("tcp", "tcp6") for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]]
    for row in rows:  # gRPC may accept on an IPv6 socket (the address v4-mapped)
        cols = row.split()
        if int(cols[1].split(":")[1], 16) == port and cols[3] == "01" and cols[9] in inodes:
            count += 1
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return bool(stat) and stat.split()[2] != "Z"


async def _gone(pids: list[int], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        await asyncio.sleep(0.1)
    return False


KEYWORD = blocklist_pb2.AddEntryRequest(
    kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="高仿", action=blocklist_pb2.ENTRY_ACTION_REFUSE,
    source=blocklist_pb2.EntrySource(agency="上海市市场监督管理局", case_no="沪市监案〔2024〕7号"))
SCREEN = blocklist_pb2.ScreenRequest(sender_name="王小明", items=[
    acceptance_pb2.Item(description="高仿 运动鞋", quantity=1, declared_value_fen=9900)])


async def _screen_until_hit(stub: blocklist_pb2_grpc.BlocklistStub, md: tuple[tuple[str, str], ...]) -> bool:
    # The process that took AddEntry has it at once; the other within a NOTIFY's round trip (the poll is 30 s).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answer = await stub.Screen(SCREEN, metadata=md)
        if answer.outcome == common_pb2.SCREENING_OUTCOME_REFUSE:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_two_processes_share_a_port_each_sees_a_new_entry_and_stop_together(
        db_dsn: str, tmp_path: Path) -> None:
    tokens = await make_tokens(db_dsn)
    md = (("authorization", f"Bearer {tokens['reviewer']}"),)
    async with supervised(_env(db_dsn, tmp_path)) as gw:
        assert sum("gateway listening on" in line for line in gw.seen) == 1
        workers = gw.workers()
        assert len(workers) == 2 and gw.proc.pid not in workers
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}", options=OWN_CONNECTION) for _ in range(CHANNELS)]
        try:
            first = blocklist_pb2_grpc.BlocklistStub(channels[0])
            await first.AddEntry(KEYWORD, metadata=md)
            hits = [await _screen_until_hit(blocklist_pb2_grpc.BlocklistStub(c), md) for c in channels]
            per_worker = {pid: _server_sockets(pid, gw.port) for pid in workers}
            assert all(hits), hits
            assert sum(per_worker.values()) == CHANNELS and all(per_worker.values()), per_worker
        finally:
            for channel in channels:
                await channel.close()
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gw.proc.wait(), 30) == 0
        assert await _gone(workers)


async def test_a_killed_worker_is_restarted_and_serves(db_dsn: str, tmp_path: Path) -> None:
    tokens = await make_tokens(db_dsn)
    md = (("authorization", f"Bearer {tokens['reviewer']}"),)
    async with supervised(_env(db_dsn, tmp_path)) as gw:
        before = gw.workers()
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = gw.workers()
            if len(now) == 2 and before[0] not in now:
                break
            await asyncio.sleep(0.2)
        assert len(now) == 2 and before[0] not in now and before[1] in now, (before, now)
        replaced = next(pid for pid in now if pid not in before)
        served = 0
        deadline = time.monotonic() + 60
        while not served and time.monotonic() < deadline:  # the new process takes a few seconds to import and build
            channels = [grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}", options=OWN_CONNECTION)
                        for _ in range(CHANNELS)]
            try:
                for c in channels:  # every new connection is answered, by whichever process took it
                    await blocklist_pb2_grpc.BlocklistStub(c).Screen(SCREEN, metadata=md, timeout=10)
                served = _server_sockets(replaced, gw.port)
            finally:
                for channel in channels:
                    await channel.close()
        assert served > 0


async def test_the_parent_killed_takes_its_workers_with_it(db_dsn: str, tmp_path: Path) -> None:
    async with supervised(_env(db_dsn, tmp_path)) as gw:
        workers = gw.workers()
        gw.proc.kill()
        await gw.proc.wait()
        assert await _gone(workers), "a worker outlived its parent"


async def test_a_worker_that_cannot_start_stops_everything_with_exit_2_once(db_dsn: str, tmp_path: Path) -> None:
    metrics = free_port()
    with socket.socket() as taken:  # METRICS_PORT + 1, process 1's, is taken: that worker exits 2
        taken.bind(("127.0.0.1", metrics + 1))
        taken.listen()
        env = _env(db_dsn, tmp_path, METRICS_PORT=str(metrics), GATEWAY_LISTEN=f"127.0.0.1:{free_port()}")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 2, (out, err)
    assert b"gateway listening on" not in out
    assert err.count(b"METRICS_PORT") >= 1 and b"restarting" not in err, err


async def test_a_taken_port_is_exit_2_before_any_worker_starts(db_dsn: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(db_dsn, tmp_path, GATEWAY_LISTEN=f"127.0.0.1:{port}")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines()[-1].startswith(f"gateway: bad setting: GATEWAY_LISTEN: cannot listen "
                                                             f"on 127.0.0.1:{port}")


async def test_workers_that_fail_at_start_stop_everything_with_exit_1_not_a_restart_loop(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: each worker's pool cannot connect
    env = _env(f"postgresql://courier@127.0.0.1:{closed}/courier", tmp_path, DB_CONNECT_TIMEOUT_S="1",
               GATEWAY_LISTEN=f"127.0.0.1:{free_port()}")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 1, err
    assert b"gateway listening on" not in out and b"before serving: stopping every process" in err
    assert b"restarting" not in err
