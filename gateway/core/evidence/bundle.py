"""Evidence bundles: records with their inclusion proofs, the signed checkpoint they lead to, and EPCIS.

A bundle is one JSON object:

    {"format": "courier-evidence-bundle/v1",
     "scope": {... free-form: case_no, waybill_no, ...},
     "generated_at": "<RFC 3339 UTC>",
     "log": {"origin": "<the checkpoint's origin>", "verifier_keys": ["<name>+<hex id>+<base64 key>", ...]},
     "checkpoint": "<the signed checkpoint note>",
     "records": [{"leaf_index": <int>, "record": {...}, "inclusion_proof": ["<base64 hash>", ...]}, ...],
     "epcis": {<EPCISDocument of the shipment events among the records>}}

verify_bundle needs neither the database nor the gateway: it opens the checkpoint with the bundle's keys (or
the keys the caller trusts, which then replace them), and for each record recomputes its leaf hash from its
canonical bytes and walks its inclusion proof to the checkpoint's root; for each shipment event it rebuilds
the EPCIS event from the record and recomputes its eventID, which must be what the document holds.
"scope", "generated_at" and the EPCIS creationDate are the exporter's word: nothing signs them.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.core.errors import DomainError
from gateway.core.evidence.checkpoint import Checkpoint, CheckpointError, decode_base64, open_checkpoint
from gateway.core.evidence.epcis import CONTEXT, EpcisError, epcis_document, epcis_event, event_hash
from gateway.core.evidence.merkle import HASH_SIZE, verify_inclusion
from gateway.core.evidence.records import RecordError, format_time, record_label, record_leaf_hash

FORMAT = "courier-evidence-bundle/v1"


class BundleError(DomainError):
    """A bundle that cannot be read as one, or cannot be built from what was given."""


@dataclass(frozen=True)
class ProvenRecord:
    """A record of the log with its leaf index and its inclusion proof at the checkpoint's size."""

    leaf_index: int
    record: Mapping[str, Any]
    inclusion_proof: Sequence[bytes]


@dataclass(frozen=True)
class RecordCheck:
    """What the verifier found for one record: verified when reason is empty."""

    leaf_index: int | None
    type: str
    label: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        """Whether the record, its proof and its EPCIS event all verified."""
        return not self.reason


