"""The identity-authority adapter against the simulator, over a real TCP socket."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.adapters.http1 import Http1Pool
from gateway.adapters.identity_authority import VERIFY_PATH, HttpIdentityAuthority
from gateway.core.authority import AuthorityResult, IdentityAuthority
from gateway.simulators.identity_authority import AuthoritySimulator, start_simulator

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "identity"
REGISTRY = FIXTURES / "authority_registry.json"

ZHANG = ("RESIDENT_ID", "110101199003071233", "张伟")  # has reference photo face_a.png
LI = ("RESIDENT_ID", "310104198511124567", "李秀英")
WANG_REVOKED = ("RESIDENT_ID", "510104200109152348", "王芳")
AYGUL = ("RESIDENT_ID", "110108199502280018", "阿依古丽·买买提")
UNKNOWN_NUMBER = "110101199003071241"  # valid check character, not on record


@pytest.fixture(scope="module")
def face_a_png() -> bytes:
    return (FIXTURES / "face_a.png").read_bytes()


@pytest.fixture(scope="module")
def face_b_png() -> bytes:
    return (FIXTURES / "face_b.png").read_bytes()


@pytest.fixture(scope="module")
def face_a_jpeg(face_a_png: bytes) -> bytes:
    image = cv2.imdecode(np.frombuffer(face_a_png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return encoded.tobytes()


@pytest.fixture
async def simulator() -> AsyncIterator[AuthoritySimulator]:
    sim = await start_simulator(REGISTRY)
    yield sim
    await sim.close()


@pytest.fixture
async def authority(simulator: AuthoritySimulator) -> AsyncIterator[HttpIdentityAuthority]:
    adapter = HttpIdentityAuthority(simulator.url, "sim-key", timeout_s=2.0)
    yield adapter
    await adapter.aclose()


def closed_port() -> int:
    """A port on loopback that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_adapter_satisfies_the_port(authority: HttpIdentityAuthority) -> None:
    assert isinstance(authority, IdentityAuthority)


async def test_match_by_name(authority: HttpIdentityAuthority, simulator: AuthoritySimulator) -> None:
    answer = await authority.check(*ZHANG)
    assert answer.result is AuthorityResult.MATCH
    assert re.fullmatch(r"SIM-[0-9a-f-]{36}", answer.reference)
    assert answer.similarity is None
    assert simulator.requests_served == 1


@pytest.mark.parametrize(
    ("document", "spelled"),
    [
        (AYGUL, "阿依古丽 ・ 买买提"),
        (AYGUL, "阿依古丽\u3000买买提"),
        (AYGUL, "阿依古丽\uff65买买提"),  # halfwidth middle dot: only NFKC makes it the usual one
        (LI, "李 秀 英"),
        (("PASSPORT", "e12345678", ""), "ｚｈａｎｇ　wei"),
    ],
)
async def test_name_ignores_width_case_space_and_middle_dot(
    authority: HttpIdentityAuthority, document: tuple[str, str, str], spelled: str
) -> None:
    answer = await authority.check(document[0], document[1], spelled)
    assert answer.result is AuthorityResult.MATCH


async def test_wrong_name_is_mismatch(authority: HttpIdentityAuthority) -> None:
    answer = await authority.check(LI[0], LI[1], "李秀")
    assert answer.result is AuthorityResult.MISMATCH
    assert LI[1] not in answer.detail and answer.reference.startswith("SIM-")


async def test_unknown_number_is_not_found(authority: HttpIdentityAuthority) -> None:
    answer = await authority.check("RESIDENT_ID", UNKNOWN_NUMBER, "张伟")
    assert answer.result is AuthorityResult.NOT_FOUND


async def test_same_number_under_another_document_type_is_not_found(authority: HttpIdentityAuthority) -> None:
    answer = await authority.check("PASSPORT", ZHANG[1], ZHANG[2])
    assert answer.result is AuthorityResult.NOT_FOUND


async def test_revoked_document(authority: HttpIdentityAuthority) -> None:
    answer = await authority.check(*WANG_REVOKED)
    assert answer.result is AuthorityResult.REVOKED


async def test_other_face_is_photo_mismatch(authority: HttpIdentityAuthority, face_b_png: bytes) -> None:
    answer = await authority.check(*ZHANG, photo=face_b_png)
    assert answer.result is AuthorityResult.PHOTO_MISMATCH
    assert answer.similarity is not None and answer.similarity < 0.85


async def test_same_face_reencoded_as_jpeg_matches(
    authority: HttpIdentityAuthority, face_a_jpeg: bytes, face_a_png: bytes
) -> None:
    assert face_a_jpeg[:3] == b"\xff\xd8\xff" and face_a_jpeg != face_a_png
    answer = await authority.check(*ZHANG, photo=face_a_jpeg)
    assert answer.result is AuthorityResult.MATCH
    assert answer.similarity is not None and answer.similarity >= 0.85


