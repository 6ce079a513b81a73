"""The benchmark harness end to end, so it cannot rot: quick mode, the verify scenario, the unary echo ceiling."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
async def test_quick_verify_against_the_unary_echo_ceiling(db_dsn: str, tmp_path: Path) -> None:
    # The real code path: `python -m bench` starts the simulator, the gateway and the echo server as processes
    # and drives them from spawned load generators; only the database is the test session's (or TEST_DATABASE_URL).
    out = tmp_path / "result.json"
    env = {**os.environ, "BENCH_DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or db_dsn}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench", "--quick", "--scenarios", "verify", "--ceilings", "unary_echo,floor_verify",
        "--duration", "2", "--warmup", "0.5", "--concurrency", "16", "--seed-shipments", "500", "--no-progress",
        "--out", str(out), cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
    doc = json.loads(out.read_text())
    verify = next(e for e in doc["results"] if e["name"] == "verify")
    echo = next(e for e in doc["results"] if e["name"] == "unary_echo")
    assert echo["closed"]["throughput"] > 0 and echo["closed"]["errors"] == 0
    for phase in (verify["closed"], verify["open"]):
        assert phase["throughput"] > 0, phase
        assert phase["errors"] == 0, phase["errors_by_code"]
        assert phase["p99_ms"] is not None and phase["p99_ms"] >= phase["p50_ms"] > 0
    assert verify["ratio"] is not None and verify["ratio"] > 0
    floor = next(e for e in doc["results"] if e["name"] == "floor_verify")
    assert floor["closed"]["errors"] == 0 and floor["closed"]["server_cpu_ms_per_call"] > 0
    assert verify["floor_cpu_ratio"] == pytest.approx(
        verify["closed"]["server_cpu_ms_per_call"] / floor["closed"]["server_cpu_ms_per_call"])
    speed = {t["what"]: t for t in doc["speed_targets"]}
    assert speed["gateway CPU per verify, × the floor's"]["value"] == verify["floor_cpu_ratio"]
    assert speed["screen p50 at 1 M entries, µs"]["met"] is None  # not run here: never reported as met
    assert verify["closed"]["server_cpu_ms_per_call"] > 0 and verify["closed"]["rss_max_mb"] > 0
    assert doc["machine"]["nproc"] and doc["machine"]["postgresql"]
    assert {t["target"] for t in doc["targets"]} >= {"floor_cpu_ratio <= 1.3", "gateway_rss_max_mb < 300"}
    assert "verify" in output.decode() and "targets" in output.decode()


def test_every_scenario_and_ceiling_is_discovered() -> None:
    from bench.scenario import CEILING_PACKAGE, SCENARIO_PACKAGE, discover

    assert {"verify", "accept", "custody"} <= set(discover(SCENARIO_PACKAGE))
    ceilings = discover(CEILING_PACKAGE)
    assert set(ceilings) >= {"unary_echo", "bidi_echo", "pg_insert", "pg_batch", "floor_verify", "floor_accept"}
    for scenario in discover(SCENARIO_PACKAGE).values():
        assert scenario.ceiling is None or scenario.ceiling in ceilings, scenario.name
        assert scenario.floor is None or ceilings[scenario.floor].server == "floor", scenario.name
