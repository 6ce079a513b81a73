"""The commands as a new user runs them: make run's settings, the demo, tokens, the sample import, a busy port."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from pathlib import Path

import asyncpg
import grpc
import pytest

from courier.v1 import common_pb2, custody_pb2
from gateway.core.model import Role
from gateway.storage.cluster import free_port
from tests.conftest import REPO, b64key
from tests.e2e.processes import wait_for_line
from tests.e2e.requests import move
from tests.e2e.test_screening import accept, items

SAMPLE = REPO / "gateway" / "data" / "sample_blocklist.csv"


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GATEWAY_LISTEN", "METRICS_PORT")}
    return {**env, "COLUMNS": "120", **settings}


async def _run(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_on_a_busy_port_says_so_in_one_line_with_exit_2(db_dsn: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(DATABASE_URL=db_dsn, GATEWAY_LISTEN=f"127.0.0.1:{port}", GATEWAY_DATA_KEY=b64key(),
                   GATEWAY_INDEX_KEY=b64key())
        code, out, err = await _run("serve", cwd=tmp_path, env=env)
    assert code == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "GATEWAY_LISTEN" in lines[0] and str(port) in lines[0], err
    assert "Traceback" not in err


@pytest.mark.slow
async def test_make_run_honours_the_settings_and_the_other_commands_find_it(db_dsn: str, tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    env = _env(DATABASE_URL=db_dsn, GATEWAY_LISTEN=f"127.0.0.1:{port}", METRICS_PORT=str(metrics),
               SENDER_REF_TTL_S="600")
    dev = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "dev", cwd=tmp_path, env=env,
                                               stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    seen: list[str] = []
    try:
        assert dev.stdout is not None
        assert f"127.0.0.1:{port}" in await wait_for_line(dev.stdout, "gateway listening on", seen)
        assert str(metrics) in await wait_for_line(dev.stdout, "metrics on", seen)
        assert f"GATEWAY_LISTEN='127.0.0.1:{port}'" in (tmp_path / ".var" / "env").read_text()
        plain = _env()  # no DATABASE_URL, no GATEWAY_LISTEN: what a user's second terminal has
        code, out, err = await _run("demo", cwd=tmp_path, env=plain)
        assert code == 0 and "ACCEPT_DECISION_ACCEPTED" in out, out + err
        code, out, err = await _run("token", "create", "--name", "courier-7", "--role", "terminal",
                                    cwd=tmp_path, env=plain)
        assert code == 0 and out.strip().startswith("cgw_"), out + err
        code, out, err = await _run("blocklist", "import", str(SAMPLE), cwd=tmp_path, env=plain)
        assert code == 0 and "rejected 0" in out, out + err
        # The sample lists nobody the demo sends as or to: the demo still goes through.
        code, out, err = await _run("demo", cwd=tmp_path, env=plain)
        assert code == 0 and "PARCEL_STATE_DISPATCHED" in out, out + err
    finally:
        dev.send_signal(signal.SIGINT)
        await asyncio.wait_for(dev.wait(), timeout=30)
    assert not (tmp_path / ".var" / "env").exists()  # nothing stale points at a stopped gateway


async def test_the_demo_says_which_address_it_called(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = f"127.0.0.1:{gateway.port}"
    code, out, err = await _run("demo", "--token", "cgw_not-this-gateways", cwd=tmp_path,
                                env=_env(GATEWAY_LISTEN=target))
    assert code == 1 and "UNAUTHENTICATED" in out and target in out, out + err
    help_code, help_text, _ = await _run("demo", "--help", cwd=tmp_path, env=_env())
    assert help_code == 0 and "--target" in help_text and "GATEWAY_LISTEN" in help_text


async def test_reflection_v1_and_v1alpha_both_answer(gateway) -> None:  # type: ignore[no-untyped-def]
    from grpc_reflection.v1alpha import reflection_pb2

    for version in ("v1", "v1alpha"):
        call = gateway.channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        answers = [a async for a in call(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="courier.v1.Acceptance"),
        ]), timeout=10)]
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"courier.v1.Acceptance", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection", "grpc.health.v1.Health"} <= names, version
        assert all(not a.HasField("error_response") for a in answers), answers
        assert answers[1].file_descriptor_response.file_descriptor_proto


async def test_a_command_line_import_re_screens_parcels_in_custody(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gateway.commands import blocklist as command

    stored = await accept(gateway, items=items("复刻运动鞋 两双"))
    await gateway.custody.StoreParcel(move(stored.waybill_no), metadata=gateway.md(Role.TERMINAL))
    listing = tmp_path / "late.csv"
    listing.write_text("kind,value,action,agency\nGOODS_KEYWORD,复刻,HOLD,上海市市场监督管理局\n", encoding="utf-8")
    s = gateway.settings
    environ = {"DATABASE_URL": s.database_url, "GATEWAY_DATA_KEY": base64.b64encode(s.data_key).decode(),
               "GATEWAY_INDEX_KEY": base64.b64encode(s.index_key).decode()}
    assert await asyncio.to_thread(command.run, listing, environ=environ) == 0
    request = custody_pb2.GetParcelRequest(waybill_no=stored.waybill_no)
    for _ in range(60):
        view = await gateway.custody.GetParcel(request, metadata=gateway.md(Role.TERMINAL))
        if view.state == common_pb2.PARCEL_STATE_HELD:
            break
        await asyncio.sleep(0.05)
    assert view.state == common_pb2.PARCEL_STATE_HELD and "复刻" in view.hold_reason
    conn = await asyncpg.connect(s.database_url)
    try:
        leads = await conn.fetch("SELECT origin FROM leads WHERE waybill_no = $1", stored.waybill_no)
        progress = await conn.fetchval("SELECT version FROM rescreen_progress")
        version = await conn.fetchval("SELECT version FROM blocklist_version")
    finally:
        await conn.close()
    assert [r["origin"] for r in leads] == ["RESCREEN"] and progress == version
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.custody.DispatchParcel(move(stored.waybill_no), metadata=gateway.md(Role.TERMINAL))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
