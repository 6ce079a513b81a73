"""Key rotation end to end: data sealed and indexed under key A keeps reading, matching and screening on gateways
with key B current and A past; `keys rotate` re-keys everything while a gateway keeps accepting parcels (none
lost); afterwards a gateway with key B alone serves it all and the evidence log still verifies, while a row
changed after the rotation still fails. And the evidence-signing key rotated: old heads verify by the old key
kept in EVIDENCE_PAST_KEYS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from stdnum.cn import uscc

from courier.v1 import acceptance_pb2, blocklist_pb2, custody_pb2, investigation_pb2
from gateway.core.model import Role
from gateway.security.sealing import Sealer, generate_key, key_id
from gateway.settings import Settings
from tests.conftest import REPO, RunningGateway, make_tokens
from tests.e2e.requests import ZHANG, accept_request, verify_request
from tests.e2e.test_acceptance import customer_request

T, R, INV = Role.TERMINAL, Role.REVIEWER, Role.INVESTIGATOR
CASE = "沪公（经）立字〔2026〕207号"
LISTED_PHONE = "13700137000"  # a recipient phone on the blocklist, listed while key A was the index key
SOURCE = blocklist_pb2.EntrySource(agency="市场监管局", case_no="2026-007")
CREDIT_CODE = "91110108MA01AB2C3" + uscc.calc_check_digit("91110108MA01AB2C3")


@asynccontextmanager
async def serving(settings: Settings, tokens: dict[str, str] | None = None) -> AsyncIterator[RunningGateway]:
    """A real gateway on a free port with these settings (and a token per role, made on first use)."""
    from gateway.server import create_server

    built = await create_server(settings)
    await built.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield RunningGateway(built.port, channel, settings, tokens or await make_tokens(settings.database_url))
    finally:
        await channel.close()
        await built.stop(0.5)


async def accepted(gw: RunningGateway, **overrides: Any) -> acceptance_pb2.AcceptParcelResponse:
    ref = (await gw.acceptance.VerifySender(verify_request(), metadata=gw.md(T))).sender_ref
    return await gw.acceptance.AcceptParcel(accept_request(ref, **overrides), metadata=gw.md(T))


def to_listed_phone() -> acceptance_pb2.Recipient:
    from courier.v1 import common_pb2

    return acceptance_pb2.Recipient(name="王强", phone=LISTED_PHONE,
                                    address=common_pb2.Address(region_code="310104", detail="漕溪北路 90 号"))


async def found_by_document(gw: RunningGateway) -> list[investigation_pb2.ShipmentRecord]:
    """Every shipment the sender's document number finds, page by page."""
    found: list[investigation_pb2.ShipmentRecord] = []
    token = ""
    while True:
        page = await gw.investigation.SearchShipments(investigation_pb2.SearchRequest(
            case_no=CASE, document_number=ZHANG["number"], page_size=200, page_token=token), metadata=gw.md(INV))
        found += page.shipments
        if not (token := page.next_page_token):
            return found


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def key_env(settings: Settings) -> dict[str, str]:
    """The environment a command run by an operator gets: the database and the keys, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_", "EVIDENCE_"))}
    return {**env, "COLUMNS": "200", "DATABASE_URL": settings.database_url, "GATEWAY_DATA_KEY": b64(settings.data_key),
            "GATEWAY_INDEX_KEY": b64(settings.index_key),
            "GATEWAY_PAST_DATA_KEYS": ",".join(b64(k) for k in settings.past_data_keys),
            "GATEWAY_PAST_INDEX_KEYS": ",".join(b64(k) for k in settings.past_index_keys)}


async def command(*args: str, env: Mapping[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=REPO, env=dict(env),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def key_status(settings: Settings) -> dict[str, Any]:
    code, out, err = await command("keys", "status", "--json", env=key_env(settings))
    assert code == 0, out + err
    status: dict[str, Any] = json.loads(out)
    return status


async def verify_bundle_file(bundle_json: str, path: Path, *keys: str) -> tuple[int, str]:
    await asyncio.to_thread(path.write_text, bundle_json, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_", "EVIDENCE_"))}
    code, out, err = await command("evidence", "verify", str(path), *(f"--key={k}" for k in keys),
                                   env={**env, "COLUMNS": "200"})
    return code, out + err


async def appended(dsn: str) -> None:
    """Waits until every verification and shipment event is in the evidence log."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            missing = await conn.fetchval(
                "SELECT (SELECT count(*) FROM sender_verifications) + (SELECT count(*) FROM shipment_events)"
                " - (SELECT count(*) FROM evidence_leaves WHERE source IN ('V', 'E'))")
            if missing == 0:
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("records never reached the evidence log")


