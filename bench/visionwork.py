"""The decode scenario's work: fresh photos made in parallel, then decoded in one process pinned to one core.

Making the photos is not measured and uses every core; decoding is measured in a spawned process of its own, held
to one CPU (sched_setaffinity, and OpenCV told to use one thread), so the figure is what one core of a scanner does.
Each photo is timed from its JPEG bytes to its codes (inspection.vision.load.load_image, then reader.read_codes):
what `python -m inspection decode` does per file, less reading the file.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

WARMUP = 8  # photos decoded first and left out (the detector's first calls load its settings)


@dataclass(frozen=True)
class Sample:
    """One generated photo and its ground truth."""

    symbology: str
    seed: int
    jpeg: bytes
    text: str
    damaged: bool  # the code is wiped out past repair: nothing may be read


def _make(job: tuple[str, int, bool]) -> Sample:
    from inspection.vision.synth import make_photo

    symbology, seed, damaged = job
    photo = make_photo(seed, symbology, code="damaged" if damaged else "intact")
    return Sample(symbology, seed, photo.jpeg, photo.text, damaged)


async def generate(jobs: list[tuple[str, int, bool]]) -> list[Sample]:
    """The photos for (symbology, seed, damaged) jobs, made on every core, in the jobs' order."""
    workers = max(1, len(os.sched_getaffinity(0)))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        return list(await asyncio.get_running_loop().run_in_executor(
            None, lambda: list(pool.map(_make, jobs, chunksize=8))))


def _pin_to_one_core() -> int:
    """Holds this process (and OpenCV's threads) to the last CPU it may use; returns that CPU."""
    import cv2

    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    return core


def decode_all(samples: list[Sample], warmup: list[Sample]) -> dict[str, Any]:
    """In the pinned process: every sample decoded and timed, with what was read against its ground truth."""
    from inspection.vision.load import load_image
    from inspection.vision.reader import read_codes

    core = _pin_to_one_core()
    for sample in warmup:
        read_codes(load_image(sample.jpeg))
    rows = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for sample in samples:
        t0 = time.perf_counter()
        image = load_image(sample.jpeg)
        t1 = time.perf_counter()
        codes = read_codes(image)
        t2 = time.perf_counter()
        found = [(c.text, c.format) for c in codes]
        right = (sample.text, sample.symbology) in found
        # A damaged code is read right when nothing is read; any code read from it is a wrong reading.
        wrong = found if sample.damaged else [(t, f) for t, f in found if (t, f) != (sample.text, sample.symbology)]
        rows.append({"symbology": sample.symbology, "seed": sample.seed, "damaged": sample.damaged,
                     "load_s": t1 - t0, "read_s": t2 - t1, "correct": not found if sample.damaged else right,
                     "wrong": [f"{f} {t!r}" for t, f in wrong]})
    return {"rows": rows, "core": core, "cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
            "hwm_mb": _hwm_mb()}


def _hwm_mb() -> float | None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _worker_main(conn: Connection, samples: list[Sample], warmup: list[Sample]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the harness stops this one
    try:
        conn.send(decode_all(samples, warmup))
    except Exception as exc:  # noqa: BLE001 - reported to the harness, which fails the scenario with it
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


async def decode_in_worker(samples: list[Sample], warmup: list[Sample], timeout_s: float) -> dict[str, Any]:
    """decode_all in a spawned process of its own, awaited without blocking; ended on a timeout or interrupt."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, args=(child, samples, warmup), daemon=True, name="bench-decode")
    proc.start()
    child.close()
    loop = asyncio.get_running_loop()
    try:
        answer = await asyncio.wait_for(loop.run_in_executor(None, _receive, parent), timeout_s)
    finally:
        if proc.is_alive():
            proc.terminate()
        await loop.run_in_executor(None, proc.join, 10)
        parent.close()
    if not isinstance(answer, dict):
        raise RuntimeError(f"decode worker failed: {answer}")
    return answer


def _receive(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return "the worker process exited without an answer (see its output above)"
