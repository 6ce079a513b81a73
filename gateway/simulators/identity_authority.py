"""Simulator of the national identity authority, speaking its HTTP/1.1 protocol over TCP.

The real authority cannot be reached from development or CI, so tests and
``make run`` talk to this server instead, through the same adapter and socket
path as production.  HTTP framing is h11's job; this module only routes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import signal
import sys
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import cv2
import h11
import numpy as np

PHOTO_THRESHOLD = 0.85
_MAX_BODY = 4 * 1024 * 1024
_READ_CHUNK = 65536
# Separators in transliterated minority names (阿依古丽·买买提) that clerks type inconsistently.
_NAME_SEPARATORS = frozenset("·‧•∙⋅・.")
_REQUIRED_FIELDS = ("document_type", "document_number", "name")


class BadRequest(Exception):
    """A request the authority refuses to rule on (answered 400)."""


@dataclass(frozen=True)
class _Person:
    name_key: str
    status: str
    photo_hash: int | None


def normalize_name(name: str) -> str:
    """NFKC, case-folded, with whitespace and middle dots removed."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _NAME_SEPARATORS)


def _number_key(document_type: str, number: str) -> tuple[str, str]:
    # The RIC check character is written both as "x" and "X".
    return document_type.strip().upper(), number.strip().upper()


def photo_hash(image: bytes) -> int:
    """64-bit DCT perceptual hash of an encoded image; raises BadRequest if undecodable."""
    grey = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_GRAYSCALE) if image else None
    if grey is None or grey.size == 0:
        raise BadRequest("photo could not be decoded as an image")
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    # The median excludes the DC term, which only encodes overall brightness.
    bits = low > np.median(low[1:])
    return int("".join("1" if bit else "0" for bit in bits), 2)


def similarity(hash_a: int, hash_b: int) -> float:
    """1 - Hamming distance / 64."""
    return 1.0 - (hash_a ^ hash_b).bit_count() / 64.0


def _load_photo(value: str, base_dir: Path) -> bytes:
    """A reference photo given as a path (relative to the registry) or as base64."""
    try:
        path = base_dir / value
        if path.is_file():
            return path.read_bytes()
    except OSError:  # base64 text may be too long to even be asked about as a file name
        pass
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"reference photo is neither a file nor base64: {value[:40]!r}") from exc


def _read_entries(registry: list[dict[str, Any]] | Path) -> tuple[Path, list[dict[str, Any]]]:
    """The entries, and the folder their photo paths are relative to."""
    if isinstance(registry, Path):
        entries: list[dict[str, Any]] = json.loads(registry.read_text(encoding="utf-8"))
        return registry.parent, entries
    return Path.cwd(), registry


def load_registry(registry: list[dict[str, Any]] | Path) -> dict[tuple[str, str], _Person]:
    """Index registry entries by (document_type, number), hashing reference photos once."""
    base_dir, entries = _read_entries(registry)
    people: dict[tuple[str, str], _Person] = {}
    for index, entry in enumerate(entries):
        photo = entry.get("photo")
        try:
            digest = photo_hash(_load_photo(photo, base_dir)) if photo else None
        except BadRequest as exc:
            raise ValueError(f"registry entry {index}: reference {exc}") from exc
        key = _number_key(entry["document_type"], entry["document_number"])
        people[key] = _Person(normalize_name(entry["name"]), entry.get("status", "VALID"), digest)
    return people