def v1(key: bytes, plaintext: str, context: str) -> bytes:
    """A value sealed as the gateway sealed before key ids: 0x01 + nonce + AES-GCM with the context as AAD."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())


async def whole_log_bundle(settings: Settings) -> str:
    """A bundle of every leaf of the log, first to last, each record rebuilt from its row as it is now."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.core.evidence.bundle import ProvenRecord, build_bundle
    from gateway.core.evidence_service import EvidenceService, Signer
    from gateway.storage.db import create_pool
    from gateway.storage.evidence import EvidenceRepository

    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        repo = EvidenceRepository(pool)
        signer = Signer(settings.evidence_key_name, Ed25519PrivateKey.from_private_bytes(settings.evidence_signing_key))
        service = EvidenceService(repo, signer, origin=settings.evidence_origin, past_keys=settings.evidence_past_keys,
                                  clock=lambda: datetime.now(UTC))
        head = await service.sign_now()
        leaves = []
        for index in range(head.tree_size):
            found = await repo.leaf_record(index)
            assert found is not None, index
            leaves.append((index, found[0]))
        proven = await service.prove_all(leaves, head)
        bundle = build_bundle([ProvenRecord(p.leaf_index, p.record, p.proof) for p in proven], checkpoint=head.note,
                              verifier_keys=service.verifier_keys, scope={"log": "every leaf"},
                              generated_at=datetime.now(UTC), check=False)
        return json.dumps(bundle, ensure_ascii=False)
    finally:
        await pool.close()


