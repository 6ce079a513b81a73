"""A small pooled HTTP/1.1 client for one origin: an asyncio protocol per connection, keep-alive.

The identity authority is asked once per VerifySender, so this client does only what that call needs:
one origin, requests with a full body, keep-alive connections reused most recently used first, a bound on
open connections, TLS for https URLs, and errors that say whether the server may have seen the request.
It never reads proxy settings from the environment and never follows redirects.  The response parser is
written here rather than taken from h11: h11's general state machine was 6% of a VerifySender's CPU, and a
client that sends one request at a time needs only the response side of RFC 9112 (status line, header
fields, Content-Length, chunked, or a body that ends with the connection).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterable
from typing import NamedTuple, cast
from urllib.parse import urlsplit

_MAX_BODY = 1024 * 1024  # an authority's answer is a few hundred bytes; more is not an answer
_MAX_HEAD = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?")
_TARGET = re.compile(r"/[!-~]*")


class HttpError(Exception):
    """The exchange failed before a whole response arrived."""


class ConnectFailed(HttpError):
    """No connection could be opened (refused, unreachable, TLS handshake failed): nothing was sent."""


class ConnectTimedOut(ConnectFailed):
    """Opening the connection took longer than the connect timeout: nothing was sent."""


class ConnectionDropped(HttpError):
    """The server closed or reset the connection before its response was complete."""


class ReadTimedOut(HttpError):
    """The response did not arrive within the read timeout."""


class ProtocolViolation(HttpError):
    """The server's bytes are not a valid HTTP/1.1 response, or its body is too large."""


class Response(NamedTuple):
    """A whole response: status and body (headers are not needed by any caller)."""

    status: int
    body: bytes


