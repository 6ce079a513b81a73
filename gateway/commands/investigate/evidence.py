"""`investigate export` and `investigate head`: an evidence bundle to a file, and the log's signed tree head."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from courier.v1 import investigation_pb2
from gateway.commands.evidence import show as show_report
from gateway.commands.investigate.common import (
    CALL_TIMEOUT_S,
    Session,
    as_dict,
    cell,
    emit,
    facts,
    launch,
    say,
    shown_time,
)
from gateway.core.evidence.bundle import BundleError, BundleReport, verify_bundle
from gateway.core.evidence.checkpoint import CheckpointError


def add(actions: Any, common: argparse.ArgumentParser) -> None:
    """Adds the `export` and `head` actions."""
    p = actions.add_parser("export", parents=[common], help="an evidence bundle that proves itself, to a file",
                           description="The records of one shipment (--waybill) or of the case, with their "
                                       "proofs and the signed tree head, written to --out.")
    p.add_argument("--waybill", default="", help="one shipment's records (default: the case's)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the bundle (JSON)")
    p.add_argument("--verify", action="store_true",
                   help="check the bundle right away, as `evidence verify` does (exit 1 when it fails)")
    p.set_defaults(func=launch(run_export))
    h = actions.add_parser("head", parents=[common], help="the evidence log's signed tree head",
                           description="The latest signed tree head, or with --fresh one signed now.")
    h.add_argument("--fresh", action="store_true", help="sign a new head over every leaf appended so far")
    h.set_defaults(func=launch(run_head))


def write_atomically(path: Path, text: str) -> None:
    """Writes the file whole or not at all: a failed export never leaves half a bundle under the name."""
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


async def run_export(s: Session, args: argparse.Namespace) -> int:
    """Exports, writes the bundle, prints what it holds and how to check it; with --verify, checks it."""
    request = investigation_pb2.ExportEvidenceRequest(case_no=s.case_no, waybill_no=args.waybill)
    bundle = await s.investigation.ExportEvidence(request, metadata=s.metadata, timeout=CALL_TIMEOUT_S)
    try:
        write_atomically(args.out, bundle.bundle_json)
    except OSError as error:
        print(f"gateway: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    report = _verified(bundle.bundle_json) if args.verify else None
    if s.as_json:
        _emit_export(bundle, args.out, report)
    else:
        _show_export(s, bundle, args.out, report)
    return 1 if report is not None and (isinstance(report, str) or not report.ok) else 0


def _verified(bundle_json: str) -> BundleReport | str:
    """The verifier's report on the bundle, or why it could not be read as one."""
    try:
        return verify_bundle(json.loads(bundle_json))
    except (ValueError, BundleError, CheckpointError) as problem:
        return getattr(problem, "message", str(problem))


def _emit_export(bundle: investigation_pb2.EvidenceBundle, out: Path, report: BundleReport | str | None) -> None:
    body = {k: v for k, v in as_dict(bundle).items() if k != "bundle_json"}  # the file holds it
    body["out"] = str(out)
    if isinstance(report, str):
        body["verified"], body["problems"] = False, [report]
    elif report is not None:
        body["verified"], body["problems"] = report.ok, list(report.problems)
        body["records"] = [{"leaf_index": c.leaf_index, "type": c.type, "record": c.label,
                            "verified": c.verified, "reason": c.reason} for c in report.records]
    emit(body)


def _show_export(s: Session, bundle: investigation_pb2.EvidenceBundle, out: Path,
                 report: BundleReport | str | None) -> None:
    say(s.out, f"wrote {out}: {bundle.record_count} records, proven against a tree of {bundle.tree_size} leaves; "
               f"{bundle.pending_records} records pending (not yet in the log, left out)")
    if bundle.pending_records:
        say(s.out, "the pending records are appended within seconds: export again to include them")
    say(s.out, f"check it (no gateway needed): python -m gateway evidence verify {shlex.quote(str(out))}")
    if isinstance(report, str):
        say(s.out, f"FAILED: {report}", "red")
    elif report is not None:
        show_report(report, s.out)


async def run_head(s: Session, args: argparse.Namespace) -> int:
    """Prints the signed tree head: size, root, time, key id, the checkpoint note and the verifier keys."""
    request = investigation_pb2.GetTreeHeadRequest(case_no=s.case_no, fresh=args.fresh)
    head = await s.investigation.GetTreeHead(request, metadata=s.metadata, timeout=CALL_TIMEOUT_S)
    if s.as_json:
        emit({**as_dict(head), "root_hash_hex": head.root_hash.hex()})
    else:
        show_head(head, s.out)
    return 0


def show_head(head: investigation_pb2.SignedTreeHead, out: Console) -> None:
    """The head's facts, its checkpoint note as signed, and the keys that verify it."""
    out.print(Panel(facts([("tree size", head.tree_size), ("root hash", head.root_hash.hex()),
                           ("signed at", shown_time(head.signed_at)), ("key id", head.key_id)]),
                    title="signed tree head", expand=False))
    out.print(Panel(cell(head.checkpoint.rstrip("\n")), title="checkpoint", expand=False))
    say(out, "verifier keys (the current one first; pass to `evidence verify --key` to trust them):")
    for key in head.verifier_keys:
        say(out, f"  {key}")