@dataclass(frozen=True)
class BundleReport:
    """The checkpoint (or why it fails), each record's check, and problems of the bundle as a whole."""

    checkpoint: Checkpoint | None
    checkpoint_problem: str
    records: tuple[RecordCheck, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the checkpoint and every record verified, with nothing else wrong."""
        return self.checkpoint is not None and not self.problems and all(r.verified for r in self.records)


def build_bundle(records: Sequence[ProvenRecord], *, checkpoint: str, verifier_keys: Sequence[str],
                 scope: Mapping[str, Any], generated_at: datetime, check: bool = True) -> dict[str, Any]:
    """The bundle of these records, in leaf order.

    With check, BundleError when it would not verify (a wrong proof, note or key). Without, what is given is
    exported as it is: a row changed since it was logged then reaches the verifier, which names it.
    """
    ordered = sorted(records, key=lambda r: r.leaf_index)
    origin = _checked_origin(ordered, checkpoint, verifier_keys) if check else checkpoint.split("\n", 1)[0]
    return {
        "format": FORMAT, "scope": copy.deepcopy(dict(scope)), "generated_at": format_time(generated_at),
        "log": {"origin": origin, "verifier_keys": list(verifier_keys)}, "checkpoint": checkpoint,
        "records": [{"leaf_index": p.leaf_index, "record": copy.deepcopy(dict(p.record)),
                     "inclusion_proof": [base64.b64encode(h).decode() for h in p.inclusion_proof]} for p in ordered],
        "epcis": epcis_document([(p.leaf_index, p.record) for p in ordered], created_at=generated_at),
    }


def _checked_origin(records: Sequence[ProvenRecord], checkpoint: str, verifier_keys: Sequence[str]) -> str:
    """The checkpoint's origin once it and every record's proof verify; BundleError naming what does not."""
    try:
        head = open_checkpoint(checkpoint, verifier_keys)
    except CheckpointError as error:
        raise BundleError(f"the checkpoint does not open with the given keys: {error.message}") from None
    for proven in records:
        if reason := _proof_problem(proven.leaf_index, proven.record, list(proven.inclusion_proof), head):
            raise BundleError(f"leaf {proven.leaf_index}: {reason}")
    return head.origin


def _proof_problem(leaf_index: int, record: Mapping[str, Any], proof: list[bytes], head: Checkpoint) -> str:
    """Why a record is not at its leaf under the checkpoint's root, or ""."""
    if not 0 <= leaf_index < head.size:
        return f"leaf {leaf_index} is not in the checkpoint's tree of {head.size} leaves"
    try:
        leaf = record_leaf_hash(record)
    except RecordError as error:
        return error.message
    if not verify_inclusion(leaf, leaf_index, head.size, proof, head.root):
        return "its inclusion proof does not lead from the record's hash to the checkpoint's root"
    return ""


def _open(bundle: Mapping[str, Any], trusted_keys: Sequence[str] | None) -> tuple[Checkpoint | None, str]:
    """The bundle's checkpoint opened with the trusted keys (or the bundle's own), or why it does not open."""
    log = bundle.get("log")
    keys = trusted_keys if trusted_keys is not None else (log.get("verifier_keys") if isinstance(log, dict) else None)
    if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        return None, "the bundle lists no verifier keys"
    if not isinstance(bundle.get("checkpoint"), str):
        return None, "the bundle holds no checkpoint note"
    try:
        head = open_checkpoint(bundle["checkpoint"], keys)
    except CheckpointError as error:
        return None, error.message
    origin = log.get("origin") if isinstance(log, dict) else None
    if head.origin != origin:
        return None, f"the checkpoint is of log {head.origin!r}, the bundle says {origin!r}"
    return head, ""


def _proof(entry: Mapping[str, Any]) -> list[bytes] | str:
    """An entry's inclusion proof as hashes, or why it is not one."""
    found = entry.get("inclusion_proof")
    if not isinstance(found, list):
        return "its inclusion proof is not a list"
    hashes = []
    for i, text in enumerate(found):
        value = (decode_base64(text) if isinstance(text, str) else None) or b""
        if len(value) != HASH_SIZE:
            return f"hash {i} of its inclusion proof is not the base64 of {HASH_SIZE} bytes"
        hashes.append(value)
    return hashes


def _events_by_leaf(document: Any) -> tuple[dict[int, list[Any]], list[str]]:
    """The EPCIS events by the leaf index they name, and what is wrong with the document itself."""
    if not isinstance(document, dict):
        return {}, ["the bundle holds no EPCIS document"]
    body = document.get("epcisBody")
    events = body.get("eventList") if isinstance(body, dict) else None
    problems = []
    if document.get("@context") != CONTEXT or document.get("type") != "EPCISDocument" \
            or document.get("schemaVersion") != "2.0" or not isinstance(events, list):
        problems.append("the EPCIS document is not an EPCIS 2.0 document in this log's context with an eventList")
    by_leaf: dict[int, list[Any]] = {}
    for n, event in enumerate(events if isinstance(events, list) else []):
        leaf = event.get("cgw:leafIndex") if isinstance(event, dict) else None
        if not isinstance(leaf, int) or isinstance(leaf, bool):
            problems.append(f"EPCIS event {n} names no leaf index")
        else:
            by_leaf.setdefault(leaf, []).append(event)
    return by_leaf, problems


def _epcis_problem(leaf_index: int, record: Mapping[str, Any], events: list[Any]) -> str:
    """Why a shipment event's EPCIS event is missing or is not the one its record makes, or ""."""
    if len(events) != 1:
        return "its EPCIS event is missing" if not events else f"{len(events)} EPCIS events name its leaf"
    try:
        expected = epcis_event(leaf_index, record)
        if events[0].get("eventID") != event_hash(events[0]):
            return "its EPCIS event's eventID is not the CBV 2.0 hash of the event"
    except EpcisError as error:
        return f"its EPCIS event cannot be checked: {error.message}"
    if events[0] != expected:
        fields = sorted(k for k in set(expected) | set(events[0]) if expected.get(k) != events[0].get(k))
        return f"its EPCIS event differs from the record in {', '.join(fields)}"
    return ""


def _check_entry(n: int, entry: Any, head: Checkpoint | None, events: dict[int, list[Any]]) -> RecordCheck:
    """One record entry, checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
        return RecordCheck(None, "?", "-", f"entry {n} is not a leaf_index, a record and an inclusion proof")
    record, leaf = entry["record"], entry.get("leaf_index")
    kind, label = str(record.get("type", "?")), record_label(record)
    if not isinstance(leaf, int) or isinstance(leaf, bool):
        return RecordCheck(None, kind, label, f"entry {n} has no integer leaf_index")
    if head is None:
        return RecordCheck(leaf, kind, label, "the checkpoint does not verify")
    proof = _proof(entry)
    reason = proof if isinstance(proof, str) else _proof_problem(leaf, record, proof, head)
    if not reason and kind == "shipment_event":
        reason = _epcis_problem(leaf, record, events.get(leaf, []))
    elif not reason and leaf in events:
        reason = "an EPCIS event names it, but only shipment events are EPCIS events"
    return RecordCheck(leaf, kind, label, reason)


def verify_bundle(bundle: Any, trusted_keys: Sequence[str] | None = None) -> BundleReport:
    """Checks a bundle offline; trusted_keys, when given, replace the keys the bundle lists."""
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleError(f"not an evidence bundle: its format is not {FORMAT}")
    if not isinstance(bundle.get("records"), list):
        raise BundleError("not an evidence bundle: it has no list of records")
    head, checkpoint_problem = _open(bundle, trusted_keys)
    events, problems = _events_by_leaf(bundle.get("epcis"))
    checks = tuple(_check_entry(n, entry, head, events) for n, entry in enumerate(bundle["records"]))
    listed = {c.leaf_index for c in checks}
    problems += [f"EPCIS events name leaf {leaf}, which is not among the records"
                 for leaf in events if leaf not in listed]
    return BundleReport(head, checkpoint_problem, checks, tuple(problems))
