"""`python -m gateway investigate ...` as an investigator runs it: a process against a real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from courier.v1 import blocklist_pb2, custody_pb2, investigation_pb2
from gateway.core.model import Role
from gateway.storage.cluster import free_port
from tests.conftest import REPO
from tests.e2e.requests import ZHANG
from tests.e2e.test_screening import accept, add_entry, items

INV, A, R = Role.INVESTIGATOR, Role.ADMIN, Role.REVIEWER
CASE = "CASE-2026-0042"


def _env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing of make run's or the developer's shell decides where the CLI goes."""
    dropped = ("DATABASE_URL", "GATEWAY_LISTEN", "GATEWAY_TOKEN", "INVESTIGATION_CASE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, "COLUMNS": "250", **extra}


def _argv(gw: Any, action: str, *args: str, role: Role = INV, port: int = 0) -> list[str]:
    return [sys.executable, "-m", "gateway", "investigate", action, *args,
            "--target", f"127.0.0.1:{port or gw.port}", "--token", gw.tokens[role.value]]


async def cli(gw: Any, action: str, *args: str, role: Role = INV, env: dict[str, str] | None = None,
              bare: bool = False) -> tuple[int, str, str]:
    """Runs one action to its end; bare leaves --target and --token to the environment."""
    argv = [sys.executable, "-m", "gateway", "investigate", action, *args] if bare else _argv(gw, action, *args,
                                                                                               role=role)
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env=env or _env(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def _held(gw: Any, what: str = "复刻 球鞋") -> str:
    return (await accept(gw, items=items(what))).waybill_no


async def test_a_search_by_document_number_finds_the_sender_s_parcels(gateway) -> None:  # type: ignore[no-untyped-def]
    sent = {(await accept(gateway)).waybill_no for _ in range(3)}
    code, out, err = await cli(gateway, "search", "--case", CASE, "--document", ZHANG["number"], "--page-size", "2",
                               "--all", "--json")
    assert code == 0, err
    pages = _lines(out)
    assert len(pages) == 2 and pages[0]["next_page_token"] and not pages[1]["next_page_token"]  # --all followed
    found = [s for page in pages for s in page["shipments"]]
    assert {s["waybill_no"] for s in found} == sent and len(found) == 3
    assert all(s["sender"]["document_number"] == ZHANG["number"] for s in found) and pages[0]["as_of"]
    code, out, err = await cli(gateway, "search", "--case", CASE, "--document", ZHANG["number"], "--page-size", "2")
    assert code == 0, err
    assert sum(w in out for w in sent) == 2 and "next page: --page-token " in out and "as of 20" in out
    assert ZHANG["number"] in out and "+8613912345678" in out and "上海市徐汇区" in out  # parties in full


async def test_history_shows_the_parcel_s_events_in_order_with_their_details(gateway) -> None:  # type: ignore[no-untyped-def]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    waybill = await _held(gateway)
    await gateway.custody.ReleaseHold(custody_pb2.ReviewDecisionRequest(
        waybill_no=waybill, reason="receipt seen", case_no="REV-2026-7"), metadata=gateway.md(R))
    # Target, token and case from the environment, as an investigator's shell sets them once.
    env = _env(GATEWAY_LISTEN=f"127.0.0.1:{gateway.port}", GATEWAY_TOKEN=gateway.tokens[INV.value],
               INVESTIGATION_CASE=CASE)
    code, out, err = await cli(gateway, "history", waybill, "--json", env=env, bare=True)
    assert code == 0, err
    history = _lines(out)[0]
    assert [e["kind"] for e in history["events"]] == ["ACCEPTED", "HELD", "RELEASED"]
    assert history["leads"][0]["kind"] == "HELD"
    code, out, err = await cli(gateway, "history", waybill, env=env, bare=True)
    assert code == 0, err
    assert out.index("ACCEPTED") < out.index("RELEASED") and "reviewer's case REV-2026-7" in out
    assert ZHANG["number"] in out and "复刻" in out and "leads" in out and "sender verification" in out


async def _leafed(gw: Any, waybill: str) -> None:
    for _ in range(100):  # the appender runs every 50 ms in tests
        history = await gw.investigation.GetShipmentHistory(
            investigation_pb2.GetShipmentHistoryRequest(case_no=CASE, waybill_no=waybill), metadata=gw.md(INV))
        if all(e.leaf_index >= 0 for e in history.events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the events never reached the evidence log")


async def test_an_export_writes_a_bundle_that_the_offline_verifier_passes(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parcel = await accept(gateway)
    await _leafed(gateway, parcel.waybill_no)
    bundle = tmp_path / "bundle.json"
    code, out, err = await cli(gateway, "export", "--case", CASE, "--waybill", parcel.waybill_no, "--out",
                               str(bundle), "--verify")
    assert code == 0, out + err
    assert f"python -m gateway evidence verify {bundle}" in out and "VERIFIED" in out
    records = json.loads(bundle.read_text(encoding="utf-8"))["records"]
    assert any(r["record"].get("waybill_no") == parcel.waybill_no for r in records)
    verify = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "evidence", "verify", str(bundle),
                                                  cwd=REPO, env=_env(), stdout=asyncio.subprocess.PIPE)
    checked, _ = await asyncio.wait_for(verify.communicate(), 60)
    assert verify.returncode == 0, checked.decode()
    # A row changed in the database since it was logged: --verify says so, and the export exits 1.
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        await conn.execute("ALTER TABLE shipment_events DISABLE TRIGGER shipment_events_append_only")
        await conn.execute("UPDATE shipment_events SET location = location || 'X' WHERE shipment_id = $1::uuid",
                           parcel.shipment_id)
        await conn.execute("ALTER TABLE shipment_events ENABLE TRIGGER shipment_events_append_only")
    finally:
        await conn.close()
    code, out, err = await cli(gateway, "export", "--case", CASE, "--waybill", parcel.waybill_no, "--out",
                               str(bundle), "--verify", "--json")
    assert code == 1, out + err
    assert _lines(out)[0]["verified"] is False


async def _watches_opened(gw: Any) -> int:
    audit = await gw.investigation.ListAuditRecords(investigation_pb2.ListAuditRecordsRequest(case_no=CASE),
                                                    metadata=gw.md(A))
    return sum(r.method.endswith("/WatchLeads") and r.status == "OK" for r in audit.records)


async def _until_watching(gw: Any, opened: int) -> None:
    """Until the gateway has opened that many watches: a watch from now sees only leads raised after it."""
    for _ in range(400):
        if await _watches_opened(gw) >= opened:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the watch never opened")


async def _start_watch(gw: Any, *args: str, env: dict[str, str] | None = None,
                       port: int = 0) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*_argv(gw, "watch", "--case", CASE, *args, port=port), cwd=REPO,
                                                env=env or _env(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


async def _next_leads(proc: asyncio.subprocess.Process, n: int) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    return [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(n)]


async def _interrupt(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Ctrl-C, then the exit status and everything printed."""
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_watch_resumed_from_its_file_shows_only_the_later_leads(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    resume = tmp_path / "watch.cursor"
    first = await _start_watch(gateway, "--json", "--resume-file", str(resume))
    await _until_watching(gateway, 1)
    seen = await _held(gateway)
    lead = (await _next_leads(first, 1))[0]
    assert lead["waybill_no"] == seen and lead["kind"] == "HELD" and "复刻" in lead["hits"][0]["explanation"]
    code, rest, _ = await _interrupt(first)
    assert code == 0 and rest.strip() == "" and resume.read_text().strip() == lead["cursor"]
    missed = [await _held(gateway, f"复刻 外套 {i}") for i in range(2)]  # while no watch runs
    second = await _start_watch(gateway, "--json", "--resume-file", str(resume))
    assert [x["waybill_no"] for x in await _next_leads(second, 2)] == missed
    later = await _held(gateway, "复刻 帽子")
    assert (await _next_leads(second, 1))[0]["waybill_no"] == later
    code, rest, _ = await _interrupt(second)
    assert code == 0 and seen not in rest and resume.read_text().strip() != lead["cursor"]


async def test_the_live_view_shows_new_leads_newest_first_and_ctrl_c_exits_0(gateway) -> None:  # type: ignore[no-untyped-def]
    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    terminal = _env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", TERM="xterm-256color", LINES="40")
    watch = await _start_watch(gateway, "--kind", "held", env=terminal)
    await _until_watching(gateway, 1)
    older, newer = await _held(gateway), await _held(gateway, "复刻 外套")
    assert watch.stdout is not None
    screen = b""
    while newer not in screen.decode(errors="ignore").rsplit(f"case {CASE}", 1)[-1]:  # the latest frame
        screen += await asyncio.wait_for(watch.stdout.read(4096), 30)
    code, rest, err = await _interrupt(watch)
    assert code == 0 and "Traceback" not in err, err
    frame = (screen.decode(errors="replace") + rest).rsplit(f"case {CASE}", 1)[-1]
    assert frame.startswith(" · kinds HELD · 2 leads seen · connected since ")  # the header line
    assert frame.index(newer) < frame.index(older)  # newest at the top


async def test_a_watch_that_loses_its_gateway_reconnects_and_misses_nothing(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.server import create_server

    await add_entry(gateway, kind=blocklist_pb2.ENTRY_KIND_GOODS_KEYWORD, value="复刻")
    # A second gateway of the same database, on a port of its own, that can be stopped and started again.
    own = replace(gateway.settings, listen=f"127.0.0.1:{free_port()}", evidence_append_s=0.0)
    port = int(own.listen.rsplit(":", 1)[1])
    served = [await create_server(own)]
    await served[0].server.start()
    try:
        watch = await _start_watch(gateway, "--json", port=port)
        await _until_watching(gateway, 1)
        first = await _held(gateway)
        assert (await _next_leads(watch, 1))[0]["waybill_no"] == first
        await served.pop().stop(0.5)
        away = await _held(gateway)  # through the fixture's gateway while the watched one is down
        await asyncio.sleep(1.0)  # the watch tries, fails and backs off at least once
        served.append(await create_server(own))
        await served[0].server.start()
        assert (await _next_leads(watch, 1))[0]["waybill_no"] == away
        code, rest, err = await _interrupt(watch)
        assert code == 0 and rest.strip() == "" and "reconnecting in" in err, err
    finally:
        for gw in served:
            await gw.stop(0.5)


async def test_a_malformed_case_number_exits_1_naming_the_field(gateway) -> None:  # type: ignore[no-untyped-def]
    code, out, err = await cli(gateway, "search", "--case", "not a case", "--waybill", "SF000000000001")
    lines = err.splitlines()
    assert code == 1 and out == "", err
    assert lines[0].startswith(f"INVALID_ARGUMENT from the gateway at 127.0.0.1:{gateway.port}: case_no")
    assert any(line.strip().startswith("case_no: ") for line in lines[1:]) and "Traceback" not in err
    code, _, err = await cli(gateway, "watch", "--case", "x", "--json")  # a watch does not retry a bad request
    assert code == 1 and "case_no: " in err
    code, _, err = await cli(gateway, "search", "--case", CASE, "--from", "yesterday")
    assert code == 2 and "--from" in err  # a bad option is argparse's


async def test_audit_lists_the_calls_made_for_the_case(gateway) -> None:  # type: ignore[no-untyped-def]
    waybill = (await accept(gateway)).waybill_no
    assert (await cli(gateway, "search", "--case", CASE, "--waybill", waybill))[0] == 0
    assert (await cli(gateway, "history", "--case", CASE, waybill))[0] == 0
    code, out, err = await cli(gateway, "audit", "--case", CASE, "--json", role=A)
    assert code == 0, err
    records = [r for page in _lines(out) for r in page["records"]]
    assert [r["method"].rsplit("/", 1)[1] for r in records] == ["GetShipmentHistory", "SearchShipments"]
    assert all(r["principal"] == "test-investigator" and r["status"] == "OK" for r in records)
    code, out, err = await cli(gateway, "audit", "--case", CASE, role=A)
    assert code == 0 and "SearchShipments" in out and "GetShipmentHistory" in out and "2 audit records" in out
    code, _, err = await cli(gateway, "audit")  # an investigator's token: the audit is for admins
    assert code == 1 and err.startswith("PERMISSION_DENIED from the gateway")


async def test_head_prints_the_signed_tree_head(gateway) -> None:  # type: ignore[no-untyped-def]
    await _leafed(gateway, (await accept(gateway)).waybill_no)
    code, out, err = await cli(gateway, "head", "--case", CASE, "--fresh", "--json")
    assert code == 0, err
    head = _lines(out)[0]
    latest = await gateway.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE),
                                                     metadata=gateway.md(INV))
    assert head["tree_size"] == latest.tree_size > 0 and head["root_hash_hex"] == latest.root_hash.hex()
    code, out, err = await cli(gateway, "head", "--case", CASE)
    assert code == 0, err
    assert latest.root_hash.hex() in out and latest.key_id in out and latest.verifier_keys[0] in out
    assert latest.checkpoint.splitlines()[0] in out  # the checkpoint note's origin line
