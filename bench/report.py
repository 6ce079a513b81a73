"""The run's results: machine facts, ratios to the ceilings, targets met or missed, a rich table and a JSON file."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import procstat
from bench.config import Config
from bench.scenario import Target

RSS_TARGET = Target("gateway_rss_max_mb", "<", 300.0)
LIST_ENTRIES = 1_000_000  # the list size the "with the 1 M list" targets name
# Issue 14's targets, each read from an entry of the run: (entry name or "prefix*", what, target).
SPEED_TARGETS = (
    ("verify", "gateway CPU per verify, × the floor's", Target("floor_cpu_ratio", "<=", 1.3)),
    ("accept", "gateway CPU per accept pair, × the floor's", Target("floor_cpu_ratio", "<=", 1.3)),
    ("accept", "accept open-loop p99 at half rate, ms", Target("open.p99_ms", "<=", 25.0)),
    ("accept+*", "the same with the 1 M list loaded, ms", Target("open.p99_ms", "<=", 25.0)),
    ("screen", "screen p50 at 1 M entries, µs", Target("inprocess.p50_us", "<=", 200.0)),
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_facts(pg_version: str, managed_cluster: bool, loadavg_before: tuple[float, ...]) -> dict[str, Any]:
    """What the figures depend on: cores, CPU, memory, versions, and how busy the machine was besides."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"nproc": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gib": round(pages / 2**30, 1),
            "loadavg_before": [round(x, 2) for x in loadavg_before],
            "kernel": platform.release(), "python": sys.version.split()[0], "grpcio": _version("grpcio"),
            "asyncpg": _version("asyncpg"), "uvloop": _version("uvloop"), "protobuf": _version("protobuf"),
            "postgresql": pg_version,
            "postgresql_cluster": "own, fsync on" if managed_cluster else "BENCH_DATABASE_URL"}


def final_hwm(pid: int) -> float | None:
    """The gateway's VmHWM at the end of the run (its whole life)."""
    return procstat.hwm_mb(pid)


def _lookup(entry: dict[str, Any], metric: str) -> float | None:
    value: Any = entry
    for part in metric.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _targets(entry: dict[str, Any], targets: tuple[Target, ...]) -> list[dict[str, Any]]:
    out = []
    for t in targets:
        value = _lookup(entry, t.metric)
        out.append({"scenario": entry.get("label") or entry["name"], "target": t.label(), "value": value,
                    "met": t.met(value)})
    return out


def server_cpu_ms(phase: dict[str, Any]) -> float | None:
    """The server's CPU per call: every serving process's together when several served."""
    value = phase.get("servers_cpu_ms_per_call") or phase.get("server_cpu_ms_per_call")
    return float(value) if value else None


def _floor_ratio(entry: dict[str, Any], floors: dict[str, dict[str, Any]]) -> float | None:
    """How many times the floor's CPU per call the entry's server spent per call (closed loop, same requests)."""
    floor = floors.get(entry.get("floor") or "")
    base = server_cpu_ms(floor["closed"]) if floor else None
    closed = entry.get("closed") or {}
    # Calls that failed did not do the work: with more than 1% of them the CPU per call compares nothing.
    if closed.get("errors", 0) > 0.01 * (closed.get("calls", 0) + closed.get("errors", 0)):
        return None
    own = server_cpu_ms(closed) if closed else None
    return own / base if own and base else None


