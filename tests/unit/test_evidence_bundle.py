"""Evidence bundles: built from a real log, verified offline, and any change is pinned to what it touched."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.evidence import merkle
from gateway.core.evidence.bundle import BundleError, ProvenRecord, build_bundle, verify_bundle
from gateway.core.evidence.checkpoint import sign_checkpoint, verifier_key
from gateway.core.evidence.epcis import event_hash
from gateway.core.evidence.records import format_time, record_leaf_hash
from tests.conftest import FIXTURES

ORIGIN = "courier-gateway.example/evidence"
SIGNED_AT = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
KINDS = [("ACCEPTED", None, {}), ("STORED", "ACCEPTED", {}), ("SCANNED_DWS", "STORED", {"decision": "PASS"}),
         ("HELD", "STORED", {"origin": "RESCREEN"}), ("RELEASED", "HELD", {"case_no": "C-1"}),
         ("DISPATCHED", "ACCEPTED", {}), ("REFUSED", None, {}), ("SCANNED_XRAY", "ACCEPTED", {"decision": "REJECT"})]


def make_record(i: int) -> dict[str, Any]:
    """Leaf i of the test log: mostly shipment events, with audits, verifications and scans among them."""
    at = format_time(datetime(2026, 11, 28, 8, 0, tzinfo=UTC) + timedelta(seconds=i, microseconds=i * 997))
    if i % 10 == 3:
        return {"type": "audit", "audit_id": i, "principal": "inv-1", "method": "SearchShipments",
                "case_no": "C-2026-17", "returned": 4, "at": at}
    if i % 10 == 7:
        return {"type": "verification", "verification_id": i, "verdict": "VERIFIED", "at": at,
                "document_hash": f"{i:064x}"}
    kind, from_state, details = KINDS[i % len(KINDS)]
    return {"type": "shipment_event", "waybill_no": f"SF{i // 8:010d}", "seq": i % 8 + 1, "kind": kind,
            "from_state": from_state, "to_state": "ACCEPTED", "principal": "courier-7", "terminal_id": "T-9",
            "device_id": "dws-1" if kind.startswith("SCANNED") else "", "location": "SH-HUB-02/line-3", "note": "",
            "recorded_at": at, "details": details}


@dataclass
class Log:
    """A log as the gateway keeps it: records, the store of hashes, a signing key and a signed checkpoint."""

    records: list[dict[str, Any]]
    store: dict[tuple[int, int], bytes]
    key: Ed25519PrivateKey
    verifier: str
    note: str

    def proven(self, index: int) -> ProvenRecord:
        """A record with its inclusion proof at the checkpoint's size, from the hashes the store is asked for."""
        size = len(self.records)
        stored = {k: self.store[k] for r in merkle.needed_for_inclusion(index, size) for k in r.keys()}
        return ProvenRecord(index, self.records[index], merkle.inclusion_proof(index, size, stored))


def make_log(size: int, seed: int = 1) -> Log:
    """A log of size leaves, appended in batches the way the appender does."""
    records = [make_record(i) for i in range(size)]
    store: dict[tuple[int, int], bytes] = {}
    for old in range(0, size, 64):
        new = min(size, old + 64)
        fetched = {k: store[k] for r in merkle.needed_for_append(old, new) for k in r.keys()}
        fresh = {(0, i): record_leaf_hash(records[i]) for i in range(old, new)}
        store.update(fresh)
        store.update({(lvl, i): h for lvl, i, h in merkle.stored_nodes_completed(old, new, {**fetched, **fresh})})
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    root = merkle.root_hash(size, {k: store[k] for r in merkle.needed_for_root(size) for k in r.keys()})
    note = sign_checkpoint(ORIGIN, size, root, SIGNED_AT, key, ORIGIN)
    return Log(records, store, key, verifier_key(ORIGIN, key.public_key()), note)


def make_bundle(log: Log, indices: list[int], keys: list[str] | None = None) -> dict[str, Any]:
    """The bundle of the chosen leaves, through JSON as a file would carry it."""
    bundle = build_bundle([log.proven(i) for i in indices], checkpoint=log.note, verifier_keys=keys or [log.verifier],
                          scope={"case_no": "C-2026-17"}, generated_at=SIGNED_AT + timedelta(minutes=5))
    return json.loads(json.dumps(bundle))