async def test_data_and_index_keys_rotate_without_downtime(settings, authority_simulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = replace(settings, identity_authority_url=authority_simulator.url, identity_authority_key="test-key")
    b_data, b_index = generate_key(), generate_key()
    during = replace(a, data_key=b_data, index_key=b_index, past_data_keys=(a.data_key,),
                     past_index_keys=(a.index_key,))
    after = replace(a, data_key=b_data, index_key=b_index)
    a_ids = {key_id(a.data_key, purpose="data"), key_id(a.index_key, purpose="index"), "v1"}
    b_ids = {"data": key_id(b_data, purpose="data"), "index": key_id(b_index, purpose="index")}

    # Key A: parcels, a listed phone; one verification and one shipment as they were sealed before key ids.
    async with serving(a) as gw:
        tokens = gw.tokens
        old = [(await accepted(gw)).waybill_no for _ in range(3)]
        customer = (await gw.acceptance.RegisterContractCustomer(customer_request(credit_code=CREDIT_CODE),
                                                                 metadata=gw.md(Role.ADMIN))).customer_id
        contract = [(await gw.acceptance.AcceptParcel(accept_request(contract_customer_id=customer),
                                                      metadata=gw.md(T))).waybill_no]
        entry = await gw.blocklist.AddEntry(blocklist_pb2.AddEntryRequest(
            kind=blocklist_pb2.ENTRY_KIND_PHONE, value=LISTED_PHONE, action=blocklist_pb2.ENTRY_ACTION_HOLD,
            source=SOURCE), metadata=gw.md(R))
        await appended(a.database_url)
    conn = await asyncpg.connect(a.database_url)
    try:
        await conn.execute("UPDATE sender_verifications SET phone_enc = $1 WHERE id = (SELECT min(id) FROM"
                           " sender_verifications)", v1(a.data_key, "+8613800138000", "phone"))
        await conn.execute("UPDATE shipments SET recipient_phone_enc = $1 WHERE waybill_no = $2",
                           v1(a.data_key, "+8613912345678", "phone"), old[0])
    finally:
        await conn.close()

    # Key B current, A past: everything old reads, matches and screens; new data is sealed under B.
    async with serving(during, tokens) as gw:
        new = [(await accepted(gw)).waybill_no for _ in range(2)]
        found = await found_by_document(gw)
        assert {s.waybill_no for s in found} == {*old, *new, *contract}  # old rows carry A's index, new rows B's
        assert all(s.recipient.phone == "+8613912345678" for s in found)
        assert all(s.sender.document_number == ZHANG["number"] for s in found if s.waybill_no not in contract)
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # registered under A's index: still a duplicate
            await gw.acceptance.RegisterContractCustomer(customer_request(credit_code=CREDIT_CODE),
                                                         metadata=gw.md(Role.ADMIN))
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # listed under A's index: still a duplicate
            await gw.blocklist.AddEntry(blocklist_pb2.AddEntryRequest(
                kind=blocklist_pb2.ENTRY_KIND_PHONE, value=LISTED_PHONE, action=blocklist_pb2.ENTRY_ACTION_HOLD,
                source=SOURCE), metadata=gw.md(R))
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        history = await gw.investigation.GetShipmentHistory(investigation_pb2.GetShipmentHistoryRequest(
            case_no=CASE, waybill_no=old[0]), metadata=gw.md(INV))
        assert history.verification.document_number == ZHANG["number"]
        parcel = await gw.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=old[1]), metadata=gw.md(T))
        assert parcel.waybill_no == old[1]
        held = await accepted(gw, recipient=to_listed_phone())  # the entry still carries A's index
        assert held.decision == acceptance_pb2.ACCEPT_DECISION_HELD, held
        assert [h.entry_id for h in held.hits if h.kind == "PHONE"] == [entry.id]
        before = await key_status(during)
        assert set(before["data"]) & a_ids and set(before["index"]) & a_ids

        # The rotation, in batches of 3 rows, while the gateway keeps accepting parcels.
        acknowledged: list[str] = []
        rotating = asyncio.create_task(command("keys", "rotate", "--batch", "3", env=key_env(during)))
        while not rotating.done() or len(acknowledged) < 5:
            acknowledged.append((await accepted(gw)).waybill_no)
            await asyncio.sleep(0.05)  # a steady trickle, not a flood, on a machine shared with the rotation
        code, out, err = await rotating
        assert code == 0, out + err
        assert "sender_verifications" in out and "every value is under the current keys" in out, out
        status = await key_status(during)
        assert set(status["data"]) == {b_ids["data"]} and set(status["index"]) == {b_ids["index"]}, status
        assert sum(t["rekeyed"] for t in status["tables"].values()) == 0
        await appended(a.database_url)

    # Key B alone serves everything, the background parcels included; the listed phone still screens.
    async with serving(after, tokens) as gw:
        contract.append((await gw.acceptance.AcceptParcel(accept_request(contract_customer_id=customer),
                                                          metadata=gw.md(T))).waybill_no)
        found = await found_by_document(gw)
        assert {s.waybill_no for s in found} == {*old, *new, held.waybill_no, *acknowledged, *contract}
        assert all(s.sender.document_number == ZHANG["number"] and s.sender.phone == "+8613800138000"
                   for s in found if s.waybill_no not in contract)
        history = await gw.investigation.GetShipmentHistory(investigation_pb2.GetShipmentHistoryRequest(
            case_no=CASE, waybill_no=old[0]), metadata=gw.md(INV))
        assert history.verification.document_number == ZHANG["number"]
        assert history.shipment.recipient.phone == "+8613912345678"  # once a v1 blob
        again = await accepted(gw, recipient=to_listed_phone())
        assert again.decision == acceptance_pb2.ACCEPT_DECISION_HELD
        assert [h.entry_id for h in again.hits if h.kind == "PHONE"] == [entry.id]

        # The evidence log verifies from the first leaf to the last, and a case's export verifies offline.
        await appended(a.database_url)
        code, report = await verify_bundle_file(await whole_log_bundle(after), tmp_path / "log.json")
        assert code == 0 and "VERIFIED" in report, report
        export = await gw.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(case_no=CASE),
                                                       metadata=gw.md(INV))
        assert '"verification"' in export.bundle_json
        code, report = await verify_bundle_file(export.bundle_json, tmp_path / "case.json")
        assert code == 0, report

        # A re-keyed verification changed after the rotation fails, its name or the index the log recorded.
        conn = await asyncpg.connect(a.database_url)
        try:
            # The sender's recent recipients (the sender pattern's count) moved to the new keys with the shipments.
            by_sender = {bytes(r["sender_bidx"]): r["n"] for r in await conn.fetch(
                "SELECT sender_bidx, count(*) AS n FROM sender_recipients GROUP BY 1")}
            assert by_sender == {Sealer(b_data, b_index).blind_index("document", ZHANG["number"]): 2}, by_sender
            first = await conn.fetchrow("SELECT id, logged_document_bidx, document_bidx FROM sender_verifications"
                                        " ORDER BY id LIMIT 1")
            assert first["logged_document_bidx"] == Sealer(a.data_key, a.index_key).blind_index(
                "document", ZHANG["number"]) != first["document_bidx"]
            for change in ("name = name || 'X'", "logged_document_bidx = document_bidx"):
                await conn.execute(f"UPDATE sender_verifications SET {change} WHERE id = $1", first["id"])
                changed = await gw.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(
                    case_no=CASE), metadata=gw.md(INV))
                code, report = await verify_bundle_file(changed.bundle_json, tmp_path / "changed.json")
                assert code == 1 and f"verification {first['id']}" in report, report
                await conn.execute("UPDATE sender_verifications SET name = $2, logged_document_bidx = $3"
                                   " WHERE id = $1", first["id"], ZHANG["name"], first["logged_document_bidx"])
        finally:
            await conn.close()


