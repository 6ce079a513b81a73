"""A small pooled HTTP/1.1 client for one origin: asyncio streams, h11 framing, keep-alive.

The identity authority is asked once per VerifySender, so this client does only what that call needs:
one origin, requests with a full body, keep-alive connections reused most recently used first, a bound on
open connections, TLS for https URLs, and errors that say whether the server may have seen the request.
It never reads proxy settings from the environment and never follows redirects.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

import h11

_READ_CHUNK = 65536
_MAX_BODY = 1024 * 1024  # an authority's answer is a few hundred bytes; more is not an answer


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


class _Connection:
    """One TCP (or TLS) connection with its h11 state."""

    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        # abort(), not close(): a connection closed here is never reused, so nothing buffered is worth sending.
        self.writer.transport.abort()


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
        host_header = self._host if default_port else f"{self._host}:{self._port}"
        if ":" in self._host:  # an IPv6 literal is written in brackets in the Host header
            host_header = f"[{self._host}]" if default_port else f"[{self._host}]:{self._port}"
        self._headers = [("Host", host_header), *headers]
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
        if self._slots is None:
            return await self._exchange(method, target, body, headers)
        async with self._slots:
            return await self._exchange(method, target, body, headers)

    async def aclose(self) -> None:
        """Close the idle connections; connections in use are closed when their exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _exchange(self, method: str, target: str, body: bytes, headers: Iterable[tuple[str, str]]) -> Response:
        conn = self._take_idle()
        if conn is None:
            conn = await self._open()
        done = False
        try:
            response = await self._send_and_read(conn, method, target, body, headers)
            done = True
        finally:
            # Any failure, cancellation included, leaves the connection mid-message: it is never reused.
            if not done:
                conn.close()
        if self._closed or conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
            conn.close()  # "Connection: close" from either side, or a body delimited by the connection's end
        else:
            conn.h11.start_next_cycle()
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return response

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # most recently used first: the one least likely to have timed out
            # A server that closed an idle connection has sent its FIN, which the reader has already seen.
            if now - conn.idle_since < self._keepalive_s and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl, limit=_READ_CHUNK,
                    server_hostname=self._host if self._ssl is not None else None)
        except TimeoutError as exc:
            raise ConnectTimedOut(f"no connection within {self._connect_timeout_s:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _send_and_read(self, conn: _Connection, method: str, target: str, body: bytes,
                             headers: Iterable[tuple[str, str]]) -> Response:
        state = conn.h11
        try:
            head = h11.Request(method=method, target=target,
                               headers=[*self._headers, *headers, ("Content-Length", str(len(body)))])
            conn.writer.write(state.send(head) + state.send(h11.Data(data=body)) + state.send(h11.EndOfMessage()))
            await conn.writer.drain()
        except h11.LocalProtocolError as exc:
            raise HttpError(f"request not sendable: {exc}") from exc
        except OSError as exc:
            raise ConnectionDropped(type(exc).__name__) from exc
        if self._read_timeout_s is None:
            return await self._read(conn)
        try:
            async with asyncio.timeout(self._read_timeout_s):
                return await self._read(conn)
        except TimeoutError as exc:
            raise ReadTimedOut(f"no response within {self._read_timeout_s:g} s") from exc

    async def _read(self, conn: _Connection) -> Response:
        state, status, chunks, size = conn.h11, 0, [], 0
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                if conn.reader.at_eof():  # the answer was cut short by the connection's end
                    raise ConnectionDropped("closed mid-response") from exc
                raise ProtocolViolation(str(exc)) from exc
            if event is h11.NEED_DATA:
                try:
                    data = await conn.reader.read(_READ_CHUNK)
                except OSError as exc:
                    raise ConnectionDropped(type(exc).__name__) from exc
                if not data and state.their_state is h11.SEND_RESPONSE and not status:
                    raise ConnectionDropped("closed before answering")
                state.receive_data(data)  # b"" tells h11 the connection ended
            elif type(event) is h11.Response:
                status = event.status_code
            elif type(event) is h11.Data:
                size += len(event.data)
                if size > _MAX_BODY:
                    raise ProtocolViolation(f"response body over {_MAX_BODY} bytes")
                chunks.append(event.data)
            elif type(event) is h11.EndOfMessage:
                return Response(status, b"".join(chunks))
            elif type(event) is h11.ConnectionClosed:
                raise ConnectionDropped("closed mid-response")
            # h11.InformationalResponse (1xx) is skipped: the final response follows it.