def sample_bundle() -> dict[str, Any]:
    """The bundle kept in tests/fixtures/evidence/sample_bundle.json (regenerate by writing this out)."""
    return make_bundle(make_log(40, seed=9), [0, 1, 2, 3, 5, 7, 17, 23, 39])


LOG = make_log(300)
CHOSEN = [0, 2, 3, 7, 33, 64, 130, 255, 256, 257, 270, 299]
BUNDLE = make_bundle(LOG, CHOSEN)


def failing(bundle: dict[str, Any], trusted: list[str] | None = None) -> dict[int | None, str]:
    """The records that fail, by leaf, with why."""
    return {c.leaf_index: c.reason for c in verify_bundle(bundle, trusted).records if not c.verified}


def test_a_bundle_from_a_tree_of_300_leaves_verifies() -> None:
    report = verify_bundle(BUNDLE)
    assert report.ok and report.problems == ()
    assert [c.leaf_index for c in report.records] == CHOSEN and all(c.verified for c in report.records)
    assert report.checkpoint is not None and (report.checkpoint.size, report.checkpoint.at) == (300, SIGNED_AT)
    shipments = [c for c in report.records if c.type == "shipment_event"]
    assert len(BUNDLE["epcis"]["epcisBody"]["eventList"]) == len(shipments) == 8
    assert {c.label for c in report.records} >= {"SF0000000000/1", "audit 3", "verification 7"}


def test_the_bundle_has_the_documented_shape() -> None:
    assert set(BUNDLE) == {"format", "scope", "generated_at", "log", "checkpoint", "records", "epcis"}
    assert (BUNDLE["format"], BUNDLE["scope"], BUNDLE["generated_at"]) == (
        "courier-evidence-bundle/v1", {"case_no": "C-2026-17"}, "2026-11-28T12:05:00.000000Z")
    assert BUNDLE["log"] == {"origin": ORIGIN, "verifier_keys": [LOG.verifier]}
    entry = BUNDLE["records"][1]
    assert set(entry) == {"leaf_index", "record", "inclusion_proof"} and entry["record"] == LOG.records[2]
    assert [base64.b64decode(h) for h in entry["inclusion_proof"]] == LOG.proven(2).inclusion_proof


def scalar_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a string, number, boolean or null inside a JSON value."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in scalar_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in scalar_paths(v, (*path, i))]
    return [path]


def changed(value: Any) -> Any:
    """The value with one character (or bit) changed."""
    if isinstance(value, bool) or value is None:
        return not value if isinstance(value, bool) else 0
    if isinstance(value, int):
        return value ^ 1
    return ("X" if value[:1] != "X" else "Y") + value[1:] if value else "X"


def at(bundle: dict[str, Any], path: tuple[Any, ...]) -> tuple[Any, Any]:
    """The container holding path's last step, and that step."""
    node: Any = bundle
    for step in path[:-1]:
        node = node[step]
    return node, path[-1]


@pytest.mark.parametrize("position", [1, 2, 3, 6, 11])  # a shipment event, an audit, a verification, ...
def test_changing_any_value_or_key_of_a_record_fails_exactly_that_record(position: int) -> None:
    leaf = BUNDLE["records"][position]["leaf_index"]
    for path in scalar_paths(BUNDLE["records"][position]["record"]):
        bundle = copy.deepcopy(BUNDLE)
        node, step = at(bundle, ("records", position, "record", *path))
        node[step] = changed(node[step])
        assert set(failing(bundle)) == {leaf}, path
    for name in BUNDLE["records"][position]["record"]:
        bundle = copy.deepcopy(BUNDLE)
        record = bundle["records"][position]["record"]
        record[name + "_"] = record.pop(name)
        assert set(failing(bundle)) == {leaf}, name


def test_a_changed_leaf_index_fails_that_record() -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["records"][4]["leaf_index"] = 34
    assert set(failing(bundle)) == {34}
    bundle["records"][4]["leaf_index"] = 300
    assert failing(bundle) == {300: "leaf 300 is not in the checkpoint's tree of 300 leaves"}


