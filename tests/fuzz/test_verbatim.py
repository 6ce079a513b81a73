"""Strings are stored verbatim: accepted parcels, their verification, custody moves, scans and blocklist entries
made with arbitrary valid text in every free-text field are read back through the API byte for byte.

Valid text is any UTF-8 text a field may hold (README: one line, no control characters, line separators or
unpaired surrogates; multi-line fields may also hold tab and line breaks), weighted towards SQL, quotes,
bidirectional marks, non-BMP characters and forms that Unicode normalisation would fold (ﬁ, Ｓ, e + U+0301),
which must come back unfolded. Required fields are not blank. Person names follow the name rules (letters,
Han characters, inner spaces), since a name that breaks them is refused, not stored.
"""

from __future__ import annotations

import json
import secrets

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from courier.v1 import acceptance_pb2, blocklist_pb2, common_pb2, custody_pb2, inspection_pb2, investigation_pb2
from tests.e2e.requests import verify_request
from tests.fuzz.conftest import FuzzGateway, fuzz_settings
from tests.fuzz.strategies import NASTY_TEXT

CASE = "CASE-2026-0042"
_SEPARATORS = "\u2028\u2029"
_VALID = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters=_SEPARATORS)
_VALID_MULTILINE = st.one_of(_VALID, st.sampled_from("\t\n\r"))
_PIECES = [p for p in NASTY_TEXT if p and not any(c in p for c in _SEPARATORS)
           and all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in p)]


def text(max_len: int, *, required: bool = True, multiline: bool = False) -> st.SearchStrategy[str]:
    """Text a field of this limit takes: any valid characters, mixed with hostile pieces, not blank if required."""
    chars = _VALID_MULTILINE if multiline else _VALID
    made = st.lists(st.one_of(st.text(chars, min_size=1, max_size=12), st.sampled_from(_PIECES)),
                    min_size=1 if required else 0, max_size=8).map("".join)
    made = st.one_of(made, st.text(chars, min_size=max_len - 2, max_size=max_len))  # right up to the limit
    made = made.map(lambda s: s[:max_len])
    return made.filter(lambda s: s.strip()) if required else made


def person_name() -> st.SearchStrategy[str]:
    """A name the name rules accept: Han characters, or Latin words."""
    han = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=8)
    word = st.text(st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=2, max_size=10)
    latin = st.lists(word, min_size=1, max_size=3).map(lambda w: " ".join(x.capitalize() for x in w))
    return st.one_of(han, latin)


def _md(f: FuzzGateway) -> tuple[tuple[str, str], ...]:
    return f.all_roles


@fuzz_settings(8)
@given(terminal_id=text(64), recipient=person_name(), sender_detail=text(200), recipient_detail=text(200),
       description=text(200), category=text(64, required=False), brand=text(64, required=False),
       notes=text(500, required=False, multiline=True), location=text(64, required=False),
       move_note=text(500, required=False, multiline=True), device_id=text(64), scan_location=text(64),
       finding=text(64), finding_description=text(200, required=False))
