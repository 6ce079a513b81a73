"""The history seed at a small scale: what its docstring promises is in the database, its evidence log is the
gateway's own (every leaf, the stored tree, an exported bundle the offline verifier passes), and a gateway
started on it appends after the seeded records and finds seeded people."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

from bench.seed_history import CYCLE, HistoryPlan, HistorySeedResult, seed_history
from courier.v1 import acceptance_pb2, investigation_pb2, investigation_pb2_grpc
from gateway.core.evidence import merkle
from gateway.core.evidence.records import record_leaf_hash
from gateway.core.evidence_service import EvidenceService, Signer, export
from gateway.core.model import Role
from gateway.security.sealing import Sealer
from gateway.settings import Settings
from gateway.storage.db import create_pool
from gateway.storage.evidence import EvidenceRepository
from tests.conftest import REPO, make_tokens
from tests.e2e.requests import accept_request, verify_request

SHIPMENTS = 3_000
CASE = "沪公（经）立字〔2026〕9号"
_EVENT_KINDS = {"ACCEPTED": ["ACCEPTED"], "STORED": ["ACCEPTED", "STORED"],
                "DISPATCHED": ["ACCEPTED", "STORED", "DISPATCHED"], "HELD": ["ACCEPTED", "HELD"],
                "REFUSED": ["REFUSED"]}


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH straight from its definition, over every leaf hash (no stored node used)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(mth(hashes[:k]), mth(hashes[k:]))


async def seeded(settings: Settings) -> HistorySeedResult:
    """SHIPMENTS shipments seeded with the gateway's keys (two workers, as small as the tasks allow)."""
    sealer = Sealer(settings.data_key, settings.index_key)
    return await seed_history(settings.database_url, SHIPMENTS, sealer, workers=2, show_progress=False, check=0)


def test_the_plan_counts_what_the_state_cycle_holds() -> None:
    plan = HistoryPlan("BHTEST-", 250, 600, None, 1, 0, 0, 0, 0)  # type: ignore[arg-type]
    states = [plan.state_of(n) for n in range(250)]
    assert plan.events == sum(len(_EVENT_KINDS[s]) for s in states)
    assert plan.leads == sum(s in ("HELD", "REFUSED") for s in states) == 5  # offsets 37 and 73 of each 100
    assert [plan.flagged_shipment(k) for k in range(5)] == [n for n, s in enumerate(states) if s in ("HELD",
                                                                                                    "REFUSED")]
    assert plan.event_leaf(1, 1) == 600 + len(_EVENT_KINDS[states[0]])  # the people's verifications come first