async def test_undecodable_photo_is_unavailable_with_reason(authority: HttpIdentityAuthority) -> None:
    answer = await authority.check(*ZHANG, photo=b"not an image at all")
    assert answer.result is AuthorityResult.UNAVAILABLE
    assert "HTTP 400" in answer.detail and "decoded" in answer.detail


async def test_wrong_api_key_is_unavailable(simulator: AuthoritySimulator) -> None:
    async with HttpIdentityAuthority(simulator.url, "stolen-key") as adapter:
        answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE
    assert "credentials" in answer.detail and "401" in answer.detail


async def test_wrong_endpoint_404_is_unavailable_not_not_found(simulator: AuthoritySimulator) -> None:
    async with HttpIdentityAuthority(simulator.url + "/v0", "sim-key") as adapter:
        answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and "HTTP 404" in answer.detail


async def test_simulator_down_is_unavailable_within_timeout() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    async with HttpIdentityAuthority(url, "sim-key", timeout_s=1.0) as adapter:
        answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and "unreachable" in answer.detail
    assert time.monotonic() - started < 1.0


async def test_slow_authority_is_cut_off_at_timeout() -> None:
    sim = await start_simulator(REGISTRY, latency_ms=3000)
    try:
        started = time.monotonic()
        async with HttpIdentityAuthority(sim.url, "sim-key", timeout_s=0.3) as adapter:
            answer = await adapter.check(*ZHANG)
        elapsed = time.monotonic() - started
    finally:
        await sim.close()
    assert answer.result is AuthorityResult.UNAVAILABLE and "within 0.3 s" in answer.detail
    assert 0.25 < elapsed < 0.8


async def test_retry_rides_over_injected_503() -> None:
    sim = await start_simulator(REGISTRY, fail_every=2)
    try:
        async with HttpIdentityAuthority(sim.url, "sim-key", retries=1) as adapter:
            first = await adapter.check(*ZHANG)
            second = await adapter.check(*ZHANG)  # request 2 is refused, request 3 answers
    finally:
        await sim.close()
    assert first.result is second.result is AuthorityResult.MATCH
    assert sim.requests_served == 3


async def test_without_retries_injected_503_is_unavailable() -> None:
    sim = await start_simulator(REGISTRY, fail_every=1)
    try:
        async with HttpIdentityAuthority(sim.url, "sim-key", retries=0) as adapter:
            answer = await adapter.check(*ZHANG)
    finally:
        await sim.close()
    assert answer.result is AuthorityResult.UNAVAILABLE and "HTTP 503" in answer.detail
    assert sim.requests_served == 1


async def test_unavailable_number_exhausts_retries() -> None:
    sim = await start_simulator(REGISTRY, unavailable_numbers=[LI[1]])
    try:
        async with HttpIdentityAuthority(sim.url, "sim-key", retries=2) as adapter:
            down = await adapter.check(*LI)
            up = await adapter.check(*ZHANG)
    finally:
        await sim.close()
    assert down.result is AuthorityResult.UNAVAILABLE and "HTTP 503" in down.detail
    assert up.result is AuthorityResult.MATCH
    assert sim.requests_served == 4


async def test_connections_are_kept_alive_and_concurrency_is_safe(
    authority: HttpIdentityAuthority, simulator: AuthoritySimulator
) -> None:
    for _ in range(5):
        assert (await authority.check(*LI)).result is AuthorityResult.MATCH
    assert simulator.connections_accepted == 1
    answers = await asyncio.gather(*(authority.check(*doc) for doc in (LI, WANG_REVOKED) * 10))
    assert [a.result for a in answers] == [AuthorityResult.MATCH, AuthorityResult.REVOKED] * 10
    assert len({a.reference for a in answers}) == 20