async def test_the_evidence_signing_key_rotates_and_old_heads_still_verify(gateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await accepted(gateway)
    await appended(gateway.settings.database_url)
    old_head = await gateway.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                       metadata=gateway.md(INV))
    old_bundle = await gateway.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(
        case_no=CASE, waybill_no=""), metadata=gateway.md(INV))
    old_keys = list(old_head.verifier_keys)
    assert len(old_keys) == 1

    # The operator's procedure: the old key's verifier key into EVIDENCE_PAST_KEYS, a new signing key.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "GATEWAY_", "EVIDENCE_"))}
    code, printed, err = await command("keys", "verifier-key", env={
        **env, "EVIDENCE_SIGNING_KEY": b64(gateway.settings.evidence_signing_key),
        "EVIDENCE_KEY_NAME": gateway.settings.evidence_key_name})
    assert code == 0 and printed.strip() == old_keys[0], printed + err
    code, printed, err = await command("keys", "new", "--signing", "courier-gateway-2027", env=env)
    assert code == 0, err
    lines = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line and not line.startswith("#"))
    new_verifier = printed.split("# verifier key: ", 1)[1].strip()
    rotated = replace(gateway.settings, evidence_signing_key=base64.b64decode(lines["EVIDENCE_SIGNING_KEY"]),
                      evidence_key_name=lines["EVIDENCE_KEY_NAME"], evidence_past_keys=(old_keys[0],))

    async with serving(rotated, gateway.tokens) as gw:
        await accepted(gw)
        await appended(rotated.database_url)
        head = await gw.investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                  metadata=gw.md(INV))
        assert list(head.verifier_keys) == [new_verifier, old_keys[0]] and head.tree_size > old_head.tree_size
        assert "courier-gateway-2027" in head.checkpoint
        new_bundle = await gw.investigation.ExportEvidence(investigation_pb2.ExportEvidenceRequest(case_no=CASE),
                                                           metadata=gw.md(INV))
        assert json.loads(new_bundle.bundle_json)["log"]["verifier_keys"] == [new_verifier, old_keys[0]]
    # The investigator pins the keys GetTreeHead answered: the old head and the new one both verify by them.
    code, report = await verify_bundle_file(old_bundle.bundle_json, tmp_path / "old.json", *head.verifier_keys)
    assert code == 0, report
    code, report = await verify_bundle_file(new_bundle.bundle_json, tmp_path / "new.json", *head.verifier_keys)
    assert code == 0, report
    # Without the old key kept, the head it signed no longer verifies: keeping it is what makes rotation work.
    code, report = await verify_bundle_file(old_bundle.bundle_json, tmp_path / "old-alone.json", new_verifier)
    assert code == 1, report
