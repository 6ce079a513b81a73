"""The pooled HTTP/1.1 client against real servers on loopback: framing, keep-alive, failures, TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.adapters.http1 import (
    ConnectFailed,
    ConnectionDropped,
    Http1Pool,
    ProtocolViolation,
    ReadTimedOut,
    Response,
    _Parser,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request with a Content-Length body; returns its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return await reader.readexactly(length)


class Server:
    """A loopback server whose handler(reader, writer, n) answers the n-th request; False closes."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler, self.ssl_context = handler, ssl_context
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                self.requests += 1
                if not await self.handler(reader, writer, self.requests):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler, ssl_context)
    server._server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server
    finally:
        server._server.close()
        for task in server._tasks:
            task.cancel()
        await asyncio.gather(*server._tasks, return_exceptions=True)


def ok(body: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *headers]) + b"\r\n\r\n" + body


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
    body = await read_request(reader)
    writer.write(ok(b"%d:" % n + body))
    return True


async def test_keep_alive_reuses_one_connection_and_concurrency_opens_more() -> None:
    async with serving(echo) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}", max_connections=4)
        for i in range(5):
            assert await pool.request("POST", "/x", b"hello") == Response(200, b"%d:hello" % (i + 1))
        assert server.connections == 1 and pool.connections_opened == 1
        answers = await asyncio.gather(*(pool.request("POST", "/x", b"%d" % i) for i in range(20)))
        assert sorted(a.body.split(b":")[1] for a in answers) == sorted(b"%d" % i for i in range(20))
        assert 1 < server.connections <= 4  # bounded by max_connections
        await pool.aclose()


async def test_server_closing_a_kept_connection_is_noticed_and_a_new_one_opened() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        writer.write(ok(b"x"))
        await writer.drain()
        return False  # then close the kept connection, as an idle timeout on the server does

    async with serving(once) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        assert (await pool.request("GET", "/")).status == 200
        await asyncio.sleep(0.05)  # the FIN arrives
        assert (await pool.request("GET", "/")).status == 200
        assert pool.connections_opened == 2 and server.connections == 2
        await pool.aclose()


async def test_connection_close_in_the_response_is_not_reused() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        writer.write(ok(b"bye", b"Connection: close"))
        return True  # the server would go on; the client must not

    async with serving(closing) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        for _ in range(3):
            assert (await pool.request("GET", "/")).body == b"bye"
        assert pool.connections_opened == 3
        await pool.aclose()


async def test_chunked_and_connection_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"{\"a\":", b" 1", b"}"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            return True
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")  # no length: the body ends with the connection
        return False

    async with serving(chunked) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        assert await pool.request("GET", "/") == Response(200, b'{"a": 1}')
        assert await pool.request("GET", "/") == Response(200, b"until the end")
        assert pool.connections_opened == 1
        await pool.aclose()


async def test_interim_100_continue_is_skipped() -> None:
    async def interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"))
        return True

    async with serving(interim) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        assert await pool.request("POST", "/", b"x") == Response(200, b"final")
        await pool.aclose()


async def test_read_timeout_and_the_timed_out_connection_is_not_reused() -> None:
    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        if n == 1:
            await asyncio.sleep(1.0)
        writer.write(ok(b"late" if n == 1 else b"on time"))
        return True

    async with serving(slow_first) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}", read_timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(ReadTimedOut):
            await pool.request("GET", "/")
        assert time.monotonic() - started < 0.6
        # The late answer to the first request must never be read as the answer to the second.
        assert (await pool.request("GET", "/")).body == b"on time"
        assert pool.connections_opened == 2
        await pool.aclose()


async def test_cancelled_exchange_closes_its_connection() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        await asyncio.sleep(0.3 if n == 1 else 0)
        writer.write(ok(b"%d" % n))
        return True

    async with serving(slow) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await pool.request("GET", "/")
        assert (await pool.request("GET", "/")).body == b"2"
        assert pool.connections_opened == 2
        await pool.aclose()


async def test_dropped_before_answer_and_cut_short_are_dropped_connections() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        if n == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        return False

    async with serving(drop) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        with pytest.raises(ConnectionDropped):
            await pool.request("GET", "/")
        with pytest.raises(ConnectionDropped):
            await pool.request("GET", "/")
        await pool.aclose()


async def test_garbage_and_oversized_answers_are_protocol_violations() -> None:
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n" if n == 1 else ok(b"x" * (2 * 1024 * 1024)))
        return False

    async with serving(bad) as server:
        pool = Http1Pool(f"http://127.0.0.1:{server.port}")
        for _ in range(2):
            with pytest.raises(ProtocolViolation):
                await pool.request("GET", "/")
        await pool.aclose()


async def test_refused_connection_and_closed_pool() -> None:
    async with serving(echo) as server:
        port = server.port
    pool = Http1Pool(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "/")
    await pool.aclose()
    with pytest.raises(Exception, match="closed"):
        await pool.request("GET", "/")


def test_only_http_urls_with_a_host() -> None:
    for url in ("ftp://host/", "http:///path", "authority.example"):
        with pytest.raises(ValueError, match="http"):
            Http1Pool(url)


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_verifies_the_server_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with serving(echo, server_ctx) as server:
        trusting = Http1Pool(f"https://localhost:{server.port}", ssl_context=ssl.create_default_context(cafile=cert))
        assert (await trusting.request("POST", "/", b"sealed")).body == b"1:sealed"
        assert (await trusting.request("POST", "/", b"again")).body == b"2:again"
        await trusting.aclose()
        default = Http1Pool(f"https://localhost:{server.port}")  # the system's CAs do not know this certificate
        with pytest.raises(ConnectFailed):
            await default.request("GET", "/")
        await default.aclose()


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n")


@pytest.mark.parametrize("split", range(1, len(CHUNKED)))
def test_parser_reads_a_response_split_anywhere(split: int) -> None:
    parser = _Parser(no_body=False)
    done = parser.feed(CHUNKED[:split])
    done = parser.feed(CHUNKED[split:]) if not done else done
    assert done and parser.status == 200 and b"".join(parser.chunks) == b"Wikipedia" and parser.keep_alive


@pytest.mark.parametrize(("head", "keep_alive"), [
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
])
def test_parser_decides_whether_the_connection_may_be_reused(head: bytes, keep_alive: bool) -> None:
    parser = _Parser(no_body=False)
    assert parser.feed(head) and parser.keep_alive is keep_alive
    assert b"".join(parser.chunks) in (b"ok", b"")


@pytest.mark.parametrize("bad", [
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded: value\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
])
def test_parser_refuses_what_is_not_http(bad: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        _Parser(no_body=False).feed(bad)


def test_works_on_uvloop() -> None:
    # The gateway runs on uvloop, whose transports are not asyncio's own classes.
    import uvloop

    async def exchange() -> tuple[Response, Response, int]:
        async with serving(echo) as server:
            pool = Http1Pool(f"http://127.0.0.1:{server.port}")
            first, second = await pool.request("POST", "/", b"a"), await pool.request("POST", "/", b"b")
            await pool.aclose()
            return first, second, server.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(exchange()) == (Response(200, b"1:a"), Response(200, b"2:b"), 1)
