"""`evidence verify` in a process of its own, with no database, no gateway and no setting in its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.evidence.checkpoint import verifier_key
from tests.conftest import FIXTURES, REPO

SAMPLE = FIXTURES / "evidence" / "sample_bundle.json"
# Runs the command through a parser the way `python -m gateway` builds it, then reports what it imported.
SCRIPT = """
import argparse, sys
from gateway.commands import evidence
parser = argparse.ArgumentParser(prog="python -m gateway")
evidence.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
status = args.func(args)
heavy = sorted(m for m in ("asyncpg", "grpc", "gateway.storage", "gateway.server", "gateway.live") if m in sys.modules)
print("imported:", ",".join(heavy) or "none")
sys.exit(status)
"""


def verify(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The command run from an empty directory, its environment stripped of every gateway setting."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "GATEWAY_", "TEST_DATABASE", "IDENTITY_", "BLOB_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", SCRIPT, "evidence", "verify", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_sample_bundle_verifies_with_nothing_but_the_file(tmp_path: Path) -> None:
    done = verify(tmp_path, str(SAMPLE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFIED: checkpoint" in done.stdout and "9 of 9 records verified" in done.stdout
    assert "imported: none" in done.stdout


def test_with_the_logs_key_it_verifies_and_with_another_it_fails(tmp_path: Path) -> None:
    logs_key = json.loads(SAMPLE.read_text())["log"]["verifier_keys"][0]
    other = verifier_key("courier-gateway.example/evidence", Ed25519PrivateKey.generate().public_key())
    assert verify(tmp_path, str(SAMPLE), "--key", logs_key).returncode == 0
    failed = verify(tmp_path, str(SAMPLE), "--key", other)
    assert failed.returncode == 1 and "the note is signed by no known key" in failed.stdout


def test_a_tampered_copy_fails_and_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    bundle = json.loads(SAMPLE.read_text())
    bundle["records"][0]["record"]["location"] = "elsewhere"
    (tmp_path / "tampered.json").write_text(json.dumps(bundle))
    failed = verify(tmp_path, "tampered.json")
    assert failed.returncode == 1 and "8 of 9 records verified" in failed.stdout
    missing = verify(tmp_path, "nowhere.json")
    assert missing.returncode == 2 and "cannot read nowhere.json" in missing.stderr