async def test_logs_carry_reference_but_never_number_or_name(
    authority: HttpIdentityAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await authority.check(LI[0], LI[1], "王小明")
    await authority.check(*ZHANG, photo=b"garbage")
    assert answer.reference in caplog.text
    for secret in (LI[1], "王小明", ZHANG[1], ZHANG[2]):
        assert secret not in caplog.text


def canned(status: int, body: bytes, *headers: str) -> bytes:
    """One raw HTTP/1.1 response, as an authority (or something posing as one) might send it."""
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Length: {len(body)}", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


class CannedAuthority:
    """A real HTTP/1.1 server on loopback answering the n-th request with the n-th reply (the last repeats).

    A reply of None reads the request and then closes the connection without answering, as a server
    dropping a keep-alive connection does.
    """

    def __init__(self, *replies: bytes | None) -> None:
        self._replies = replies
        self.requests: list[str] = []  # request lines, in arrival order
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests.append(head.split(b"\r\n", 1)[0].decode())
                reply = self._replies[min(len(self.requests), len(self._replies)) - 1]
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()
            self._writers.discard(writer)


@asynccontextmanager
async def canned_authority(*replies: bytes | None) -> AsyncIterator[CannedAuthority]:
    server = CannedAuthority(*replies)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b'{"result": "PROBABLY"}',
        b'{"reference": "R1"}',
        b"[]",
        b'{"result": "MATCH", "similarity": 3.5}',
        b'{"result": "MATCH", "similarity": "high"}',
        b'{"result": "MATCH", "reference": 7}',
    ],
)
async def test_malformed_answers_are_unavailable(body: bytes) -> None:
    async with canned_authority(canned(200, body, "Content-Type: application/json")) as server:
        async with HttpIdentityAuthority(server.url, "k") as adapter:
            answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and "malformed" in answer.detail
    assert server.requests == [f"POST {VERIFY_PATH} HTTP/1.1"]


async def test_server_error_is_unavailable_and_not_retried() -> None:
    async with canned_authority(canned(500, b'{"detail": "boom"}', "Content-Type: application/json")) as server:
        async with HttpIdentityAuthority(server.url, "k", retries=3) as adapter:
            answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and answer.detail == "authority answered HTTP 500"
    assert len(server.requests) == 1


@pytest.mark.parametrize("retries", [0, 1])
async def test_dropped_connection_is_retried(retries: int) -> None:
    body = b'{"result": "MATCH", "reference": "R2", "similarity": null, "detail": ""}'
    async with canned_authority(None, canned(200, body, "Content-Type: application/json")) as server:
        async with HttpIdentityAuthority(server.url, "k", retries=retries) as adapter:
            answer = await adapter.check(*ZHANG)
    if retries:
        assert answer.result is AuthorityResult.MATCH and answer.reference == "R2"
    else:
        assert answer.result is AuthorityResult.UNAVAILABLE and "unreachable" in answer.detail
    assert len(server.requests) == retries + 1


async def test_redirect_is_not_followed(simulator: AuthoritySimulator) -> None:
    # Following it would send the number, name and photo wherever the Location header points.
    moved = canned(307, b"", f"Location: {simulator.url}{VERIFY_PATH}")
    async with canned_authority(moved) as server:
        async with HttpIdentityAuthority(server.url, "sim-key") as adapter:
            answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and "HTTP 307" in answer.detail
    assert simulator.requests_served == 0


async def test_ambient_proxy_is_ignored(simulator: AuthoritySimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async with canned_authority(canned(502, b"")) as proxy:
        for variable in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(variable, raising=False)
        for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(variable, proxy.url)
        async with HttpIdentityAuthority(simulator.url, "sim-key") as adapter:
            answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.MATCH
    assert proxy.requests == [] and simulator.requests_served == 1


async def test_check_after_aclose_is_unavailable(simulator: AuthoritySimulator) -> None:
    adapter = HttpIdentityAuthority(simulator.url, "sim-key")
    assert (await adapter.check(*ZHANG)).result is AuthorityResult.MATCH
    await adapter.aclose()
    answer = await adapter.check(*ZHANG)
    assert answer.result is AuthorityResult.UNAVAILABLE and "closed" in answer.detail
    assert simulator.requests_served == 1


async def test_echoed_number_and_name_are_masked_in_detail() -> None:
    body = f'{{"result": "MISMATCH", "reference": "R9", "detail": "{LI[1]} is not {LI[2]}"}}'.encode()
    async with canned_authority(canned(200, body, "Content-Type: application/json")) as server:
        async with HttpIdentityAuthority(server.url, "k") as adapter:
            answer = await adapter.check(*LI)
    assert answer.result is AuthorityResult.MISMATCH and answer.reference == "R9"
    assert answer.detail == "*** is not ***"


async def test_healthz(simulator: AuthoritySimulator) -> None:
    pool = Http1Pool(simulator.url)
    try:
        assert (await pool.request("GET", "/healthz")).status == 200
    finally:
        await pool.aclose()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_cli_serves_until_signalled(stop_signal: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.simulators.identity_authority",
        "--registry",
        str(REGISTRY),
        "--api-key",
        "cli-key",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        found = re.fullmatch(r"identity-authority simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert found, line
        async with HttpIdentityAuthority(found.group(1), "cli-key") as adapter:
            assert (await adapter.check(*ZHANG)).result is AuthorityResult.MATCH
        proc.send_signal(stop_signal)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert await proc.stdout.read() == b""
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