class _Parser:
    """Reads one response from the bytes fed to it: feed() says when it is whole."""

    __slots__ = ("buf", "mode", "remaining", "chunks", "size", "status", "keep_alive", "no_body")

    def __init__(self, no_body: bool) -> None:
        self.buf = bytearray()
        self.mode = "head"  # head, length, chunk-size, chunk-data, trailer, close, done
        self.remaining = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.status = 0
        self.keep_alive = True
        self.no_body = no_body  # the request was HEAD: no response has a body

    def feed(self, data: bytes) -> bool:
        """Take more bytes; True once the response is complete; raises ProtocolViolation."""
        self.buf += data
        while True:
            mode, buf = self.mode, self.buf
            if mode == "head":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ProtocolViolation(f"response head over {_MAX_HEAD} bytes")
                    return False
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._head(head)
            elif mode == "length":
                if len(buf) < self.remaining:
                    return False
                self._body(bytes(buf[: self.remaining]))
                del buf[: self.remaining]
                self.mode = "done"
            elif mode == "chunk-size":
                end = buf.find(b"\r\n")
                if end < 0:
                    return self._short(buf, 1024)
                match = _CHUNK_SIZE.fullmatch(buf, 0, end)
                if match is None:
                    raise ProtocolViolation("malformed chunk size")
                self.remaining = int(match.group(1), 16)  # before the del: the match reads the live buffer
                del buf[: end + 2]
                self.mode = "chunk-data" if self.remaining else "trailer"
            elif mode == "chunk-data":
                if len(buf) < self.remaining + 2:
                    return False
                if buf[self.remaining : self.remaining + 2] != b"\r\n":
                    raise ProtocolViolation("chunk not followed by CRLF")
                self._body(bytes(buf[: self.remaining]))
                del buf[: self.remaining + 2]
                self.mode = "chunk-size"
            elif mode == "trailer":  # trailer fields are read past, never used
                end = 0 if buf[:2] == b"\r\n" else buf.find(b"\r\n\r\n")
                if end < 0 or len(buf) < 2:
                    return self._short(buf, _MAX_HEAD)
                del buf[: end + (2 if end == 0 else 4)]
                self.mode = "done"
            elif mode == "close":
                self._body(bytes(buf))
                buf.clear()
                return False
            else:  # done: bytes past the response were never asked for, so the connection is not reused
                if buf:
                    self.keep_alive = False
                return True

    def feed_eof(self) -> bool:
        """The server closed: True if that completes the response (a body ending with the connection)."""
        if self.mode == "close":
            self.mode = "done"
            return True
        return self.mode == "done"

    @staticmethod
    def _short(buf: bytearray, limit: int) -> bool:
        if len(buf) > limit:
            raise ProtocolViolation("malformed chunked body")
        return False

    def _body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > _MAX_BODY:
            raise ProtocolViolation(f"response body over {_MAX_BODY} bytes")
        if data:
            self.chunks.append(data)

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise ProtocolViolation("not an HTTP/1.x status line")
        status = int(match.group(2))
        fields: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            # A name must be a token: this also refuses obsolete line folding (a line starting with a space).
            if not colon or _TOKEN.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
                raise ProtocolViolation("malformed header field")
            fields.setdefault(name.lower(), []).append(value.strip(b" \t"))
        if status < 200:
            if status == 101:
                raise ProtocolViolation("the server switched protocols")
            return  # an interim response (100 Continue, 103 Early Hints): the final one follows
        self.status = status
        connection = {t.strip().lower() for v in fields.get(b"connection", ()) for t in v.split(b",")}
        self.keep_alive = b"close" not in connection and (match.group(1) == b"1" or b"keep-alive" in connection)
        if self.no_body or status in (204, 304):
            self.mode = "done"
        elif b"transfer-encoding" in fields:
            codings = [t.strip().lower() for v in fields[b"transfer-encoding"] for t in v.split(b",")]
            if codings[-1] == b"chunked":
                self.mode = "chunk-size"
            else:
                self.mode, self.keep_alive = "close", False
            if b"content-length" in fields:
                self.keep_alive = False  # both framings: a smuggling attempt or a broken proxy; trust neither later
        elif b"content-length" in fields:
            lengths = {t.strip() for v in fields[b"content-length"] for t in v.split(b",")}
            if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
                raise ProtocolViolation("malformed Content-Length")
            self.remaining = int(length)
            if self.remaining > _MAX_BODY:
                raise ProtocolViolation(f"response body over {_MAX_BODY} bytes")
            self.mode = "length"
        else:
            self.mode, self.keep_alive = "close", False


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: _Parser | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def exchange(self, request: bytes, no_body: bool) -> asyncio.Future[Response]:
        """Send a serialised request; the future holds the response."""
        assert self.transport is not None
        self.parser = _Parser(no_body)
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # bytes while idle answer nothing that was asked: the connection is not reused
            self.close()
            return
        try:
            complete = parser.feed(data)
        except ProtocolViolation as exc:
            self._fail(exc)
            return
        if complete:
            self._finish(parser)

    def eof_received(self) -> bool:
        parser, self.closed = self.parser, True
        if parser is not None:
            if parser.feed_eof():
                parser.keep_alive = False
                self._finish(parser)
            else:
                cut = parser.mode != "head" or parser.buf
                self._fail(ConnectionDropped("closed mid-response" if cut else "closed before answering"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.parser is not None:
            reason = type(exc).__name__ if exc is not None else "closed before answering"
            self._fail(ConnectionDropped(reason))

    def close(self) -> None:
        """Close at once: a connection closed here is never reused, so nothing buffered is worth sending."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _finish(self, parser: _Parser) -> None:
        self.parser = None
        if not parser.keep_alive:
            self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Response(parser.status, b"".join(parser.chunks)))

    def _fail(self, exc: HttpError) -> None:
        self.parser = None
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class Http1Pool:
    """Pooled keep-alive HTTP/1.1 connections to the origin of ``url``."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        keepalive_s: float = 30.0,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float | None = None,
        headers: Iterable[tuple[str, str]] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an http:// or https:// URL with a host is required, got {url!r}")
        tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        default_port = self._port == (443 if tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 literal goes in brackets
        self._fields = _fields([("Host", host if default_port else f"{host}:{self._port}"), *headers])
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._keepalive_s = keepalive_s
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections) if max_connections > 0 else None
        self._closed = False
        self.connections_opened = 0  # for tests and diagnostics: how often a connection was not reused

    async def request(self, method: str, target: str, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = ()) -> Response:
        """Send one request and read the whole response; raises HttpError (or a subclass) on failure."""
        if self._closed:
            raise HttpError("the pool is closed")
        if _TOKEN.fullmatch(method.encode("ascii", "replace")) is None or _TARGET.fullmatch(target) is None:
            raise HttpError("the method must be a token and the target an origin-form path")
        extra = _fields(headers) if headers else b""
        request = b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
            method.encode(), target.encode(), self._fields, extra, len(body), body)
        if self._slots is None:
            return await self._exchange(request, method == "HEAD")
        async with self._slots:
            return await self._exchange(request, method == "HEAD")

    async def aclose(self) -> None:
        """Close the idle connections; connections in use are closed when their exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _exchange(self, request: bytes, no_body: bool) -> Response:
        conn = self._take_idle() or await self._open()
        try:
            if self._read_timeout_s is None:
                response = await conn.exchange(request, no_body)
            else:
                try:
                    async with asyncio.timeout(self._read_timeout_s):
                        response = await conn.exchange(request, no_body)
                except TimeoutError as exc:
                    raise ReadTimedOut(f"no response within {self._read_timeout_s:g} s") from exc
        except BaseException:
            # Any failure, cancellation included, leaves the connection mid-message: it is never reused.
            conn.close()
            raise
        if self._closed:
            conn.close()
        elif not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return response

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # most recently used first: the one least likely to have timed out
            # A server that closed an idle connection has sent its FIN, which the protocol has already seen.
            if now - conn.idle_since < self._keepalive_s and not conn.closed:
                return conn
            conn.close()
        return None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, conn = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None)
        except TimeoutError as exc:
            raise ConnectTimedOut(f"no connection within {self._connect_timeout_s:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        self.connections_opened += 1
        return conn


def _fields(headers: Iterable[tuple[str, str]]) -> bytes:
    """Header fields serialised once; a name or value that could split the head is refused."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
        if _TOKEN.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
            raise ValueError(f"header {name!r} has a malformed name or value")
        out += raw_name + b": " + raw_value.strip(b" \t") + b"\r\n"
    return bytes(out)