def speed_targets(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets from this run's entries; a 1 M target measured on another list size is not met."""
    out = []
    for name, what, target in SPEED_TARGETS:
        entry = next((e for e in entries if e["kind"] == "scenario" and (
            e["name"].startswith(name[:-1]) if name.endswith("*") else e["name"] == name)), None)
        value = _lookup(entry, target.metric) if entry else None
        met, note = target.met(value), ""
        if entry is not None and "1 M" in what and entry.get("entries") != LIST_ENTRIES:
            met, note = None, f"measured at {entry.get('entries') or 0:,} entries, not 1,000,000"
        shown = (entry.get("label") or entry["name"]) if entry else name.replace("*", "1M")
        out.append({"scenario": shown, "what": what,
                    "target": target.label(), "value": value, "met": met, "note": note})
    return out


def document(cfg: Config, facts: dict[str, Any], seeded: dict[str, Any] | None, entries: list[dict[str, Any]],
             targets_by_name: dict[str, tuple[Target, ...]], started: datetime, wall_s: float,
             hwm: float | None) -> dict[str, Any]:
    """The JSON document: config, machine, seed, every entry with its ratio, the targets."""
    ceilings = {e["name"]: e for e in entries if e["kind"] == "ceiling"}
    floors = {name: e for name, e in ceilings.items() if e.get("server") == "floor"}
    targets: list[dict[str, Any]] = []
    for entry in entries:
        if entry["kind"] != "scenario":
            continue
        entry["floor_cpu_ratio"] = _floor_ratio(entry, floors)
        if "closed" not in entry:  # measured in-process: no calls, no ceiling to divide by
            entry.setdefault("ratio", None)
            targets += _targets(entry, targets_by_name.get(entry["name"], ()))
            continue
        ceiling = ceilings.get(entry["ceiling"] or "")
        top = ceiling["closed"]["throughput"] if ceiling else 0.0
        entry["ratio"] = entry["closed"]["throughput"] / top if top else None
        # How many times the ceiling's server CPU one call costs: where the gap in throughput comes from.
        base = ceiling["closed"]["server_cpu_ms_per_call"] if ceiling else None
        own = entry["closed"]["server_cpu_ms_per_call"]
        entry["cpu_ratio"] = own / base if own and base else None
        targets += _targets(entry, targets_by_name.get(entry["name"], ()))
    rss = [p["rss_max_mb"] for e in entries if e["server"] == "gateway" for p in (e.get("closed"), e.get("open"))
           if p and p.get("rss_max_mb") is not None]
    overall = {"gateway_rss_max_mb": max(rss) if rss else None, "gateway_vm_hwm_mb": hwm}
    targets += _targets({"name": "gateway", **overall}, (RSS_TARGET,))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    config["database_url"] = "BENCH_DATABASE_URL" if cfg.database_url else ""  # a URL may carry a password
    return {"started_at": started.isoformat(), "wall_s": round(wall_s, 1), "mode": "quick" if cfg.quick else "full",
            "config": config, "machine": facts, "seed": seeded, "results": entries, "overall": overall,
            "targets": targets, "speed_targets": speed_targets(entries)}


def write(doc: dict[str, Any], path: Path) -> None:
    """Writes the JSON document (the directory is made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _f(value: float | None, fmt: str = "{:,.1f}") -> str:
    return "–" if value is None else fmt.format(value)


_COLUMNS = (("scenario", "left"), ("mode", "left"), ("load", "right"), ("throughput", "right"),
            ("p50 ms", "right"), ("p95 ms", "right"), ("p99 ms", "right"), ("errors", "left"), ("RSS MB", "right"),
            ("srv CPU", "right"), ("PG CPU", "right"), ("sim CPU", "right"), ("LG CPU", "right"),
            ("other cores", "right"), ("ratio", "right"))
_MS = "{:.2f}"


def _row(table: Table, phase: dict[str, Any], label: str, ratio: str) -> None:
    load = f"C={phase['concurrency']}" if phase["mode"] == "closed" else f"{phase['target_rate']:,.0f}/s"
    errors = str(phase["errors"]) + (" " + ",".join(f"{k}:{v}" for k, v in phase["errors_by_code"].items())
                                     if phase["errors"] else "")
    if phase.get("exhausted"):
        errors += " (input exhausted)"
    cpu = [_f(phase[k], "{:.3f}") for k in ("server_cpu_ms_per_call", "pg_cpu_ms_per_call", "aux_cpu_ms_per_call",
                                            "loadgen_cpu_ms_per_call")]
    table.add_row(label, phase["mode"], load, f"{phase['units_per_s']:,.0f} {phase['unit']}/s",
                  _f(phase["p50_ms"], _MS), _f(phase["p95_ms"], _MS), _f(phase["p99_ms"], _MS), errors,
                  _f(phase["rss_max_mb"], "{:.0f}"), *cpu, _f(phase["foreign_cores"], "{:.2f}"), ratio)
    for key, sub in phase["sub_latencies"].items():
        table.add_row(f"  └ {key}", "", "", "", _f(sub["p50_ms"], _MS), _f(sub["p95_ms"], _MS),
                      _f(sub["p99_ms"], _MS), *[""] * (len(_COLUMNS) - 7))


def _inprocess_row(table: Table, figures: dict[str, Any], label: str) -> None:
    """A row for figures timed inside one process: no load, no CPU split, latency with microseconds shown."""
    table.add_row(label, figures.get("mode", "in-process"), f"{figures['count']:,} × 1",
                  f"{figures['per_s']:,.0f} {figures['unit']}/s",
                  _f(figures["p50_ms"], "{:.3f}"), _f(figures["p95_ms"], "{:.3f}"), _f(figures["p99_ms"], "{:.3f}"),
                  str(figures.get("errors", 0)), _f(figures.get("rss_mb"), "{:.0f}"), *[""] * 6)


def print_table(doc: dict[str, Any], console: Console) -> None:
    """The figures, then the targets, as rich tables."""
    m = doc["machine"]
    table = Table(title=f"courier gateway benchmark ({doc['mode']}, {doc['started_at'][:19]}Z, {doc['wall_s']} s)",
                  caption=f"{m['nproc']} × {m['cpu_model']}, {m['memory_gib']} GiB · Python {m['python']} · grpcio "
                          f"{m['grpcio']} · asyncpg {m['asyncpg']} · PostgreSQL {m['postgresql']} "
                          f"({m['postgresql_cluster']}) · load average before {m['loadavg_before']}, after "
                          f"{m.get('loadavg_after', '?')}\nCPU columns: ms of CPU per call of the server (gateway or "
                          "echo), PostgreSQL, the authority simulator, the load generators; other cores: CPU used "
                          "meanwhile by processes outside the run")
    for name, justify in _COLUMNS:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for entry in doc["results"]:
        label = (entry.get("label") or entry["name"]) + (" (ceiling)" if entry["kind"] == "ceiling" else "")
        if "inprocess" in entry:
            _inprocess_row(table, entry["inprocess"], label)
            continue
        ratio = f"{entry['ratio']:.2f} × {entry['ceiling']}" if entry.get("ratio") is not None else ""
        if entry.get("cpu_ratio"):
            ratio += f" (CPU/call {entry['cpu_ratio']:.0f}×)"
        if entry.get("floor_cpu_ratio"):
            ratio += f"; CPU/call {entry['floor_cpu_ratio']:.2f} × floor"
        _row(table, entry["closed"], label, ratio)
        if entry.get("trials"):  # a ceiling measured before and after the scenarios: the higher one counts
            rates = " / ".join(f"{t['units_per_s']:,.0f}" for t in entry["trials"])
            table.add_row("  └ before / after", "", "", rates, *[""] * (len(_COLUMNS) - 4))
        if entry.get("open"):
            _row(table, entry["open"], "", "")
    console.print(table)
    for entry in doc["results"]:
        if entry.get("details"):
            title = entry.get("details_title") or f"{entry.get('label') or entry['name']}: details"
            details = Table(title=title, show_header=False)
            details.add_column("what")
            details.add_column("figure")
            for what, figure in entry["details"]:
                details.add_row(what, figure)
            console.print(details)
    _print_speed(doc, console)
    targets = Table(title="targets")
    for name in ("scenario", "target", "measured", "result"):
        targets.add_column(name)
    for t in doc["targets"]:
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[yellow]not measured[/]"}[t["met"]]
        targets.add_row(t["scenario"], t["target"], _f(t["value"], "{:,.3f}"), verdict)
    console.print(targets)


def _print_speed(doc: dict[str, Any], console: Console) -> None:
    """The floors, the gateway's CPU per call against them, and issue 14's targets."""
    floors = [e for e in doc["results"] if e["kind"] == "ceiling" and e.get("server") == "floor"]
    if floors:
        table = Table(title="floor: a bare handler doing the same work (CPU per call of its one process)")
        for name in ("server", "what", "throughput", "server CPU ms/call", "PG CPU ms/call", "CPU vs floor"):
            table.add_column(name)
        for e in floors:
            closed = e["closed"]
            table.add_row(e["name"], e["description"], f"{closed['throughput']:,.0f} calls/s",
                          _f(closed["server_cpu_ms_per_call"], "{:.3f}"), _f(closed["pg_cpu_ms_per_call"], "{:.3f}"),
                          "1.00 × floor")
        for e in doc["results"]:
            if e["kind"] == "scenario" and e.get("floor_cpu_ratio"):
                closed = e["closed"]
                table.add_row(f"  {e.get('label') or e['name']}", f"gateway, same calls as {e['floor']}",
                              f"{closed['throughput']:,.0f} calls/s", _f(server_cpu_ms(closed), "{:.3f}"),
                              _f(closed["pg_cpu_ms_per_call"], "{:.3f}"), f"{e['floor_cpu_ratio']:.2f} × floor")
        console.print(table)
    speed = Table(title="speed targets (issue 14), from this run")
    for name in ("scenario", "target", "measured", "result", "note"):
        speed.add_column(name)
    for t in doc.get("speed_targets", ()):
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[yellow]not measured[/]"}[t["met"]]
        speed.add_row(t["scenario"], f"{t['what']}: {t['target']}", _f(t["value"], "{:,.2f}"), verdict, t["note"])
    console.print(speed)