async def test_the_seeded_history_is_as_documented_and_its_log_is_the_gateways(settings: Settings,
                                                                              tmp_path: Path) -> None:
    result = await seeded(settings)
    plan = result.plan
    conn = await asyncpg.connect(settings.database_url)
    try:
        states = Counter(dict(await conn.fetch("SELECT state, count(*) FROM shipments GROUP BY state")))
        histories = {r["waybill_no"]: (r["state"], r["last_seq"], r["kinds"]) for r in await conn.fetch(
            "SELECT s.waybill_no, s.state, s.last_seq, array_agg(e.kind ORDER BY e.seq) AS kinds FROM shipments s"
            " JOIN shipment_events e ON e.shipment_id = s.id GROUP BY s.id")}
        leads = await conn.fetch("SELECT l.waybill_no, l.kind, l.origin, s.state FROM leads l"
                                 " JOIN shipments s ON s.id = l.shipment_id")
        verifications = await conn.fetchval("SELECT count(*) FROM sender_verifications WHERE verdict = 'VERIFIED'")
        leaves = await conn.fetch("SELECT leaf_index, source, source_key, leaf_hash FROM evidence_leaves"
                                  " ORDER BY leaf_index")
        nodes = {(r["level"], r["idx"]): bytes(r["hash"]) for r in await conn.fetch("SELECT * FROM evidence_nodes")}
        ids = [r["id"] for r in await conn.fetch("SELECT id::text AS id FROM shipments")]
    finally:
        await conn.close()

    # Counts, states and events as the module's docstring says.
    expected = Counter(plan.state_of(n) for n in range(SHIPMENTS))
    assert states == expected and expected["HELD"] == expected["REFUSED"] == SHIPMENTS // CYCLE
    assert len(histories) == SHIPMENTS and verifications == plan.people == result.plan.people
    for n in range(SHIPMENTS):
        state, last_seq, kinds = histories[plan.waybill(n)]
        assert (state, kinds, last_seq) == (plan.state_of(n), _EVENT_KINDS[state], len(kinds)), n
    assert sum(len(k) for _, _, k in histories.values()) == plan.events == result.events
    assert sorted((r["waybill_no"], r["kind"], r["origin"]) for r in leads) == sorted(
        (plan.waybill(n), plan.state_of(n), "ACCEPTANCE") for n in range(SHIPMENTS)
        if plan.state_of(n) in ("HELD", "REFUSED"))

    # Every leaf: in order, the verifications then the events, each hash the gateway's record hash of its row.
    assert [r["leaf_index"] for r in leaves] == list(range(plan.leaves)) and result.leaves == plan.leaves
    assert [r["source"] for r in leaves] == ["V"] * plan.people + ["E"] * plan.events
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        repo = EvidenceRepository(pool)
        for code in ("V", "E"):
            mine = [r for r in leaves if r["source"] == code]
            records = await repo.records(code, [r["source_key"] for r in mine])
            assert len(records) == len(mine)
            wrong = [r["leaf_index"] for r in mine if record_leaf_hash(records[r["source_key"]]) != r["leaf_hash"]]
            assert wrong == [], f"{len(wrong)} {code} leaves differ from their records, the first {wrong[:5]}"
        hashes = [bytes(r["leaf_hash"]) for r in leaves]

        # The stored tree: exactly the complete level-8k nodes, and the root from them is the root of the leaves.
        assert nodes == {(level, i): mth(hashes[i << level:(i + 1) << level])
                         for level in range(merkle.GROUP, plan.leaves.bit_length(), merkle.GROUP)
                         for i in range(plan.leaves >> level)}
        assert len(nodes) == result.nodes > 0
        signer = Signer("bench-test", Ed25519PrivateKey.from_private_bytes(settings.evidence_signing_key))
        service = EvidenceService(repo, signer, origin="courier-gateway.test/evidence", past_keys=(),
                                  clock=lambda: plan.created_at(SHIPMENTS))
        assert await service.root(plan.leaves) == mth(hashes)

        # The whole log exported through the gateway's export, then checked by `python -m gateway evidence verify`.
        bundle = await export(service, repo, shipment_ids=ids, case_no=CASE, scope={"case_no": CASE},
                              include_audit=False)
    finally:
        await pool.close()
    assert (bundle.records, bundle.pending, bundle.head.tree_size) == (plan.leaves, 0, plan.leaves)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle.bundle))
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gateway", "evidence", "verify", str(path)],
                                   cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert f"{plan.leaves} of {plan.leaves} records verified" in done.stdout


