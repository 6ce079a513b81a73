"""`python -m gateway health`, the image's HEALTHCHECK: a real gateway answers SERVING (exit 0); a closed port,
a port that never answers, an unknown service and a gateway shutting down all exit 1 within the timeout."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from dataclasses import replace

from gateway.commands.health import probe_target
from gateway.settings import Settings
from tests.conftest import REPO, RunningGateway
from tests.e2e import test_tls
from tests.e2e.test_tls import SERVER_NAME, Pki, serving

pki = test_tls.pki  # the TLS tests' throwaway CA and gateway certificate, as a fixture of this module too


async def _health(*args: str, module: str = "gateway", **env: str) -> tuple[int, str, str, float]:
    base = {k: v for k, v in os.environ.items() if k != "GATEWAY_LISTEN"}
    argv = ("-m", "gateway", "health") if module == "gateway" else ("-m", module)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(sys.executable, *argv, *args, cwd=REPO, env={**base, **env},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), time.monotonic() - started


async def test_a_serving_gateway_exits_0_and_says_serving(gateway: RunningGateway) -> None:
    target = f"127.0.0.1:{gateway.port}"
    code, out, err, _ = await _health("--target", target)
    assert code == 0, out + err
    assert out.strip() == f"{target} SERVING"


async def test_the_default_target_is_gateway_listen_on_loopback(gateway: RunningGateway) -> None:
    # What the HEALTHCHECK runs inside the container: no --target, GATEWAY_LISTEN on the wildcard address.
    code, out, err, _ = await _health(module="gateway.commands.health", GATEWAY_LISTEN=f"0.0.0.0:{gateway.port}")
    assert code == 0, out + err
    assert out.strip() == f"127.0.0.1:{gateway.port} SERVING"


async def test_each_service_of_the_gateway_is_serving_and_an_unknown_one_is_not(gateway: RunningGateway) -> None:
    target = f"127.0.0.1:{gateway.port}"
    code, out, err, _ = await _health("--target", target, "--service", "courier.v1.Acceptance")
    assert code == 0 and "SERVING" in out, out + err
    code, out, err, _ = await _health("--target", target, "--service", "courier.v1.NoSuchService")
    assert code == 1, out + err
    assert "NOT_FOUND" in err and out == ""


async def test_a_closed_port_exits_1_naming_the_target() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        code, out, err, elapsed = await _health("--target", f"127.0.0.1:{port}", "--timeout", "1")
    assert code == 1, out + err
    assert f"127.0.0.1:{port}" in err and "UNAVAILABLE" in err
    assert elapsed < 10


async def test_a_port_that_never_answers_exits_1_after_the_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts the connection, never speaks HTTP/2
        code, out, err, elapsed = await _health("--target", f"127.0.0.1:{s.getsockname()[1]}", "--timeout", "0.5")
    assert code == 1, out + err
    assert "DEADLINE_EXCEEDED" in err
    assert elapsed < 10


async def test_a_gateway_entering_graceful_shutdown_is_not_serving(settings: Settings,
                                                                    authority_simulator: object) -> None:
    from gateway.server import create_server

    built = await create_server(replace(settings, identity_authority_url=authority_simulator.url))  # type: ignore[attr-defined]
    await built.server.start()
    try:
        target = f"127.0.0.1:{built.port}"
        assert (await _health("--target", target))[0] == 0
        await built.health.enter_graceful_shutdown()  # what SIGTERM does first
        code, out, err, _ = await _health("--target", target)
        assert code == 1, out + err
        assert err.strip() == f"{target} NOT_SERVING"
    finally:
        await built.stop(0.5)


def test_probe_target_dials_loopback_for_a_wildcard_listen_address() -> None:
    assert probe_target("", "0.0.0.0:50051") == "127.0.0.1:50051"
    assert probe_target("", "[::]:7000") == "[::1]:7000"
    assert probe_target("", "10.0.0.5:50051") == "10.0.0.5:50051"
    assert probe_target("gw:1", "0.0.0.0:50051") == "gw:1"
    assert probe_target("", "") == "127.0.0.1:50051"


async def test_a_tls_gateway_is_asked_over_tls_with_the_client_variables(
        settings: Settings, authority_simulator: object, pki: Pki) -> None:
    async with serving(settings, authority_simulator, pki, mutual=False) as gw:
        code, out, err, _ = await _health("--target", gw.target, "--timeout", "2")
        assert code == 1, "a plaintext probe of a TLS gateway must fail"
        code, out, err, _ = await _health("--target", f"localhost:{gw.port}", "--timeout", "2",
                                          GATEWAY_TLS_CA=str(pki.ca.cert_file),
                                          GATEWAY_TLS_SERVER_NAME=SERVER_NAME)
        assert code == 0, out + err
        assert out.strip() == f"localhost:{gw.port} SERVING"
        code, out, err, _ = await _health("--target", gw.target, GATEWAY_TLS_CA=str(pki.folder / "missing.pem"))
        assert code == 2 and "GATEWAY_TLS_CA" in err, out + err