async def test_a_parcel_and_everything_about_it_come_back_as_sent(
        fuzz_gateway: FuzzGateway, terminal_id: str, recipient: str, sender_detail: str, recipient_detail: str,
        description: str, category: str, brand: str, notes: str, location: str, move_note: str, device_id: str,
        scan_location: str, finding: str, finding_description: str) -> None:
    gw, md = fuzz_gateway.gw, _md(fuzz_gateway)
    verified = await gw.acceptance.VerifySender(verify_request(terminal_id=terminal_id), metadata=md, timeout=20)
    assert verified.verdict == acceptance_pb2.VERDICT_VERIFIED, verified
    waybill_no = f"SF{secrets.randbelow(10**12):012d}"
    item = acceptance_pb2.Item(description=description, category=category, brand=brand, quantity=1,
                               declared_value_fen=100)
    accepted = await gw.acceptance.AcceptParcel(acceptance_pb2.AcceptParcelRequest(
        idempotency_key=f"key-{waybill_no}", waybill_no=waybill_no, sender_ref=verified.sender_ref,
        sender_address=common_pb2.Address(region_code="110101", detail=sender_detail),
        recipient=acceptance_pb2.Recipient(name=recipient, phone="13912345678",
                                           address=common_pb2.Address(region_code="310104", detail=recipient_detail)),
        items=[item], terminal_id=terminal_id,
        inspection=acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED,
                                                    notes=notes)), metadata=md, timeout=20)
    assert accepted.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED, accepted
    await gw.custody.StoreParcel(custody_pb2.CustodyMoveRequest(
        waybill_no=waybill_no, terminal_id=terminal_id, location=location, note=move_note), metadata=md, timeout=20)
    acks = [a async for a in gw.inspection.StreamScans(iter([inspection_pb2.ScanEvent(
        event_id=f"v-{secrets.token_hex(8)}", device_id=device_id, kind=inspection_pb2.SCAN_KIND_XRAY,
        waybill_no=waybill_no, location=scan_location, findings=[inspection_pb2.DetectorFinding(
            category=finding, description=finding_description, confidence=0.5)])]), metadata=md, timeout=20)]
    assert [a.reasons[0].code for a in acks if a.reasons] in ([], ["WEIGHT_MISMATCH"]), acks

    view = await gw.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=waybill_no), metadata=md, timeout=20)
    assert [e.kind for e in view.events] == ["ACCEPTED", "STORED", "SCANNED_XRAY"]
    stored, scanned = view.events[1], view.events[2]
    assert (stored.location, stored.note, stored.actor.terminal_id) == (location, move_note, terminal_id)
    assert (scanned.location, scanned.actor.device_id) == (scan_location, device_id)

    history = await gw.investigation.GetShipmentHistory(investigation_pb2.GetShipmentHistoryRequest(
        case_no=CASE, waybill_no=waybill_no), metadata=md, timeout=20)
    shipment = history.shipment
    assert shipment.sender.address == sender_detail and shipment.recipient.address == recipient_detail
    assert shipment.recipient.name == recipient
    item_back = json.loads(shipment.items_json)[0]
    assert (item_back["description"], item_back["category"], item_back["brand"]) == (description, category, brand)
    assert history.verification.terminal_id == terminal_id
    assert history.events[0].actor.terminal_id == terminal_id
    # The inspection's notes are kept with the shipment and no RPC answers them: read from PostgreSQL.
    conn = await asyncpg.connect(gw.settings.database_url)
    try:
        assert await conn.fetchval("SELECT inspection->>'notes' FROM shipments WHERE waybill_no = $1",
                                   waybill_no) == notes
    finally:
        await conn.close()
    findings = json.loads(history.events[2].details_json)["findings"]
    assert (findings[0]["category"], findings[0]["description"]) == (finding, finding_description)


@fuzz_settings(12)
@given(value=person_name(), aliases=st.lists(person_name(), max_size=3, unique=True), agency=text(128),
       case_no=text(64, required=False), legal_basis=text(256, required=False))
async def test_a_blocklist_entry_comes_back_as_sent(fuzz_gateway: FuzzGateway, value: str, aliases: list[str],
                                                    agency: str, case_no: str, legal_basis: str) -> None:
    gw, md = fuzz_gateway.gw, _md(fuzz_gateway)
    added = await gw.blocklist.AddEntry(blocklist_pb2.AddEntryRequest(
        kind=blocklist_pb2.ENTRY_KIND_PERSON_NAME, value=value, action=blocklist_pb2.ENTRY_ACTION_HOLD,
        aliases=aliases, source=blocklist_pb2.EntrySource(agency=agency, case_no=case_no, legal_basis=legal_basis)),
        metadata=md, timeout=20)
    reason = " 不再适用 '; DROP TABLE blocklist_entries; -- \u202e "
    try:
        got = await gw.blocklist.GetEntry(blocklist_pb2.GetEntryRequest(id=added.id), metadata=md, timeout=20)
        # README (Blocklist): an entry's text is kept trimmed of leading and trailing whitespace, else verbatim.
        assert (got.value, list(got.aliases)) == (value, aliases)
        assert (got.source.agency, got.source.case_no, got.source.legal_basis) == (
            agency.strip(), case_no.strip(), legal_basis.strip())
    finally:  # retired whatever happened, so a replayed example can add the same value again
        retired = await gw.blocklist.RetireEntry(blocklist_pb2.RetireEntryRequest(id=added.id, reason=reason),
                                                 metadata=md, timeout=20)
    assert retired.retire_reason == reason.strip()
