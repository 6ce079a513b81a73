"""Several gateway processes on one port (GATEWAY_PROCESSES): a parent that starts, watches and stops them.

Each worker is a whole gateway (its own pool, live blocklist and listeners) started with `python -m gateway serve
--worker`, a fresh interpreter (never a fork of one that imported gRPC), and binds the same port with
SO_REUSEPORT, so the kernel spreads new connections over them. What must run once per database (the evidence
appender, re-screening) already takes an advisory lock, so only one worker does it at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.settings import Settings

log = logging.getLogger(__name__)

# The lines a worker prints on stdout that the parent prints once for all of them.
LISTENING = "gateway listening on "
TRANSPORT = "gateway transport: "
STOPPED = "gateway stopped"
BAD_SETTING = 2  # a worker's exit code for a bad setting: restarting it would fail the same way
START_FAILURES = 5  # a worker that dies this many times in a row before it is ready: the parent gives up
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SUPERVISOR_PID = "GATEWAY_SUPERVISOR_PID"  # not a setting: how a worker knows the parent it must not outlive


def process_count(settings: Settings) -> int:
    """GATEWAY_PROCESSES, or one per core this process may use when it is unset (0)."""
    return settings.processes or usable_cores()


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may run on (its affinity), fewer when its cgroup's CPU quota allows fewer.

    A container limited to 2 CPUs on a 64-core host sees 64 in os.cpu_count(): 64 gateways with a pool each would
    share 2 cores and exhaust PostgreSQL's connections.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return max(1, cores)
    if quota != "max" and int(period) > 0:
        cores = min(cores, math.ceil(int(quota) / int(period)))
    return max(1, cores)


def reserve_port(listen: str) -> tuple[str, socket.socket | None]:
    """HOST:PORT for the workers; port 0 becomes a free port held (bound, not listening) until they stop."""
    host, _, port = listen.rpartition(":")
    if int(port) != 0:
        return listen, None
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    held = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEPORT on the held socket too, so the workers can bind beside it; nobody else can take the port.
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((host.strip("[]") or "0.0.0.0", 0))
    return f"{host}:{held.getsockname()[1]}", held


@dataclass
class Worker:
    """One worker process and what the parent knows of it."""

    index: int
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0  # deaths in a row before getting ready
    relay: asyncio.Task[None] | None = None


class Supervisor:
    """Starts N workers, prints the listening line once they all serve, restarts one that dies, stops them all."""

    def __init__(self, settings: Settings, count: int, listen: str, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.base_env = dict(os.environ if env is None else env)
        self.count = count
        self.listen = listen
        self.workers = [Worker(i) for i in range(count)]
        self.stopping = asyncio.Event()
        self.failed: int | None = None  # the exit code the parent ends with, once a worker cannot be kept up
        self._held_lines: list[str] = []
        self._announced = False
        self._transport_seen = False

    def _env(self, index: int) -> dict[str, str]:
        return {**self.base_env, "GATEWAY_LISTEN": self.listen, "GATEWAY_PROCESSES": str(self.count),
                "GATEWAY_PROCESS_INDEX": str(index), SUPERVISOR_PID: str(os.getpid())}

    async def _spawn(self, worker: Worker) -> None:
        worker.ready = asyncio.Event()
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--worker", env=self._env(worker.index),
            stdout=asyncio.subprocess.PIPE)  # stderr (the log) is inherited: its lines go out as they are
        worker.relay = asyncio.create_task(self._relay(worker, worker.proc))

    async def _relay(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        """Forwards a worker's stdout: the listening and transport lines once for all, the rest as they come."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(LISTENING):
                worker.ready.set()
                worker.failures = 0
                log.info("gateway process %d (pid %d) serving", worker.index, proc.pid)
                self._announce()
            elif line.startswith(TRANSPORT):
                if not self._transport_seen:
                    self._transport_seen = True
                    self._emit(line)
            elif line.startswith(STOPPED):
                continue
            else:
                self._emit(line)

    def _emit(self, line: str) -> None:
        # Until every worker serves, lines wait, so the listening line comes first, as with one process.
        if self._announced:
            print(line, flush=True)
        else:
            self._held_lines.append(line)

    def _announce(self) -> None:
        if self._announced or not all(w.ready.is_set() for w in self.workers):
            return
        self._announced = True
        host, _, port = self.listen.rpartition(":")
        print(f"{LISTENING}{host}:{port}", flush=True)
        for line in self._held_lines:
            print(line, flush=True)
        self._held_lines.clear()

    async def _watch(self, worker: Worker) -> None:
        """Keeps one worker running until the parent stops, restarting it with back-off when it dies."""
        while not self.stopping.is_set():
            await self._spawn(worker)
            assert worker.proc is not None and worker.relay is not None
            exited = asyncio.ensure_future(worker.proc.wait())
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if self.stopping.is_set():  # this watcher stops its own worker: one spawned meanwhile is not missed
                await self._stop(worker.proc)
                await exited
                await worker.relay
                return
            code = await exited
            await worker.relay
            was_ready = worker.ready.is_set()
            if code == BAD_SETTING:
                log.error("gateway process %d exited 2 (a bad setting): stopping every process", worker.index)
                self._fail(BAD_SETTING)
                return
            worker.failures = 0 if was_ready else worker.failures + 1
            if worker.failures >= START_FAILURES:
                log.error("gateway process %d failed %d times before serving: stopping every process",
                          worker.index, worker.failures)
                self._fail(1)
                return
            if not self._announced and not was_ready:
                # At start-up one failure is enough to say so: the same settings would fail the same way.
                log.error("gateway process %d exited %s before serving: stopping every process", worker.index, code)
                self._fail(1)
                return
            delay = BACKOFF_S[min(worker.failures, len(BACKOFF_S) - 1)]
            log.warning("gateway process %d (pid %d) exited %s: restarting in %.1f s", worker.index,
                        worker.proc.pid, code, delay)
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
            except TimeoutError:
                pass

    def _fail(self, code: int) -> None:
        if self.failed is None:
            self.failed = code
        self.stopping.set()

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM to a worker (it drains its calls within SHUTDOWN_GRACE_S), SIGKILL past that."""
        if proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = self.settings.shutdown_grace_s + 10.0
        try:
            await asyncio.wait_for(proc.wait(), deadline)
        except TimeoutError:
            log.error("gateway process pid %d did not stop within %.0f s: killed", proc.pid, deadline)
            proc.kill()
            await proc.wait()

    async def run(self) -> int:
        """Serves until SIGINT or SIGTERM (0) or until a worker cannot be kept running (1, or 2: bad setting)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]
        await self.stopping.wait()
        await asyncio.gather(*watchers)  # each stops its own worker
        print(STOPPED, flush=True)
        return self.failed or 0


def become_worker() -> None:
    """In a worker: die with the parent (SIGTERM when it goes, even by SIGKILL), never outlive it serving."""
    parent = int(os.environ.get(SUPERVISOR_PID, "0") or 0)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM is what stops the worker
        return
    if parent and os.getppid() != parent:  # the parent went before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def supervise(settings: Settings, count: int, env: Mapping[str, str] | None = None) -> int:
    """Runs count workers on settings.listen (a free port shared by all when it says port 0); env: the workers'
    environment (default: this process's), which must give the settings these were read from."""
    listen, held = reserve_port(settings.listen)
    try:
        return await Supervisor(settings, count, listen, env).run()
    finally:
        if held is not None:
            held.close()
