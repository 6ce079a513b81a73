"""Operations end to end, on `python -m gateway serve` as a process: JSON log lines with request ids and no
numbers in them, the ids echoed to callers, and the Prometheus metrics a scrape reads."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from courier.v1 import (
    acceptance_pb2,
    acceptance_pb2_grpc,
    blocklist_pb2,
    blocklist_pb2_grpc,
    inspection_pb2,
    inspection_pb2_grpc,
)
from gateway.simulators.identity_authority import start_simulator
from gateway.storage.cluster import free_port
from tests.conftest import FIXTURES, REPO, b64key, make_tokens
from tests.e2e.processes import wait_for_line
from tests.e2e.requests import ZHANG, accept_request, verify_request

DOCUMENT, PHONE, RECIPIENT_PHONE = ZHANG["number"], "13800138000", "13912345678"
# Every form of the numbers that must never reach the log: plain, spaced as people write them, grouped.
SECRETS = (DOCUMENT, "110101 19900307 1233", PHONE, "138 0013 8000", "138-0013-8000", RECIPIENT_PHONE,
           "139 1234 5678", "E12345678")


@dataclass
class Served:
    """A gateway process serving gRPC and metrics."""

    proc: asyncio.subprocess.Process
    port: int
    metrics_port: int
    tokens: dict[str, str]

    def md(self, role: str, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
        """Metadata of a call by a principal of this role, with an x-request-id when given."""
        rid = (("x-request-id", request_id),) if request_id is not None else ()
        return (("authorization", f"Bearer {self.tokens[role]}"), *rid)


def _env(db_dsn: str, authority_url: str, port: int, metrics_port: int) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": db_dsn, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key(), "IDENTITY_AUTHORITY_URL": authority_url,
            "IDENTITY_AUTHORITY_KEY": "k", "METRICS_PORT": str(metrics_port), "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO", "SHUTDOWN_GRACE_S": "2", "EVIDENCE_APPEND_S": "0.05",
            "EVIDENCE_SIGNING_KEY": b64key()}


@pytest.fixture
async def served(db_dsn: str) -> AsyncIterator[Served]:
    """`python -m gateway serve` with JSON logs and metrics, against the authority simulator."""
    sim = await start_simulator(FIXTURES / "identity" / "authority_registry.json", api_key="k")
    port, metrics_port = free_port(), free_port()
    tokens = await make_tokens(db_dsn)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", env=_env(db_dsn, sim.url, port, metrics_port), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        await wait_for_line(proc.stdout, "metrics on", [], timeout_s=60)
        yield Served(proc, port, metrics_port, tokens)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sim.close()


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _metadata(pairs: Any) -> dict[str, str]:
    return {k: v for k, v in pairs or ()}


async def _calls(gw: Served) -> dict[str, Any]:
    """Every kind of call the log must describe; answers what each caller was told."""
    told: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}") as channel:
        acceptance = acceptance_pb2_grpc.AcceptanceStub(channel)
        await blocklist_pb2_grpc.BlocklistStub(channel).AddEntry(blocklist_pb2.AddEntryRequest(
            kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="高仿", action=blocklist_pb2.ENTRY_ACTION_HOLD,
            source=blocklist_pb2.EntrySource(agency="市场监督管理局", case_no="CASE-2026-0042", legal_basis="商标法")),
            metadata=gw.md("reviewer"))
        await asyncio.sleep(0.5)  # the live list takes the entry through NOTIFY
        call = acceptance.VerifySender(verify_request(), metadata=gw.md("terminal", "caller-id-1"))
        ref = (await call).sender_ref
        told["echoed"] = _metadata(await call.trailing_metadata()).get("x-request-id")
        spaced = acceptance.VerifySender(verify_request(phone="138 0013 8000"), metadata=gw.md("terminal", "x" * 65))
        await spaced
        told["replaced"] = _metadata(await spaced.trailing_metadata()).get("x-request-id")
        numbered = acceptance.VerifySender(verify_request(), metadata=gw.md("terminal", PHONE))
        await numbered
        told["numbered"] = _metadata(await numbered.trailing_metadata()).get("x-request-id")
        held = accept_request(ref, recipient=acceptance_pb2.Recipient(
            name="李秀英", phone="139 1234 5678", address=accept_request().recipient.address),
            items=[acceptance_pb2.Item(description="高仿 手提包", quantity=1, declared_value_fen=8800)])
        told["held"] = await acceptance.AcceptParcel(held, metadata=gw.md("terminal", "accept-1"))
        told["replay"] = await acceptance.AcceptParcel(held, metadata=gw.md("terminal", "accept-2"))
        told["rejected"] = await acceptance.VerifySender(  # a passport number given as a resident ID
            verify_request(document_number="E12345678", phone="138-0013-8000"), metadata=gw.md("terminal", "bad-1"))
        with pytest.raises(grpc.aio.AioRpcError) as bad_body:
            await acceptance.AcceptParcel(acceptance_pb2.AcceptParcelRequest(), metadata=gw.md("terminal", "bad-2"))
        told["bad_body"] = bad_body.value
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await acceptance.VerifySender(verify_request(), metadata=(("x-request-id", "anon-1"),))
        told["anonymous"] = anonymous.value
        scans = inspection_pb2_grpc.InspectionStub(channel)
        acks = [a async for a in scans.StreamScans(iter([inspection_pb2.ScanEvent(
            event_id="obs-0000001", device_id="DWS-01", kind=inspection_pb2.SCAN_KIND_DWS, waybill_no=held.waybill_no,
            location="SH-HUB-02/line-3")]), metadata=gw.md("scanner", "scan-1"), timeout=20)]
        told["scan"] = acks[0]
    return told


async def test_json_logs_carry_request_ids_and_no_numbers_and_metrics_count_decisions(served: Served) -> None:
    told = await _calls(served)
    assert told["echoed"] == "caller-id-1"
    assert told["replaced"] and told["replaced"] != "x" * 65  # not well formed: a new id
    assert told["numbered"] and told["numbered"] != PHONE  # a phone number as the id: a new one
    assert told["held"].decision == acceptance_pb2.ACCEPT_DECISION_HELD and told["replay"].replayed
    assert _metadata(told["bad_body"].trailing_metadata())["x-request-id"] == "bad-2"
    assert told["anonymous"].code() == grpc.StatusCode.UNAUTHENTICATED
    assert _metadata(told["anonymous"].trailing_metadata())["x-request-id"] == "anon-1"
    assert told["scan"].decision == inspection_pb2.ROUTING_DECISION_DIVERT_TO_HOLD
    assert told["rejected"].verdict == acceptance_pb2.VERDICT_REJECTED

    await asyncio.sleep(0.5)  # the evidence appender's next round
    metrics = await asyncio.to_thread(_scrape, served.metrics_port)

    def value(name: str, **labels: str) -> float:
        return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("gateway_decisions_total", rpc="VerifySender", outcome="VERIFIED") == 3
    assert value("gateway_decisions_total", rpc="VerifySender", outcome="REJECTED") == 1
    assert value("gateway_decisions_total", rpc="AcceptParcel", outcome="HELD") == 1  # the replay is not counted
    assert value("gateway_decisions_total", rpc="StreamScans", outcome="DIVERT_TO_HOLD") == 1
    assert value("gateway_screening_hits_total", kind="GOODS_KEYWORD", action="HOLD") == 1
    assert value("gateway_rpc_total", method="/courier.v1.Acceptance/VerifySender", code="UNAUTHENTICATED") == 1
    assert value("gateway_rpc_total", method="/courier.v1.Acceptance/AcceptParcel", code="INVALID_ARGUMENT") == 1
    assert value("gateway_rpc_seconds_count", method="/courier.v1.Acceptance/VerifySender") == 5
    assert value("gateway_db_pool_connections", pool="primary", state="max") == 16
    assert 1 <= value("gateway_db_pool_connections", pool="primary", state="size") <= 16
    assert value("gateway_group_commit_batch_size_count", lane="insert_verifications") == 4  # one each, no load
    assert value("gateway_group_commit_batch_size_bucket", lane="insert_verifications", le="1.0") == 4
    assert value("gateway_evidence_log_size") >= 4  # two verifications, the acceptance, the scan at least

    served.proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(served.proc.communicate(), timeout=20)
    assert served.proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines()]  # every line is one JSON object
    access = {line["request_id"]: line for line in lines if line["logger"] == "gateway.access"}
    for rid, code in (("caller-id-1", "OK"), ("accept-1", "OK"), ("bad-2", "INVALID_ARGUMENT"),
                      ("anon-1", "UNAUTHENTICATED"), ("scan-1", "OK"), (told["replaced"], "OK")):
        assert access[rid]["code"] == code, access[rid]
        assert access[rid]["duration_ms"] >= 0 and access[rid]["level"] == "INFO" and access[rid]["ts"].endswith("Z")
    assert access["caller-id-1"]["method"] == "/courier.v1.Acceptance/VerifySender"
    assert access["caller-id-1"]["principal"] == "test-terminal" and "principal" not in access["anon-1"]
    assert access["scan-1"]["principal"] == "test-scanner"
    assert all(line["request_id"] for line in lines if "method" in line)
    everything = out.decode() + err.decode()
    for secret in SECRETS:
        assert secret not in everything, f"{secret!r} reached the gateway's output"
    assert served.tokens["terminal"] not in everything


async def test_a_taken_metrics_port_stops_serve_naming_the_setting(db_dsn: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(db_dsn, "http://127.0.0.1:9", free_port(), port)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", env=env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2, out.decode() + err.decode()
    assert f"METRICS_PORT: cannot listen on 127.0.0.1:{port}" in err.decode()
    assert b"gateway listening" not in out


async def test_the_pool_collector_reports_each_registered_pool(db_dsn: str) -> None:
    from gateway.rpc.metrics import PoolCollector
    from gateway.storage.db import create_pool

    collector = PoolCollector()
    primary = await create_pool(db_dsn, min_size=2, max_size=5)
    replica = await create_pool(db_dsn, min_size=1, max_size=3)
    try:
        collector.register("primary", primary)
        collector.register("replica", replica)
        async with primary.acquire():
            samples = {(s.labels["pool"], s.labels["state"]): s.value
                       for family in collector.collect() for s in family.samples}
        assert samples == {("primary", "size"): 2, ("primary", "idle"): 1, ("primary", "max"): 5,
                           ("replica", "size"): 1, ("replica", "idle"): 1, ("replica", "max"): 3}
        collector.unregister("replica", primary)  # not the pool registered under that name: kept
        await replica.close()  # a closed pool is skipped, not read
        assert {s.labels["pool"] for f in collector.collect() for s in f.samples} == {"primary"}
    finally:
        await primary.close()
        if not replica.is_closing():
            await replica.close()
