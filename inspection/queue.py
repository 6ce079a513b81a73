"""The durable store-and-forward queue: one SQLite file in WAL mode with synchronous FULL.

Every reading is one row (the serialized ScanEvent and its status) committed before the device is answered
or its file moved away, so a reading survives the adapter being killed at any point. A row stays `pending`
until the gateway's ScanAck for its event_id arrives; then it is marked `acked` with the decision and its
body (images included) is dropped. Acked rows are deleted after `keep_acked_s`; until then their
source_key keeps a folder file or a DWS record seen twice from becoming a second reading.

Event ids are "<device_id>-<queue epoch>-<row sequence>": the epoch is 8 random hex digits chosen when the
queue file is created, so a new queue file never reuses an id the gateway has seen from an old one.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from courier.v1 import inspection_pb2 as pb
from inspection import metrics

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE,
    device_id TEXT NOT NULL,
    source_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'acked')),
    body BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    acked_at REAL,
    decision TEXT,
    reasons TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, seq);
"""


@dataclass(frozen=True)
class Pending:
    """A queued event not yet acknowledged."""

    seq: int
    event_id: str
    event: pb.ScanEvent


class Queue:
    """The queue file, used from one thread at a time (AsyncQueue gives it a thread of its own)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self.epoch = self._epoch()

    def _epoch(self) -> str:
        with self._tx():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            if row:
                return str(row[0])
            epoch = secrets.token_hex(4)
            self._db.execute("INSERT INTO meta VALUES ('epoch', ?)", (epoch,))
            return epoch

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def put(self, event: pb.ScanEvent, source_key: str = "") -> str:
        """Writes the event durably, assigning its event_id; a source_key seen before returns its first id."""
        with self._tx():
            if source_key:
                row = self._db.execute("SELECT event_id FROM events WHERE source_key = ?", (source_key,)).fetchone()
                if row:
                    return str(row[0])
            cur = self._db.execute(
                "INSERT INTO events (device_id, source_key, status, body, enqueued_at) VALUES (?, ?, 'pending', ?, ?)",
                (event.device_id, source_key or None, b"", time.time()))
            seq = int(cur.lastrowid or 0)
            event.event_id = f"{event.device_id}-{self.epoch}-{seq}"
            self._db.execute("UPDATE events SET event_id = ?, body = ? WHERE seq = ?",
                             (event.event_id, event.SerializeToString(), seq))
        return event.event_id

    def pending(self, after_seq: int = 0, limit: int = 64) -> list[Pending]:
        """Pending events after a sequence number, oldest first."""
        rows = self._db.execute(
            "SELECT seq, event_id, body FROM events WHERE status = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit)).fetchall()
        return [Pending(seq, event_id, pb.ScanEvent.FromString(body)) for seq, event_id, body in rows]

    def ack(self, event_id: str, decision: str, reasons: str) -> bool:
        """Marks an event acknowledged and drops its body; False when it was not pending."""
        with self._tx():
            cur = self._db.execute(
                "UPDATE events SET status = 'acked', body = x'', acked_at = ?, decision = ?, reasons = ? "
                "WHERE event_id = ? AND status = 'pending'", (time.time(), decision, reasons, event_id))
        return cur.rowcount == 1

    def depth(self) -> int:
        """How many events wait for their ack."""
        return int(self._db.execute("SELECT count(*) FROM events WHERE status = 'pending'").fetchone()[0])

    def prune(self, keep_acked_s: float) -> int:
        """Deletes rows acknowledged more than keep_acked_s ago; returns how many."""
        with self._tx():
            cur = self._db.execute("DELETE FROM events WHERE status = 'acked' AND acked_at < ?",
                                   (time.time() - keep_acked_s,))
        return cur.rowcount

    def rows(self) -> list[tuple[str, str, str | None]]:
        """(event_id, status, decision) of every row, oldest first: for operators and tests."""
        return self._db.execute("SELECT event_id, status, decision FROM events ORDER BY seq").fetchall()

    def close(self) -> None:
        """Closes the file."""
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on an exception: the write lock is taken up front."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


class AsyncQueue:
    """The queue for the event loop: every call runs on one worker thread; `changed` wakes the forwarder."""

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue")
        self.sync = Queue(path)
        self.changed = asyncio.Event()
        metrics.QUEUE_DEPTH.set(self.sync.depth())

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def put(self, event: pb.ScanEvent, source_key: str = "") -> str:
        """Sink.put: written and fsynced when this returns."""
        event_id: str = await self._run(self.sync.put, event, source_key)
        metrics.READINGS.labels(device=event.device_id).inc()
        await self._refresh()
        self.changed.set()
        return event_id

    async def pending(self, after_seq: int = 0, limit: int = 64) -> list[Pending]:
        """Queue.pending on the worker thread."""
        found: list[Pending] = await self._run(self.sync.pending, after_seq, limit)
        return found

    async def ack(self, event_id: str, decision: str, reasons: str) -> bool:
        """Queue.ack on the worker thread, then the depth gauge."""
        done: bool = await self._run(self.sync.ack, event_id, decision, reasons)
        await self._refresh()
        return done

    async def prune(self, keep_acked_s: float) -> int:
        """Queue.prune on the worker thread."""
        count: int = await self._run(self.sync.prune, keep_acked_s)
        return count

    async def _refresh(self) -> None:
        metrics.QUEUE_DEPTH.set(await self._run(self.sync.depth))

    async def close(self) -> None:
        """Closes the file and the worker."""
        await self._run(self.sync.close)
        self._pool.shutdown(wait=True)