async def test_a_gateway_on_the_seed_appends_after_it_and_finds_seeded_people(settings: Settings,
                                                                              authority_simulator: object) -> None:
    from gateway.server import create_server

    result = await seeded(settings)
    plan = result.plan
    s = replace(settings, identity_authority_url=authority_simulator.url,  # type: ignore[attr-defined]
                identity_authority_key="test-key")
    built = await create_server(s)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        tokens = await make_tokens(s.database_url)

        def md(role: Role) -> tuple[tuple[str, str], ...]:
            return (("authorization", f"Bearer {tokens[role.value]}"),)

        from courier.v1 import acceptance_pb2_grpc

        acceptance = acceptance_pb2_grpc.AcceptanceStub(channel)  # type: ignore[no-untyped-call]
        verified = await acceptance.VerifySender(verify_request(), metadata=md(Role.TERMINAL))
        accepted = await acceptance.AcceptParcel(accept_request(verified.sender_ref), metadata=md(Role.TERMINAL))
        assert accepted.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
        conn = await asyncpg.connect(s.database_url)
        try:
            new = await conn.fetch("SELECT l.leaf_index, l.source FROM evidence_leaves l WHERE leaf_index >= $1"
                                   " ORDER BY leaf_index", plan.leaves)
            for _ in range(100):  # the appender runs every 50 ms in the tests' settings
                if len(new) >= 2:
                    break
                await asyncio.sleep(0.1)
                new = await conn.fetch("SELECT l.leaf_index, l.source FROM evidence_leaves l WHERE leaf_index >= $1"
                                       " ORDER BY leaf_index", plan.leaves)
            keys = await conn.fetch("SELECT source, source_key FROM evidence_leaves WHERE leaf_index >= $1",
                                    plan.leaves)
            event_id = await conn.fetchval("SELECT e.id FROM shipment_events e JOIN shipments s"
                                           " ON s.id = e.shipment_id WHERE s.waybill_no = $1", accepted.waybill_no)
            total = await conn.fetchval("SELECT count(*) FROM evidence_leaves")
            distinct = await conn.fetchval("SELECT count(DISTINCT (source, source_key)) FROM evidence_leaves")
            hashes = [bytes(r["leaf_hash"]) for r in await conn.fetch("SELECT leaf_hash FROM evidence_leaves"
                                                                       " ORDER BY leaf_index")]
        finally:
            await conn.close()
        # The new verification and the new event follow the seeded leaves; no seeded row was appended again.
        assert [r["leaf_index"] for r in new][:2] == [plan.leaves, plan.leaves + 1]
        found = {(r["source"], r["source_key"]) for r in keys}
        assert ("E", str(event_id)) in found and event_id > plan.event_base + plan.events
        assert ("V", str(plan.verification_base + plan.people + 1)) in found
        assert total == distinct == len(hashes) >= plan.leaves + 2
        pool = await create_pool(s.database_url, min_size=1, max_size=1)
        try:  # the appender's nodes on top of the seeded ones still give the root of every leaf
            root = merkle.root_hash(len(hashes), await EvidenceRepository(pool).read_stored(
                merkle.needed_for_root(len(hashes))))
        finally:
            await pool.close()
        assert root == mth(hashes)

        investigation = investigation_pb2_grpc.InvestigationStub(channel)  # type: ignore[no-untyped-call]
        probe = result.probes[7]
        sent = {plan.waybill(n) for n in range(SHIPMENTS) if plan.sender_of(n) == probe.index}
        received = {plan.waybill(n) for n in range(SHIPMENTS) if plan.recipient_of(n) == probe.index}
        assert sent and received

        async def search(**fields: object) -> set[str]:
            answer = await investigation.SearchShipments(
                investigation_pb2.SearchRequest(case_no=CASE, page_size=100, **fields), metadata=md(Role.INVESTIGATOR))
            assert not answer.next_page_token
            return {x.waybill_no for x in answer.shipments}

        by_document = await search(document_number=probe.document_number)
        assert by_document == sent
        assert await search(phone=probe.phone_e164) == sent | received
        assert sent <= await search(name=probe.name)
        first = min(sent)
        at = plan.created_at(int(first.removeprefix(plan.prefix)))
        window = [Timestamp(), Timestamp()]
        window[0].FromDatetime(at - timedelta(days=15))
        window[1].FromDatetime(at + timedelta(days=15))
        in_month = await search(name=probe.name, from_time=window[0], to_time=window[1])
        assert first in in_month and in_month <= await search(name=probe.name)

        held = next(n for n in range(SHIPMENTS) if plan.state_of(n) == "HELD")
        history = await investigation.GetShipmentHistory(investigation_pb2.GetShipmentHistoryRequest(
            case_no=CASE, waybill_no=plan.waybill(held)), metadata=md(Role.INVESTIGATOR))
        assert [(e.kind, e.leaf_index) for e in history.events] == [
            ("ACCEPTED", plan.event_leaf(held, 1)), ("HELD", plan.event_leaf(held, 2))]
        assert [x.kind for x in history.leads] == ["HELD"]
        proof = await investigation.GetInclusionProof(investigation_pb2.GetInclusionProofRequest(
            case_no=CASE, leaf_index=plan.event_leaf(held, 2)), metadata=md(Role.INVESTIGATOR))
        head = await investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE),
                                               metadata=md(Role.INVESTIGATOR))
        assert proof.leaf_index == plan.event_leaf(held, 2) and proof.tree_size == head.tree_size
        assert merkle.verify_inclusion(proof.leaf_hash, proof.leaf_index, proof.tree_size, list(proof.proof),
                                       head.root_hash)
        assert proof.leaf_hash == hashes[plan.event_leaf(held, 2)]
    except grpc.aio.AioRpcError as error:  # pragma: no cover - a failure names the call's status
        pytest.fail(f"{error.code()}: {error.details()}")
    finally:
        await channel.close()
        await built.stop(0.5)


async def test_python_m_bench_seed_history_seeds_a_fresh_database(db_dsn: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bench.seed", "--history", "700", "--dsn", db_dsn, "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "seeded a history of 700 shipments, 980 events, 14 leads and 1,580 evidence leaves" in done.stdout
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM shipments") == 700
        assert await conn.fetchval("SELECT count(*) FROM evidence_leaves") == 1580
    finally:
        await conn.close()
    again = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bench.seed", "--history", "700", "--dsn", db_dsn, "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert again.returncode != 0 and "needs a fresh database" in again.stderr
