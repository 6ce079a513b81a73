"""Load-generator processes: spawned once per run, each with one uvloop event loop that runs job after job."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
from multiprocessing.connection import Connection
from typing import Any

from bench.loadgen import Job, JobResult, run_job

_READY = "ready"


def worker_main(conn: Connection) -> None:
    """A load-generator process: receives Jobs, answers JobResults (or an exception's text), until None."""
    import uvloop

    # Ctrl-C reaches the whole process group; the harness alone reacts, then stops these processes itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One loop for the whole life of the process: grpc.aio dislikes being moved between loops.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    conn.send(_READY)
    try:
        for _ in range(100_000):  # bounded: a run has a few dozen phases
            job = conn.recv()
            if job is None:
                break
            try:
                conn.send(loop.run_until_complete(run_job(job)))
            except Exception as exc:  # noqa: BLE001 - reported to the harness, which stops the run
                conn.send(f"{type(exc).__name__}: {exc}")
    except EOFError:  # the harness is gone
        pass
    finally:
        loop.close()


class WorkerPool:
    """N spawned load-generator processes (spawn, not fork: the harness holds an event loop and sockets)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._procs: list[Any] = []
        self._conns: list[Connection] = []

    async def start(self, timeout_s: float = 60.0) -> None:
        """Spawns the processes and waits until each has imported everything and says it is ready."""
        ctx = mp.get_context("spawn")
        for _ in range(self.size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True, name="bench-loadgen")
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        answers = await self._answers(timeout_s)
        if any(a != _READY for a in answers):
            raise RuntimeError(f"a load generator failed to start: {answers}")

    @property
    def pids(self) -> list[int]:
        """The processes' ids."""
        return [p.pid for p in self._procs]

    async def run(self, jobs: list[Job], timeout_s: float) -> list[JobResult]:
        """Sends one job to each process and waits for all answers."""
        assert len(jobs) == self.size
        for conn, job in zip(self._conns, jobs, strict=True):
            conn.send(job)
        answers = await self._answers(timeout_s)
        failures = [a for a in answers if not isinstance(a, JobResult)]
        if failures:
            raise RuntimeError(f"load generator failed: {failures[0]}")
        return answers

    async def _answers(self, timeout_s: float) -> list[Any]:
        """One answer from every process, in order."""
        gathered = asyncio.gather(*(self._recv(c) for c in self._conns))
        # When the run is interrupted the gather ends cancelled; mark that seen so asyncio does not log it.
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.wait_for(gathered, timeout_s)

    async def _recv(self, conn: Connection) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        except EOFError:
            return "the load-generator process exited (see its output above)"

    def stop(self) -> None:
        """Asks every process to finish, then ends any that does not within a few seconds."""
        for conn in self._conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