def test_changing_any_hash_of_a_proof_fails_exactly_that_record() -> None:
    for position in (0, 8, 11):
        leaf, proof = BUNDLE["records"][position]["leaf_index"], BUNDLE["records"][position]["inclusion_proof"]
        for i in range(len(proof)):
            for char in (0, 20, 42):
                bundle = copy.deepcopy(BUNDLE)
                text = bundle["records"][position]["inclusion_proof"][i]
                bundle["records"][position]["inclusion_proof"][i] = text[:char] + changed(text[char]) + text[char + 1:]
                assert set(failing(bundle)) == {leaf}
        for shorter in (proof[:-1], proof + proof[:1], proof[::-1], "x"):
            bundle = copy.deepcopy(BUNDLE)
            bundle["records"][position]["inclusion_proof"] = shorter
            assert set(failing(bundle)) == {leaf}


def test_a_changed_checkpoint_body_or_signature_fails_the_checkpoint() -> None:
    body, signatures = BUNDLE["checkpoint"].split("\n\n")
    for i in range(len(body)):
        bundle = copy.deepcopy(BUNDLE)
        bundle["checkpoint"] = body[:i] + changed(body[i]) + body[i + 1:] + "\n\n" + signatures
        report = verify_bundle(bundle)
        assert report.checkpoint is None and not report.ok, i
        assert {c.reason for c in report.records} == {"the checkpoint does not verify"}
    for i in (2 + len(ORIGIN) + 1, 2 + len(ORIGIN) + 10, len(signatures) - 5):  # key id, signature
        bundle = copy.deepcopy(BUNDLE)
        bundle["checkpoint"] = body + "\n\n" + signatures[:i] + changed(signatures[i]) + signatures[i + 1:]
        report = verify_bundle(bundle)
        assert report.checkpoint is None and report.checkpoint_problem, i


def test_a_changed_event_id_fails_exactly_its_record() -> None:
    events = BUNDLE["epcis"]["epcisBody"]["eventList"]
    for n, event in enumerate(events):
        for char in (14, 30, 77):
            bundle = copy.deepcopy(BUNDLE)
            eid = bundle["epcis"]["epcisBody"]["eventList"][n]["eventID"]
            bundle["epcis"]["epcisBody"]["eventList"][n]["eventID"] = eid[:char] + changed(eid[char]) + eid[char + 1:]
            reason = "its EPCIS event's eventID is not the CBV 2.0 hash of the event"
            assert failing(bundle) == {event["cgw:leafIndex"]: reason}


def test_an_epcis_event_rehashed_after_a_change_still_fails_its_record() -> None:
    bundle = copy.deepcopy(BUNDLE)
    event = bundle["epcis"]["epcisBody"]["eventList"][2]
    event["bizStep"], event["disposition"] = "storing", "non_conformant"  # leaf 64 is accepted: in_progress
    event["eventID"] = event_hash(event)
    assert failing(bundle) == {event["cgw:leafIndex"]: "its EPCIS event differs from the record in bizStep, "
                                                       "disposition, eventID"}


def test_missing_extra_and_misplaced_epcis_events_are_named() -> None:
    bundle = copy.deepcopy(BUNDLE)
    events = bundle["epcis"]["epcisBody"]["eventList"]
    gone = events.pop(0)
    assert failing(bundle) == {gone["cgw:leafIndex"]: "its EPCIS event is missing"}
    events.append({**events[0], "cgw:leafIndex": 3})  # leaf 3 is an audit record
    assert failing(bundle)[3] == "an EPCIS event names it, but only shipment events are EPCIS events"
    events.append({**events[0], "cgw:leafIndex": 5})  # leaf 5 is not in the bundle
    report = verify_bundle(bundle)
    assert "EPCIS events name leaf 5, which is not among the records" in report.problems and not report.ok


