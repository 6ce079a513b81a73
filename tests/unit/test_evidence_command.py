"""`evidence verify`: the table, the summary and the exit status a person relies on."""

from __future__ import annotations

import argparse
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gateway.commands import evidence
from tests.unit.test_evidence_bundle import BUNDLE, CHOSEN, LOG, make_log


def run(argv: list[str]) -> tuple[int, str, str]:
    """The command run through its own parser, as `python -m gateway` runs it: status, stdout, stderr."""
    parser = argparse.ArgumentParser(prog="python -m gateway")
    evidence.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    status = evidence.run_verify(args.bundle, keys=args.keys, console=Console(file=out, width=220),
                                 errors=Console(file=err, width=220))
    return status, out.getvalue(), err.getvalue()


def write(tmp_path: Path, bundle: Any, name: str = "bundle.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    return str(path)


def test_a_bundle_that_verifies_exits_0_with_every_record_shown(tmp_path: Path) -> None:
    status, out, _ = run(["evidence", "verify", write(tmp_path, BUNDLE)])
    assert status == 0
    assert out.count("verified") == len(CHOSEN) + 1  # each row, and the summary
    assert "SF0000000000/1" in out and "audit 3" in out and "verification 7" in out and "shipment_event" in out
    key = LOG.verifier.split("+")[1]
    assert (f"VERIFIED: checkpoint courier-gateway.example/evidence at 300 leaves, signed 2026-11-28T12:00:00Z by key "
            f"{key}; {len(CHOSEN)} of {len(CHOSEN)} records verified") in out


def test_a_changed_record_exits_1_naming_that_record(tmp_path: Path) -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["records"][2]["record"]["case_no"] = "C-2026-18"
    status, out, _ = run(["evidence", "verify", write(tmp_path, bundle)])
    assert status == 1
    row = next(line for line in out.splitlines() if "audit 3" in line)
    assert "inclusion proof does not lead" in row
    assert "FAILED: checkpoint" in out and f"{len(CHOSEN) - 1} of {len(CHOSEN)} records verified" in out


def test_keys_given_replace_the_bundles_and_a_stranger_key_fails(tmp_path: Path) -> None:
    path = write(tmp_path, BUNDLE)
    stranger = make_log(3, seed=5).verifier
    status, out, _ = run(["evidence", "verify", path, "--key", stranger])
    assert status == 1
    assert "FAILED: the checkpoint does not verify (the note is signed by no known key)" in out
    assert out.count("the checkpoint does not verify") == len(CHOSEN) + 1
    assert run(["evidence", "verify", path, "--key", stranger, "--key", LOG.verifier])[0] == 0


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read"), ("{not json", "is not JSON"), (b"\xff\xfe", "is not JSON"),
    ('{"format": "other"}', "not an evidence bundle"), ("[]", "not an evidence bundle"),
])
def test_an_unreadable_file_exits_2_saying_why(tmp_path: Path, content: str | bytes | None, reason: str) -> None:
    path = tmp_path / "bundle.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    status, out, err = run(["evidence", "verify", str(path)])
    assert (status, out) == (2, "") and reason in err


def test_a_malformed_key_exits_2(tmp_path: Path) -> None:
    status, _, err = run(["evidence", "verify", write(tmp_path, BUNDLE), "--key", "not-a-key"])
    assert status == 2 and "verifier key" in err


def test_evidence_is_a_group_whose_actions_are_required() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    evidence.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["evidence"])
    assert stopped.value.code == 2
    assert parser.parse_args(["evidence", "verify", "b.json"]).action == "verify"


def test_reasons_are_printed_as_text_not_markup(tmp_path: Path) -> None:
    bundle = copy.deepcopy(BUNDLE)
    bundle["records"][0]["record"]["waybill_no"] = "[bold]SF0000000000"
    status, out, _ = run(["evidence", "verify", write(tmp_path, bundle)])
    assert status == 1 and "[bold]SF0000000000/1" in out
