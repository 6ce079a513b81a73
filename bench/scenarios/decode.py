"""decode: reading waybill codes from warehouse photos, on one core, against the Scanners issue's targets.

Fresh photos are generated for every run (inspection.vision.synth, seeds drawn for the run and printed, so a run
can be repeated): N per symbology (full 200, quick 30) of Code 128, QR, DataMatrix and EAN-13 labels on parcels,
1280x960, turned up to 30 degrees, blurred, noisy, unevenly lit, JPEG-compressed. They are decoded in one process
held to one CPU (bench.visionwork), each timed from its JPEG bytes to its codes. Per symbology: the share read
correctly, the wrong readings (a code reported that is not the label's), images per second and latency. A fifth
as many again carry a code damaged past repair ("damaged"): any code read from those is a wrong reading too; they
are timed apart (reading nothing takes the slow last resort) and left out of the images/s target. The targets: at
least 99% of Code 128 and of QR labels read, no wrong reading at all, 50 images/s or more. There is no ceiling:
nothing else on this machine reads codes to compare with.
"""

from __future__ import annotations

import secrets
from typing import Any

from rich.table import Table

from bench.scenario import BenchContext, Harness, Scenario, Target
from bench.visionwork import WARMUP, decode_in_worker, generate

FULL_PHOTOS, QUICK_PHOTOS = 200, 30  # per symbology
DAMAGED_SHARE = 0.2  # as many again, times this, with the code damaged past repair: they must read nothing
SYMBOLOGIES = ("Code128", "QRCode", "DataMatrix", "EAN13")
WORKER_TIMEOUT_S = 900.0
NOTED = 12  # missed seeds and wrong readings kept per symbology (all are counted)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per symbology and for "all" (intact codes), and for "damaged" codes (read right = nothing read): photos,
    read right, share, wrong readings, images/s, latency."""
    intact = [r for r in rows if not r.get("damaged")]
    groups = {name: [r for r in intact if r["symbology"] == name] for name in SYMBOLOGIES}
    groups["all"] = intact
    groups["damaged"] = [r for r in rows if r.get("damaged")]
    out = {}
    for name, group in groups.items():
        if not group:
            continue
        total = [r["load_s"] + r["read_s"] for r in group]
        read = sum(r["correct"] for r in group)
        out[name] = {"photos": len(group), "read": read, "correct": read / len(group),
                     "wrong": sum(len(r["wrong"]) for r in group), "per_s": len(group) / sum(total),
                     "read_only_per_s": len(group) / sum(r["read_s"] for r in group),
                     **{f"p{q}_ms": _percentile(total, q / 100) * 1000 for q in (50, 95, 99)},
                     "missed_seeds": [r["seed"] for r in group if not r["correct"]][:NOTED],
                     "wrong_readings": [f"seed {r['seed']}: {w}" for r in group for w in r["wrong"]][:NOTED]}
    return out


class Decode(Scenario):
    """Generates the photos, decodes them on one core in a worker, reports per symbology."""

    name = "decode"
    ceiling = None
    server = "inspection"
    order = 80  # before screen, which starts a gateway of its own
    self_measured = True
    targets = (Target("quality.Code128.correct", ">=", 0.99), Target("quality.QRCode.correct", ">=", 0.99),
               Target("quality.all.wrong", "<=", 0.0), Target("quality.damaged.wrong", "<=", 0.0),
               Target("inprocess.per_s", ">=", 50.0))
    description = "read_codes on fresh 1280x960 warehouse photos, JPEG bytes to codes, one process on one core"

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        n = QUICK_PHOTOS if ctx.quick else FULL_PHOTOS
        base = secrets.randbelow(2**31 - 10 * n * len(SYMBOLOGIES))  # this run's seeds: base + 0, 1, 2, ...
        damaged = max(1, round(n * DAMAGED_SHARE))
        jobs = [(name, base + i * len(SYMBOLOGIES) + k, i >= n) for i in range(n + damaged)
                for k, name in enumerate(SYMBOLOGIES)]
        warm_jobs = [(SYMBOLOGIES[i % len(SYMBOLOGIES)], base + len(jobs) + i, False) for i in range(WARMUP)]
        harness.console.log(f"decode: generating {len(jobs):,} photos (seeds {base:,}..) on every core")
        photos = await generate(jobs + warm_jobs)
        harness.console.log("decode: decoding them in one process on one core")
        worker = await decode_in_worker(photos[:len(jobs)], photos[len(jobs):], WORKER_TIMEOUT_S)
        quality = summarise(worker["rows"])
        harness.console.print(quality_table(quality, f"decode: {n} photos per symbology, CPU {worker['core']}"))
        return [self._entry(n, base, worker, quality)]

    def _entry(self, n: int, base: int, worker: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
        every = quality["all"]
        details = [("photos", f"{every['photos']:,} ({n} per symbology) and {quality['damaged']['photos']} with the "
                              f"code damaged, 1280x960 JPEG, seeds from {base} "
                              "(inspection.vision.synth.make_photo(seed, symbology, code=...))"),
                   ("one core", f"CPU {worker['core']}: {worker['cpu_s']:.1f} s of CPU in {worker['wall_s']:.1f} s "
                                f"of wall time; worker VmHWM {worker['hwm_mb'] or 0:,.0f} MB"),
                   ("read_codes alone", f"{every['read_only_per_s']:,.0f} images/s (without decoding the JPEG)")]
        for name, row in quality.items():
            verb = "read nothing" if name == "damaged" else "read"
            details.append((name, f"{row['read']}/{row['photos']} {verb} ({row['correct']:.1%}), {row['wrong']} wrong, "
                                  f"{row['per_s']:,.0f} images/s, p50 {row['p50_ms']:.1f} ms, "
                                  f"p99 {row['p99_ms']:.1f} ms"))
            if row["missed_seeds"] and name not in ("all", "damaged"):
                details.append((f"  {name} missed", "seeds " + ", ".join(map(str, row["missed_seeds"]))))
            if row["wrong_readings"] and name != "all":
                details.append((f"  {name} WRONG", "; ".join(row["wrong_readings"])))
        return {"name": self.name, "label": f"decode ({every['photos']:,} photos)", "kind": "scenario",
                "ceiling": None, "server": self.server, "description": self.description, "seed_base": base,
                "inprocess": {"unit": "images", "count": every["photos"], "per_s": every["per_s"],
                              **{k: every[k] for k in ("p50_ms", "p95_ms", "p99_ms")}, "errors": every["wrong"],
                              "rss_mb": worker["hwm_mb"]},
                "quality": quality, "worker": {k: worker[k] for k in ("core", "cpu_s", "wall_s", "hwm_mb")},
                "details": details}


def quality_table(quality: dict[str, Any], title: str) -> Table:
    """Per symbology: photos, read, share correct, wrong readings, images/s, latency."""
    table = Table(title=title)
    for column in ("symbology", "photos", "read", "correct", "wrong", "images/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "symbology" else "right")
    for name, row in quality.items():
        label = "damaged (read = nothing read)" if name == "damaged" else name
        table.add_row(label, str(row["photos"]), str(row["read"]), f"{row['correct']:.1%}", str(row["wrong"]),
                      f"{row['per_s']:,.0f}", f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}")
    return table


SCENARIO = Decode()