class AuthoritySimulator:
    """An in-process fake authority with failure injection for tests."""

    def __init__(
        self,
        registry: list[dict[str, Any]] | Path,
        *,
        api_key: str = "sim-key",
        latency_ms: int = 0,
        fail_every: int = 0,
        unavailable_numbers: Iterable[str] = (),
    ) -> None:
        self._people = load_registry(registry)
        self._api_key = api_key
        self._latency_s = latency_ms / 1000.0
        self._fail_every = fail_every
        self._unavailable = {number.strip().upper() for number in unavailable_numbers}
        self._verify_count = 0
        self._served = 0
        self._accepted = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL to hand to the adapter."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests_served(self) -> int:
        """HTTP requests answered so far, whatever their status."""
        return self._served

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far; shows whether clients reuse keep-alive connections."""
        return self._accepted

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop open keep-alive connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._accepted += 1
        try:
            await self._serve(h11.Connection(h11.SERVER), reader, writer)
        # Cancellation comes only from close(); letting it escape would make asyncio's stream
        # callback log it as an error, and a client hanging up is routine.
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer requests on one connection until either side closes it."""
        while True:
            try:
                request = await _read_request(conn, reader)
            except (h11.RemoteProtocolError, BadRequest) as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, 400, {"detail": str(exc) or "malformed request"})
                return
            if request is None:
                return
            try:
                status, body = await self._route(*request)
            except Exception as exc:  # a simulator bug must still answer, as a 500, not hang the client
                status, body = 500, {"detail": f"simulator error ({type(exc).__name__})"}
            await self._send(conn, writer, status, body, head=request[0].method == b"HEAD")
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        body: dict[str, Any],
        head: bool = False,
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))]
        if status >= 400 and conn.their_state is not h11.DONE:
            headers.append(("Connection", "close"))
        response = h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase)
        writer.write(conn.send(response) or b"")
        if not head:  # h11 frames a HEAD answer as bodiless, whatever Content-Length says
            writer.write(conn.send(h11.Data(data=data)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        self._served += 1

    async def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        target = request.target.split(b"?", 1)[0]
        if target == b"/healthz":
            return (200, {"status": "SERVING"}) if request.method in (b"GET", b"HEAD") else _not_allowed()
        if target != b"/v1/identity/verify":
            return 404, {"detail": "no such endpoint"}
        if request.method != b"POST":
            return _not_allowed()
        return await self._verify_endpoint(request, body)

    async def _verify_endpoint(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        if dict(request.headers).get(b"authorization") != f"Bearer {self._api_key}".encode():
            return 401, {"detail": "missing or wrong API key"}
        self._verify_count += 1
        if self._fail_every and self._verify_count % self._fail_every == 0:
            return 503, {"detail": "injected failure (fail_every)"}
        try:
            query = _parse_query(body)
            if query["document_number"].strip().upper() in self._unavailable:
                return 503, {"detail": "injected failure (unavailable number)"}
            return 200, await self._verify(query)
        except BadRequest as exc:
            return 400, {"detail": str(exc)}

    async def _verify(self, query: dict[str, Any]) -> dict[str, Any]:
        """The ruling itself: NOT_FOUND, MISMATCH, REVOKED, PHOTO_MISMATCH or MATCH."""
        photo = _decode_photo(query.get("photo"))
        given_hash = await asyncio.to_thread(photo_hash, photo) if photo is not None else None
        person = self._people.get(_number_key(query["document_type"], query["document_number"]))
        if person is None:
            return _ruling("NOT_FOUND", "no such document on record")
        if normalize_name(query["name"]) != person.name_key:
            return _ruling("MISMATCH", "the name does not match the document holder")
        if person.status != "VALID":
            return _ruling("REVOKED", "the document has been reported lost, stolen or cancelled")
        if given_hash is None or person.photo_hash is None:
            detail = "name matches" if given_hash is None else "name matches; no reference photo on record"
            return _ruling("MATCH", detail)
        score = similarity(given_hash, person.photo_hash)
        if score < PHOTO_THRESHOLD:
            return _ruling("PHOTO_MISMATCH", "the face does not match the document holder", score)
        return _ruling("MATCH", "name and face match", score)


def _not_allowed() -> tuple[int, dict[str, Any]]:
    return 405, {"detail": "method not allowed"}


def _ruling(result: str, detail: str, score: float | None = None) -> dict[str, Any]:
    return {"result": result, "reference": f"SIM-{uuid.uuid4()}", "similarity": score, "detail": detail}


def _parse_query(body: bytes) -> dict[str, Any]:
    try:
        query = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(query, dict) or not all(isinstance(query.get(f), str) for f in _REQUIRED_FIELDS):
        raise BadRequest("document_type, document_number and name must be strings")
    return query


def _decode_photo(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("photo must be base64 or null")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise BadRequest("photo could not be decoded: not base64") from exc


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await reader.read(_READ_CHUNK))
    return event


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes] | None:
    """The next request and its body, or None once the client has closed."""
    request = await _next_event(conn, reader)
    if not isinstance(request, h11.Request):
        return None
    body = bytearray()
    while not isinstance(event := await _next_event(conn, reader), h11.EndOfMessage):
        if isinstance(event, h11.ConnectionClosed):
            return None
        body += event.data
        if len(body) > _MAX_BODY:
            raise BadRequest("request body too large")
    return request, bytes(body)


async def start_simulator(
    registry: list[dict[str, Any]] | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = "sim-key",
    latency_ms: int = 0,
    fail_every: int = 0,
    unavailable_numbers: Iterable[str] = (),
) -> AuthoritySimulator:
    """Start a simulator listening on host:port (0 picks a free port)."""
    simulator = AuthoritySimulator(
        registry,
        api_key=api_key,
        latency_ms=latency_ms,
        fail_every=fail_every,
        unavailable_numbers=unavailable_numbers,
    )
    await simulator.start(host, port)
    return simulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Simulator of the national identity authority.")
    parser.add_argument("--registry", type=Path, required=True, help="JSON registry file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-every", type=int, default=0, help="every Nth verify request answers 503")
    parser.add_argument("--unavailable-number", action="append", default=[], help="always answers 503")
    return parser.parse_args(argv)


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    simulator = await start_simulator(
        args.registry,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        fail_every=args.fail_every,
        unavailable_numbers=args.unavailable_number,
    )
    print(f"identity-authority simulator listening on {simulator.url}", flush=True)
    await stop.wait()
    await simulator.close()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: serve until SIGINT/SIGTERM, then exit 0."""
    asyncio.run(_serve_until_signalled(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
