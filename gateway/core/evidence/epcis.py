"""The log's shipment events as a GS1 EPCIS 2.0 JSON-LD document, each event named by its CBV 2.0 event hash.

One ObjectEvent per "shipment_event" record (the other record types are not EPCIS events):

| record kind | bizStep | disposition | action |
| --- | --- | --- | --- |
| ACCEPTED | accepting | in_progress | ADD |
| REFUSED with from_state null (refused at acceptance) | accepting | non_conformant | ADD |
| REFUSED otherwise | holding | unavailable | OBSERVE |
| HELD, HOLD_CONFIRMED | holding | non_conformant | OBSERVE |
| RELEASED | holding | in_progress | OBSERVE |
| STORED | storing | in_progress | OBSERVE |
| DISPATCHED | departing | in_transit | OBSERVE |
| INSPECTED, SCANNED_* | inspecting | in_progress if details.decision is PASS or absent, else non_conformant | OBSERVE |

epcList is ["urn:courier:waybill:<waybill_no>"]; readPoint the device, else the terminal, else the principal
(urn:courier:device:<id>, urn:courier:terminal:<id>, urn:courier:principal:<name>); bizLocation
urn:courier:location:<location> when there is one; identifiers are percent-encoded (RFC 3986 unreserved
characters kept). "cgw:leafIndex" and "cgw:seq" carry the record's leaf in the log and its history number.
eventTime is the record's recorded_at to the millisecond (truncated), offset +00:00: the CBV 2.0 hash reads
times to the millisecond, and a time already at that precision hashes the same whichever way an
implementation rounds (the generator used here rounds half to even, and fails past .9995 s).

eventID is `ni:///sha-256;<hex>?ver=CBV2.0`, computed by the epcis-event-hash-generator package over the
event without its eventID. JSON-LD contexts are served from the copies that package ships: nothing is fetched.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, cast
from urllib.parse import quote

from epcis_event_hash_generator import hash_generator, json_to_py
from pyld import jsonld

from gateway.core.errors import DomainError
from gateway.core.evidence.records import parse_time

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
CGW = "https://courier-gateway.example/epcis/"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"cgw": CGW}]
_PACKAGE = "epcis_event_hash_generator"
_SHIPPED = "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"  # the EPCIS 2.0.0 context
_OFFLINE = (EPCIS_CONTEXT, "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld")

_STEPS = {
    "ACCEPTED": ("accepting", "in_progress"),
    "HELD": ("holding", "non_conformant"),
    "HOLD_CONFIRMED": ("holding", "non_conformant"),
    "RELEASED": ("holding", "in_progress"),
    "STORED": ("storing", "in_progress"),
    "DISPATCHED": ("departing", "in_transit"),
}


class EpcisError(DomainError):
    """A shipment event that has no EPCIS form, or an event whose hash cannot be computed."""


def _urn(kind: str, value: object) -> str:
    return f"urn:courier:{kind}:{quote(str(value), safe='')}"


def _step(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """bizStep, disposition and action of a shipment event, by its kind."""
    kind = str(record.get("kind", ""))
    if kind == "REFUSED":
        if record.get("from_state") is None:
            return "accepting", "non_conformant", "ADD"
        return "holding", "unavailable", "OBSERVE"
    if kind == "INSPECTED" or kind.startswith("SCANNED_"):
        details = record.get("details") or {}
        passed = details.get("decision") in (None, "PASS") if isinstance(details, Mapping) else False
        return "inspecting", "in_progress" if passed else "non_conformant", "OBSERVE"
    if kind not in _STEPS:
        raise EpcisError(f"a shipment event of kind {kind!r} has no EPCIS form")
    step, disposition = _STEPS[kind]
    return step, disposition, "ADD" if kind == "ACCEPTED" else "OBSERVE"


def _event_time(record: Mapping[str, Any]) -> str:
    at = parse_time(record.get("recorded_at"))
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _read_point(record: Mapping[str, Any]) -> dict[str, str] | None:
    for key, kind in (("device_id", "device"), ("terminal_id", "terminal"), ("principal", "principal")):
        if record.get(key):
            return {"id": _urn(kind, record[key])}
    return None


def _unhashed_event(leaf_index: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """The ObjectEvent of one shipment event record, without its eventID."""
    if not record.get("waybill_no"):
        raise EpcisError(f"the shipment event at leaf {leaf_index} names no waybill")
    step, disposition, action = _step(record)
    event: dict[str, Any] = {
        "type": "ObjectEvent", "eventTime": _event_time(record), "eventTimeZoneOffset": "+00:00",
        "epcList": [_urn("waybill", record["waybill_no"])], "action": action,
        "bizStep": step, "disposition": disposition,
    }
    if (point := _read_point(record)) is not None:
        event["readPoint"] = point
    if record.get("location"):
        event["bizLocation"] = {"id": _urn("location", record["location"])}
    event["cgw:leafIndex"] = leaf_index
    event["cgw:seq"] = record.get("seq")
    return event


def epcis_event(leaf_index: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """The ObjectEvent of one shipment event record, its eventID first."""
    event = _unhashed_event(leaf_index, record)
    return {"eventID": event_hash(event), **event}


def epcis_document(records: Iterable[tuple[int, Mapping[str, Any]]], *, created_at: datetime) -> dict[str, Any]:
    """An EPCISDocument of the shipment events among (leaf index, record) pairs, in leaf order."""
    events = [epcis_event(i, r) for i, r in sorted(records, key=lambda p: p[0]) if r.get("type") == "shipment_event"]
    return {
        "@context": copy.deepcopy(CONTEXT), "type": "EPCISDocument", "schemaVersion": "2.0",
        "creationDate": created_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": events},
    }


def event_hash(event: Mapping[str, Any]) -> str:
    """The CBV 2.0 event hash (ni:///sha-256;...?ver=CBV2.0) of an event, over everything but its eventID."""
    body = {k: copy.deepcopy(v) for k, v in event.items() if k != "eventID"}
    document = {"@context": copy.deepcopy(CONTEXT), "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": "2000-01-01T00:00:00Z", "epcisBody": {"eventList": [body]}}
    try:
        with _offline_contexts(), _quiet():
            events = json_to_py.event_list_from_epcis_document_json(document)
            hashes = cast(list[str], hash_generator.epcis_hashes_from_events(events))
    except (jsonld.JsonLdError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise EpcisError(f"the event's hash cannot be computed: {type(error).__name__}") from None
    if len(hashes) != 1:  # the generator logs and skips an event it cannot read
        raise EpcisError("the event hash generator could not read the event")
    return hashes[0]


def _shipped_context() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(resources.files(_PACKAGE).joinpath(_SHIPPED).read_text("utf-8")))


def _load_offline(url: str, options: object = None) -> dict[str, Any]:
    """A JSON-LD document loader that serves the EPCIS context from disk and fetches nothing."""
    if url not in _OFFLINE:
        raise jsonld.JsonLdError(f"the context {url} is not held offline", "jsonld.LoadDocumentError",
                                 code="loading document failed")
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": _shipped_context()}


@contextmanager
def _offline_contexts() -> Iterator[None]:
    """pyld's loader is global: ours while hashing (the package's own would go to the network), then back."""
    previous = jsonld.get_document_loader()
    jsonld.set_document_loader(_load_offline)
    try:
        yield
    finally:
        jsonld.set_document_loader(previous)


class _FromGenerator(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"/{_PACKAGE}/" not in record.pathname.replace("\\", "/")


@contextmanager
def _quiet() -> Iterator[None]:
    """The generator logs every event at INFO on the root logger; its failures reach the caller as EpcisError."""
    root, only = logging.getLogger(), _FromGenerator()
    root.addFilter(only)
    try:
        yield
    finally:
        root.removeFilter(only)
