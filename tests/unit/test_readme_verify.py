"""README's by-hand check of an evidence bundle works on real bundles: a reader who follows it gets the answer
the offline verifier gives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.evidence import merkle
from gateway.core.evidence.bundle import ProvenRecord, build_bundle, verify_bundle
from gateway.core.evidence.checkpoint import sign_checkpoint, verifier_key
from gateway.core.evidence.records import record_leaf_hash
from tests.conftest import FIXTURES

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "courier-gateway.example/evidence"


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Checking a bundle"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README's Checking a bundle section has no Python block"
    return found.group(1)


def by_hand(tmp_path: Path, bundle: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    script, path = tmp_path / "check.py", tmp_path / "bundle.json"
    script.write_text(readme_snippet(), encoding="utf-8")
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=False)


def verdicts(run: subprocess.CompletedProcess[str]) -> dict[int, str]:
    assert run.returncode == 0, run.stderr
    return {int(index): verdict for index, verdict in (line.split(" ", 1) for line in run.stdout.splitlines())}


def live_like_bundle() -> dict[str, Any]:
    """A log of records as the gateway writes them (Chinese text, scores 1.0 and 0.93, nested details)."""
    records: list[dict[str, Any]] = []
    for i in range(37):
        records.append({
            "type": "shipment_event", "waybill_no": f"SF{i:010d}", "seq": 1, "kind": "HELD" if i % 3 else "ACCEPTED",
            "from_state": None, "to_state": "HELD" if i % 3 else "ACCEPTED", "principal": "courier-7",
            "terminal_id": "T-9", "device_id": "", "location": "上海市浦东新区/3号线", "note": "高仿 名牌包",
            "recorded_at": f"2026-11-28T08:00:{i:02d}.{i * 997:06d}Z",
            "details": {"hits": [{"score": 1.0 if i % 2 else 0.93, "field": "items[0].description",
                                  "entry_id": i, "explanation": "“高仿” 命中"}], "weight_g": 1200}})
    size = len(records)
    leaves = {(0, i): record_leaf_hash(r) for i, r in enumerate(records)}
    store = {**leaves, **{(level, i): h for level, i, h in merkle.stored_nodes_completed(0, size, leaves)}}
    key = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
    root = merkle.root_hash(size, store)
    note = sign_checkpoint(ORIGIN, size, root, datetime(2026, 11, 28, 12, tzinfo=UTC), key, ORIGIN)
    proven = [ProvenRecord(i, records[i], merkle.inclusion_proof(i, size, store)) for i in (0, 1, 17, 35, 36)]
    return build_bundle(proven, checkpoint=note, verifier_keys=[verifier_key(ORIGIN, key.public_key())],
                        scope={"case_no": "C-2026-17"}, generated_at=datetime(2026, 11, 28, 12, 5, tzinfo=UTC))


def test_the_by_hand_check_verifies_every_record_the_verifier_verifies(tmp_path: Path) -> None:
    for bundle in (json.loads((FIXTURES / "evidence" / "sample_bundle.json").read_text()), live_like_bundle()):
        assert verify_bundle(bundle).ok
        found = verdicts(by_hand(tmp_path, bundle))
        assert found == {r["leaf_index"]: "verified" for r in bundle["records"]}


def test_the_by_hand_check_names_a_changed_record(tmp_path: Path) -> None:
    bundle = live_like_bundle()
    bundle["records"][2]["record"]["details"]["hits"][0]["score"] = 0.5
    found = verdicts(by_hand(tmp_path, bundle))
    assert found[17] == "DOES NOT VERIFY"
    assert [i for i, v in found.items() if v != "verified"] == [17]


def test_the_by_hand_check_refuses_a_checkpoint_not_signed_by_the_key(tmp_path: Path) -> None:
    bundle = live_like_bundle()
    bundle["checkpoint"] = bundle["checkpoint"].replace("\n37\n", "\n38\n", 1)
    run = by_hand(tmp_path, bundle)
    assert run.returncode != 0 and "InvalidSignature" in run.stderr
    other = Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32)
    bundle = live_like_bundle()
    bundle["log"]["verifier_keys"] = [verifier_key(ORIGIN, other.public_key())]
    run = by_hand(tmp_path, bundle)
    assert run.returncode != 0 and "no signature by this key" in run.stderr