def test_trusted_keys_replace_the_bundles_own() -> None:
    other = make_log(300, seed=2)  # same records, another key
    assert not failing(BUNDLE, [LOG.verifier])
    assert set(failing(BUNDLE, [other.verifier])) == set(CHOSEN)
    assert verify_bundle(BUNDLE, [other.verifier]).checkpoint_problem == "the note is signed by no known key"
    assert not failing(BUNDLE, [other.verifier, LOG.verifier])  # a rotated-out key still verifies old heads
    forged = make_bundle(other, CHOSEN)  # a bundle that lists the key that signed it, but not the log's key
    assert verify_bundle(forged).ok and not verify_bundle(forged, [LOG.verifier]).ok


def test_a_checkpoint_of_another_log_fails() -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["log"]["origin"] = "elsewhere.example/log"
    assert "the checkpoint is of log" in verify_bundle(bundle).checkpoint_problem


def test_building_refuses_a_bundle_that_would_not_verify() -> None:
    good = LOG.proven(5)
    for records, keys, reason in [
        ([ProvenRecord(5, good.record, good.inclusion_proof[:-1])], [LOG.verifier], "leaf 5: its inclusion proof"),
        ([ProvenRecord(6, good.record, good.inclusion_proof)], [LOG.verifier], "leaf 6: its inclusion proof"),
        ([ProvenRecord(300, good.record, [])], [LOG.verifier], "not in the checkpoint's tree"),
        ([good], [make_log(3, seed=4).verifier], "does not open with the given keys"),
    ]:
        with pytest.raises(BundleError, match=reason):
            build_bundle(records, checkpoint=LOG.note, verifier_keys=keys, scope={}, generated_at=SIGNED_AT)


def test_unchecked_building_exports_a_changed_row_for_the_verifier_to_name() -> None:
    changed_row = {**LOG.records[5], "location": "elsewhere"}
    proven = [LOG.proven(4), ProvenRecord(5, changed_row, LOG.proven(5).inclusion_proof)]
    with pytest.raises(BundleError, match="leaf 5"):
        build_bundle(proven, checkpoint=LOG.note, verifier_keys=[LOG.verifier], scope={}, generated_at=SIGNED_AT)
    bundle = build_bundle(proven, checkpoint=LOG.note, verifier_keys=[LOG.verifier], scope={},
                          generated_at=SIGNED_AT, check=False)
    assert bundle["log"]["origin"] == ORIGIN
    assert failing(json.loads(json.dumps(bundle))) == {
        5: "its inclusion proof does not lead from the record's hash to the checkpoint's root"}


def test_something_that_is_not_a_bundle_is_refused() -> None:
    for thing in ([], {"format": "other"}, {**BUNDLE, "records": {}}):
        with pytest.raises(BundleError, match="not an evidence bundle"):
            verify_bundle(thing)


def test_malformed_entries_fail_alone() -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["records"][0] = "not an entry"
    bundle["records"][1]["leaf_index"] = "2"
    report = verify_bundle(bundle)
    assert [c.reason for c in report.records[:2]] == ["entry 0 is not a leaf_index, a record and an inclusion proof",
                                                      "entry 1 has no integer leaf_index"]
    assert all(c.verified for c in report.records[2:])


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 400) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                        max_size=3), max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_change_makes_the_verifier_crash_or_pass(data: st.DataObject) -> None:
    small = make_bundle(LOG, [2, 3])
    unsigned = {("generated_at",), ("epcis", "creationDate")}  # the exporter's word, like the scope
    paths = [p for p in scalar_paths(small) if p[0] != "scope" and p not in unsigned]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(json_values)
    node, step = at(small, path)
    if node[step] == value:
        return
    node[step] = value
    try:
        report = verify_bundle(small)
    except BundleError:
        return
    if path[0] == "log" and path[1] == "verifier_keys" and isinstance(value, str):
        return  # a list of keys that still holds the signing key may verify
    assert not report.ok, path


def test_the_fixture_bundle_is_what_the_code_builds_today() -> None:
    kept = json.loads((FIXTURES / "evidence" / "sample_bundle.json").read_text())
    assert kept == sample_bundle()  # pins canonical bytes, proofs, checkpoint and EPCIS hashes
    assert verify_bundle(kept).ok
