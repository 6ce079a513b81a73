"""The gateway as a process: graceful SIGTERM with a call in flight, and the documented demo client."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request

import grpc
import pytest

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc
from gateway.simulators.identity_authority import start_simulator
from gateway.storage.cluster import free_port
from tests.conftest import FIXTURES, REPO, b64key, make_tokens
from tests.e2e.requests import verify_request


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


async def _start_gateway(env: dict[str, str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert b"gateway listening on" in line, line
    if "METRICS_PORT" in env:
        assert b"metrics on" in await asyncio.wait_for(proc.stdout.readline(), timeout=10)
    return proc


@pytest.mark.slow
async def test_sigterm_lets_the_call_in_flight_finish(db_dsn: str) -> None:
    # The authority answers slowly, so the call is still in flight when SIGTERM arrives.
    sim = await start_simulator(FIXTURES / "identity" / "authority_registry.json", api_key="k", latency_ms=1200)
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
           "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key(), "IDENTITY_AUTHORITY_URL": sim.url,
           "IDENTITY_AUTHORITY_KEY": "k", "IDENTITY_AUTHORITY_TIMEOUT_S": "5", "SHUTDOWN_GRACE_S": "10",
           "METRICS_PORT": str(metrics_port)}
    tokens = await make_tokens(db_dsn)
    proc = await _start_gateway(env)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = acceptance_pb2_grpc.AcceptanceStub(channel)
            metadata = (("authorization", f"Bearer {tokens['terminal']}"),)
            await stub.VerifySender(verify_request(), metadata=metadata)
            metrics = await asyncio.to_thread(_read, f"http://127.0.0.1:{metrics_port}/metrics")
            call = asyncio.ensure_future(stub.VerifySender(verify_request(), metadata=metadata))
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            answer = await call
            assert answer.verdict == acceptance_pb2.VERDICT_VERIFIED
            assert 'method="/courier.v1.Acceptance/VerifySender"' in metrics
            assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.VerifySender(verify_request(), metadata=metadata, timeout=2)
            assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.close()


async def test_demo_client_runs_verify_accept_store_dispatch(gateway) -> None:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--target", f"127.0.0.1:{gateway.port}",
        "--token", gateway.tokens["terminal"], cwd=REPO, env={**os.environ, "COLUMNS": "120"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    for expected in ("VerifySender", "VERDICT_VERIFIED", "AcceptParcel", "ACCEPT_DECISION_ACCEPTED",
                     "StoreParcel", "PARCEL_STATE_STORED", "DispatchParcel", "PARCEL_STATE_DISPATCHED",
                     "StoreParcel again (not allowed): FAILED_PRECONDITION"):
        assert expected in text, f"{expected} missing from the demo's output"
