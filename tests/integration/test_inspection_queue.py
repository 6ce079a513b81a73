"""The durable queue on real SQLite files: it survives a writer killed with SIGKILL mid-stream."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from courier.v1 import inspection_pb2 as pb
from inspection.queue import AsyncQueue, Queue
from tests.conftest import REPO

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from courier.v1 import inspection_pb2 as pb
    from inspection.queue import Queue
    q = Queue(Path(sys.argv[1]))
    i = 0
    while True:
        i += 1
        ev = pb.ScanEvent(device_id="dws-1", kind=pb.SCAN_KIND_DWS, waybill_no=f"SF{i:010d}",
                          images=[pb.ScanImage(content=bytes(2000))])
        print(q.put(ev, source_key=f"rec-{i}"), flush=True)
""")


def _event(n: int) -> pb.ScanEvent:
    return pb.ScanEvent(device_id="scale-1", kind=pb.SCAN_KIND_SCALE, waybill_no=f"SF{n:010d}")


def test_every_committed_event_survives_sigkill_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    written: list[str] = []
    for _ in range(2):  # killed twice: the second writer continues the same file
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for _ in range(150):
            written.append(proc.stdout.readline().strip())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        written += [line.strip() for line in proc.stdout if line.strip()]  # printed before the kill landed
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    q = Queue(path)
    pending = q.pending(limit=100_000)
    ids = [p.event_id for p in pending]
    assert len(ids) == len(set(ids)), "an event id was used twice"
    assert set(written) <= set(ids), "an event the writer saw committed is gone"
    assert all(p.event.event_id == p.event_id and p.event.images[0].content == bytes(2000) for p in pending)
    assert [p.seq for p in pending] == sorted(p.seq for p in pending)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.sqlite")
    assert q._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert q._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_ack_source_keys_and_the_epoch(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = Queue(path)
    first = q.put(_event(1), source_key="file:a")
    assert first.startswith("scale-1-") and len(first.split("-")[-2]) == 8
    assert q.put(_event(1), source_key="file:a") == first, "the same source became a second event"
    second = q.put(_event(2))
    assert q.depth() == 2 and [p.event_id for p in q.pending()] == [first, second]
    assert q.ack(first, "PASS", "") and not q.ack(first, "PASS", "")
    assert [p.event_id for p in q.pending()] == [second] and q.depth() == 1
    assert q._db.execute("SELECT length(body) FROM events WHERE event_id = ?", (first,)).fetchone() == (0,)
    epoch = q.epoch
    q.close()
    again = Queue(path)
    assert again.epoch == epoch and again.put(_event(3)).endswith("-3")
    assert again.prune(keep_acked_s=0) == 1 and [r[0] for r in again.rows()] == [second, f"scale-1-{epoch}-3"]
    assert Queue(tmp_path / "other.sqlite").epoch != epoch, "a new queue file must not reuse the old one's ids"


async def test_async_queue_wakes_the_forwarder(tmp_path: Path) -> None:
    from inspection import metrics

    q = AsyncQueue(tmp_path / "q.sqlite")
    q.changed.clear()
    event_id = await q.put(_event(1))
    assert q.changed.is_set() and metrics.QUEUE_DEPTH._value.get() == 1
    assert [p.event_id for p in await q.pending()] == [event_id]
    assert await q.ack(event_id, "PASS", "") and metrics.QUEUE_DEPTH._value.get() == 0
    await q.close()
