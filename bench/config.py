"""The run's settings: the quick and full presets, and what the command line changes in them."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Config:
    """Everything one run needs to know."""

    quick: bool
    scenarios: list[str]  # empty: every scenario discovered
    ceilings: list[str]  # empty: every ceiling discovered
    skip_ceilings: bool
    duration_s: float
    warmup_s: float
    concurrency: int
    workers: int
    seed_shipments: int
    out: Path
    open_fraction: float = 0.5
    timeout_s: float = 10.0
    database_url: str = ""
    gateway_env: dict[str, str] = field(default_factory=dict)
    progress: bool = True


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m bench`."""
    p = argparse.ArgumentParser(prog="python -m bench", description="Benchmark the gateway against its ceilings.")
    p.add_argument("--quick", action="store_true", help="short phases and a small seed (about a minute)")
    p.add_argument("--scenarios", help="comma-separated (default: every file in bench/scenarios/)")
    p.add_argument("--ceilings", help="comma-separated (default: every file in bench/ceilings/)")
    p.add_argument("--skip-ceilings", action="store_true", help="measure no ceiling (ratios are then not given)")
    p.add_argument("--duration", type=float, help="seconds measured per phase (quick 3, full 20)")
    p.add_argument("--warmup", type=float, help="seconds per phase excluded from the figures (quick 1, full 5)")
    p.add_argument("--concurrency", type=int, default=64, help="calls in flight in closed loop, over all workers")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--seed-shipments", type=int, help="shipments seeded first (quick 40000, full 300000)")
    p.add_argument("--open-fraction", type=float, default=0.5, help="open-loop rate as a fraction of the maximum")
    p.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the gateway, e.g. DB_POOL_MAX=32 (repeatable)")
    p.add_argument("--out", type=Path, help="JSON file (default bench/results/<UTC timestamp>.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    return p


def _names(raw: str | None) -> list[str]:
    """The names given; empty means every one discovered."""
    return [n.strip() for n in raw.split(",") if n.strip()] if raw else []


def from_args(argv: list[str] | None = None) -> Config:
    """Reads the command line into a Config; bad values stop with a usage message."""
    p = parser()
    a = p.parse_args(argv)
    quick = bool(a.quick)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    env = dict(item.split("=", 1) for item in a.gateway_env if "=" in item)
    cfg = Config(
        quick=quick, scenarios=_names(a.scenarios), ceilings=_names(a.ceilings), skip_ceilings=a.skip_ceilings,
        duration_s=a.duration if a.duration is not None else (3.0 if quick else 20.0),
        warmup_s=a.warmup if a.warmup is not None else (1.0 if quick else 5.0),
        concurrency=a.concurrency, workers=a.workers,
        seed_shipments=a.seed_shipments if a.seed_shipments is not None else (40_000 if quick else 300_000),
        out=a.out or RESULTS / f"{stamp}.json", open_fraction=a.open_fraction,
        database_url=os.environ.get("BENCH_DATABASE_URL", ""), gateway_env=env, progress=not a.no_progress,
    )
    problems = [msg for bad, msg in (
        (not 0.5 <= cfg.duration_s <= 600, "--duration must be 0.5..600 s"),
        (not 0 <= cfg.warmup_s <= 120, "--warmup must be 0..120 s"),
        (not 1 <= cfg.concurrency <= 4096, "--concurrency must be 1..4096"),
        (not 1 <= cfg.workers <= 64, "--workers must be 1..64"),
        (not 0 <= cfg.seed_shipments <= 50_000_000, "--seed-shipments must be 0..50,000,000"),
        (not 0.05 <= cfg.open_fraction <= 1.0, "--open-fraction must be 0.05..1"),
    ) if bad]
    if problems:
        p.error("; ".join(problems))
    return cfg
