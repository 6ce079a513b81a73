"""The doctor's streamed tree head: the same root as the log's own Merkle code, at every size."""

from __future__ import annotations

import hashlib

from gateway.commands.doctor import _TreeHead, shown_dsn
from gateway.core.evidence.merkle import root_hash


def test_the_streamed_root_is_the_logs_root_at_every_size() -> None:
    leaves = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(130)]
    tree = _TreeHead()
    assert tree.root() == hashlib.sha256(b"").digest()
    for size, leaf in enumerate(leaves, start=1):
        tree.add(leaf)
        assert tree.root() == root_hash(size, {(0, i): h for i, h in enumerate(leaves[:size])}), size


def test_a_dsn_is_shown_without_its_password() -> None:
    assert shown_dsn("postgresql://gw:s3cret@db.internal:5432/courier") == "postgresql://gw:***@db.internal:5432/courier"
    assert shown_dsn("postgresql://gw@/courier?host=/run") == "postgresql://gw@/courier?host=/run"
