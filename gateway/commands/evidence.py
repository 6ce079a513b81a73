"""`python -m gateway evidence ACTION`: the evidence log's commands. `verify` checks a bundle offline; `check`
checks the live log in DATABASE_URL.

`evidence verify BUNDLE [--key VERIFIER_KEY ...]` needs neither the database nor the gateway nor any setting:
it prints each record (leaf, type, waybill/seq or id) as verified or why not, then a summary, and exits 0
when the checkpoint and every record verify, 1 when anything does not, 2 when the file cannot be read as a
bundle or a --key is malformed. Keys given with --key replace those the bundle lists: an investigator who
holds the log's public keys checks that the bundle was signed by the log, not merely by whoever made it.

`evidence check [--sample N]` runs the same check of the live log as `python -m gateway doctor` (one function,
gateway.commands.doctor.check_evidence): the latest signed head's signature under EVIDENCE_SIGNING_KEY and
EVIDENCE_PAST_KEYS, its root from every leaf and from the stored subtrees, and each leaf's record rebuilt from its
row (every leaf, or the newest N). Exit 0 when nothing failed, 1 when something did, 2 for a bad setting.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.core.evidence.bundle import BundleError, BundleReport, verify_bundle
from gateway.core.evidence.checkpoint import CheckpointError, key_id


def register(sub: Any) -> None:
    """Adds the `evidence` command group and its `verify` action."""
    evidence = sub.add_parser("evidence", help="the evidence log: verify an exported bundle offline")
    actions = evidence.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check a bundle's checkpoint, records, proofs and EPCIS events")
    verify.add_argument("bundle", type=Path, help="the bundle's JSON file")
    verify.add_argument("--key", dest="keys", action="append", metavar="VERIFIER_KEY",
                        help="a log verifier key (name+hex+base64) to trust instead of the bundle's; repeatable")
    verify.set_defaults(func=lambda args: run_verify(args.bundle, keys=args.keys))
    check = actions.add_parser("check", help="check the live log in DATABASE_URL: signed head, leaves, records")
    check.add_argument("--sample", type=int, default=0, metavar="N",
                       help="rebuild only the newest N leaves' records from their rows (default 0: every leaf)")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Checks the live evidence log and prints the table; 1 when anything failed."""
    from gateway.commands.dev import dev_env
    from gateway.commands.doctor import check_evidence, show
    from gateway.commands.tables import with_connection
    from gateway.settings import SettingsError, load_settings

    try:
        settings = load_settings(dev_env(os.environ))
    except SettingsError as exc:
        Console(stderr=True).print(f"gateway: bad setting: {escape(str(exc))}")
        return 2
    if args.sample < 0:
        Console(stderr=True).print("gateway: --sample: must be 0 (every leaf) or more")
        return 2
    checks = with_connection(lambda conn: check_evidence(settings, conn, args.sample))
    show(checks, Console())
    return 1 if any(c.status == "fail" for c in checks) else 0


def _read(path: Path) -> Any:
    """The bundle file's JSON, or BundleError saying why it cannot be read."""
    try:
        return json.loads(path.read_bytes())
    except OSError as error:
        raise BundleError(f"cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path} is not JSON: {error}") from None


def run_verify(path: str | Path, *, keys: Sequence[str] | None = None, console: Console | None = None,
               errors: Console | None = None) -> int:
    """Verifies one bundle file and prints the report; returns the exit status."""
    out, err = console or Console(), errors or Console(stderr=True)
    try:
        for key in keys or ():
            key_id(key)
        report = verify_bundle(_read(Path(path)), list(keys) if keys else None)
    except (BundleError, CheckpointError) as problem:
        err.print(f"gateway: {escape(problem.message)}")
        return 2
    show(report, out)
    return 0 if report.ok else 1


def show(report: BundleReport, console: Console) -> None:
    """The table of records, the bundle's problems, and the summary line."""
    table = Table("leaf", "type", "record", "result")
    for check in report.records:
        result = "[green]verified[/]" if check.verified else f"[red]{escape(check.reason)}[/]"
        leaf = "-" if check.leaf_index is None else str(check.leaf_index)
        table.add_row(leaf, escape(check.type), escape(check.label), result)
    console.print(table)
    for problem in report.problems:
        console.print(f"[red]bundle:[/] {escape(problem)}")
    console.print(summary(report))


def summary(report: BundleReport) -> str:
    """One line: the checkpoint, and how many records verified."""
    verified = sum(c.verified for c in report.records)
    counts = f"{verified} of {len(report.records)} records verified"
    head = report.checkpoint
    if head is None:
        return f"[red]FAILED[/]: the checkpoint does not verify ({escape(report.checkpoint_problem)}); {counts}"
    signed = f", signed {head.at:%Y-%m-%dT%H:%M:%SZ}" if head.at else ""
    where = f"checkpoint {escape(head.origin)} at {head.size} leaves{signed} by key {head.key_id}"
    return f"{'[green]VERIFIED[/]' if report.ok else '[red]FAILED[/]'}: {where}; {counts}"
