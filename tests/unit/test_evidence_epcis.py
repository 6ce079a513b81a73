"""Shipment events as EPCIS 2.0 ObjectEvents, named by their CBV 2.0 event hash, computed offline."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.core.evidence import epcis
from gateway.core.evidence.epcis import EpcisError
from tests.conftest import FIXTURES


def shipment(**fields: Any) -> dict[str, Any]:
    """A shipment_event record as the log holds it."""
    record = {"type": "shipment_event", "waybill_no": "SF1234567890", "seq": 1, "kind": "ACCEPTED",
              "from_state": None, "to_state": "ACCEPTED", "principal": "courier-7", "terminal_id": "T-9",
              "device_id": "", "location": "SH-HUB-02/line 3", "note": "", "recorded_at": "2026-11-28T10:00:00.123456Z",
              "details": {}}
    return {**record, **fields}


def ni(prehash: str) -> str:
    return f"ni:///sha-256;{hashlib.sha256(prehash.encode()).hexdigest()}?ver=CBV2.0"


@pytest.mark.parametrize(("fields", "step", "disposition", "action"), [
    ({"kind": "ACCEPTED"}, "accepting", "in_progress", "ADD"),
    ({"kind": "REFUSED", "from_state": None}, "accepting", "non_conformant", "ADD"),
    ({"kind": "REFUSED", "from_state": "HELD"}, "holding", "unavailable", "OBSERVE"),
    ({"kind": "HELD", "from_state": "ACCEPTED"}, "holding", "non_conformant", "OBSERVE"),
    ({"kind": "HOLD_CONFIRMED", "from_state": "HELD"}, "holding", "non_conformant", "OBSERVE"),
    ({"kind": "RELEASED", "from_state": "HELD"}, "holding", "in_progress", "OBSERVE"),
    ({"kind": "STORED", "from_state": "ACCEPTED"}, "storing", "in_progress", "OBSERVE"),
    ({"kind": "DISPATCHED", "from_state": "STORED"}, "departing", "in_transit", "OBSERVE"),
    ({"kind": "INSPECTED", "from_state": "ACCEPTED"}, "inspecting", "in_progress", "OBSERVE"),
    ({"kind": "SCANNED_DWS", "details": {"decision": "PASS"}}, "inspecting", "in_progress", "OBSERVE"),
    ({"kind": "SCANNED_XRAY", "details": {"decision": "DIVERT_TO_HOLD"}}, "inspecting", "non_conformant", "OBSERVE"),
    ({"kind": "INSPECTED", "details": {"decision": "REJECT"}}, "inspecting", "non_conformant", "OBSERVE"),
])
def test_each_kind_has_its_cbv_step_disposition_and_action(fields: dict[str, Any], step: str, disposition: str,
                                                            action: str) -> None:
    event = epcis.epcis_event(4, shipment(**fields))
    assert (event["bizStep"], event["disposition"], event["action"]) == (step, disposition, action)
    assert event["type"] == "ObjectEvent" and event["epcList"] == ["urn:courier:waybill:SF1234567890"]


def test_an_unknown_kind_or_a_missing_waybill_has_no_epcis_form() -> None:
    with pytest.raises(EpcisError, match="kind 'LOST' has no EPCIS form"):
        epcis.epcis_event(0, shipment(kind="LOST"))
    with pytest.raises(EpcisError, match="names no waybill"):
        epcis.epcis_event(0, shipment(waybill_no=""))


def test_the_read_point_is_the_device_then_the_terminal_then_the_principal() -> None:
    assert epcis.epcis_event(0, shipment(device_id="dws 1"))["readPoint"] == {"id": "urn:courier:device:dws%201"}
    assert epcis.epcis_event(0, shipment())["readPoint"] == {"id": "urn:courier:terminal:T-9"}
    assert epcis.epcis_event(0, shipment(terminal_id=""))["readPoint"] == {"id": "urn:courier:principal:courier-7"}
    assert "readPoint" not in epcis.epcis_event(0, shipment(terminal_id="", principal=""))


def test_the_location_is_percent_encoded_and_left_out_when_there_is_none() -> None:
    assert epcis.epcis_event(0, shipment(location="上海/闵行 1"))["bizLocation"] == {
        "id": "urn:courier:location:%E4%B8%8A%E6%B5%B7%2F%E9%97%B5%E8%A1%8C%201"}
    assert "bizLocation" not in epcis.epcis_event(0, shipment(location=""))


def test_event_time_is_recorded_at_to_the_millisecond_and_extensions_carry_leaf_and_seq() -> None:
    event = epcis.epcis_event(12, shipment(seq=3, recorded_at="2026-11-28T10:00:00.999999Z"))
    assert (event["eventTime"], event["eventTimeZoneOffset"]) == ("2026-11-28T10:00:00.999Z", "+00:00")
    assert (event["cgw:leafIndex"], event["cgw:seq"]) == (12, 3)


def test_the_event_id_is_the_hash_of_our_event_as_the_cbv_prehash_spells_it() -> None:
    event = epcis.epcis_event(0, shipment())
    # Written out by hand from the CBV 2.0 event hash rules: fields in the canonical order, bare CBV values as
    # their web vocabulary URIs, times in UTC to the millisecond, user extensions last as {namespace}name=value.
    prehash = ("eventType=ObjectEventeventTime=2026-11-28T10:00:00.123ZeventTimeZoneOffset=+00:00"
               "epcListepc=urn:courier:waybill:SF1234567890action=ADD"
               "bizStep=https://ref.gs1.org/cbv/BizStep-acceptingdisposition=https://ref.gs1.org/cbv/Disp-in_progress"
               "readPointid=urn:courier:terminal:T-9bizLocationid=urn:courier:location:SH-HUB-02%2Fline%203"
               "{https://courier-gateway.example/epcis/}leafIndex=0{https://courier-gateway.example/epcis/}seq=1")
    assert event["eventID"] == ni(prehash)


def test_the_generator_hashes_the_published_example_as_its_project_does() -> None:
    example = json.loads((FIXTURES / "evidence" / "epcis_single_event.json").read_text())
    assert epcis.event_hash(example["document"]["epcisBody"]["eventList"][0]) == ni(example["prehash"])


def test_the_event_id_is_computed_without_the_event_id() -> None:
    event = epcis.epcis_event(0, shipment())
    without = {k: v for k, v in event.items() if k != "eventID"}
    assert epcis.event_hash(event) == epcis.event_hash(without) == event["eventID"]
    assert epcis.event_hash({**event, "eventID": "ni:///sha-256;00?ver=CBV2.0"}) == event["eventID"]


@pytest.mark.parametrize("change", [
    {"cgw:leafIndex": 1}, {"cgw:seq": 2}, {"bizStep": "storing"}, {"eventTime": "2026-11-28T10:00:00.124Z"},
    {"readPoint": {"id": "urn:courier:terminal:T-8"}}, {"epcList": ["urn:courier:waybill:SF1234567891"]},
])
def test_every_field_is_in_the_hash(change: dict[str, Any]) -> None:
    event = epcis.epcis_event(0, shipment())
    assert epcis.event_hash({**event, **change}) != event["eventID"]


def test_the_document_holds_one_event_per_shipment_event_in_leaf_order() -> None:
    records = [(5, shipment(seq=2, kind="STORED", from_state="ACCEPTED")), (1, {"type": "audit", "audit_id": 1}),
               (2, shipment()), (3, {"type": "verification", "verification_id": 4})]
    doc = epcis.epcis_document(records, created_at=datetime(2026, 11, 28, 12, 0, 0, 500, tzinfo=UTC))
    assert doc["@context"] == ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
                               {"cgw": "https://courier-gateway.example/epcis/"}]
    assert (doc["type"], doc["schemaVersion"], doc["creationDate"]) == ("EPCISDocument", "2.0", "2026-11-28T12:00:00Z")
    assert [e["cgw:leafIndex"] for e in doc["epcisBody"]["eventList"]] == [2, 5]


def test_hashing_fetches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the EPCIS context was fetched")
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert epcis.epcis_event(0, shipment())["eventID"].startswith("ni:///sha-256;")


def test_the_generator_writes_nothing_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        epcis.epcis_event(0, shipment())
    assert [r for r in caplog.records if "epcis_event_hash_generator" in r.pathname] == []
