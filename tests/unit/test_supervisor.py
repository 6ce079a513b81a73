"""GATEWAY_PROCESSES' defaults: one process per usable core, under a cgroup's CPU quota; port 0 shared."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from gateway.settings import load_settings
from gateway.supervisor import process_count, reserve_port, usable_cores
from tests.conftest import b64key

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("max 100000\n", AFFINITY), ("50000 100000\n", 1), ("100000 100000\n", 1), ("150000 100000\n", min(2, AFFINITY)),
    ("6400000 100000\n", AFFINITY), (None, AFFINITY), ("garbage\n", AFFINITY)])
def test_the_default_is_the_usable_cores_under_the_quota(tmp_path: Path, cpu_max: str | None, expected: int) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    assert usable_cores(path) == expected


def test_gateway_processes_wins_over_the_default_and_is_validated() -> None:
    env = {"DATABASE_URL": "postgresql://unused", "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key()}
    assert process_count(load_settings({**env, "GATEWAY_PROCESSES": "3"})) == 3
    assert process_count(load_settings(env)) == usable_cores()
    for bad in ("0", "257", "two"):
        with pytest.raises(ValueError, match="^GATEWAY_PROCESSES: "):
            load_settings({**env, "GATEWAY_PROCESSES": bad})
    with pytest.raises(ValueError, match="^GATEWAY_PROCESS_INDEX: 2 is not below GATEWAY_PROCESSES"):
        load_settings({**env, "GATEWAY_PROCESSES": "2", "GATEWAY_PROCESS_INDEX": "2"})


def test_port_0_becomes_one_free_port_that_the_processes_can_share_and_nobody_else_takes() -> None:
    listen, held = reserve_port("127.0.0.1:0")
    assert held is not None
    try:
        port = int(listen.rsplit(":", 1)[1])
        assert port > 0 and listen == f"127.0.0.1:{port}"
        with socket.socket() as worker:  # as gRPC binds with grpc.so_reuseport=1
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        held.close()
    assert reserve_port("127.0.0.1:50051") == ("127.0.0.1:50051", None)
