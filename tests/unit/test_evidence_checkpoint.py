"""Signed checkpoints: byte-compatible with Go's sumdb note package and sum.golang.org, and tamper-evident."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.evidence import checkpoint as cp
from gateway.core.evidence.checkpoint import CheckpointError

# golang.org/x/mod/sumdb/note note_test.go: a signer key (0x01 || Ed25519 seed), its verifier key, and the
# exact note Go's Sign writes for this text.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_PETER_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
                "dngotpRZb6KE6RyyBwJnAM=\n")
GO_ENOCH_SIG = ("\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwn"
                "WLox33WWd1RvMc+QQ=\n")

# The Go checksum database's verifier key, and one of its published signed tree heads (a checkpoint with no
# extension lines).
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = ("go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n"
              "\u2014 sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg"
              "3dxXABkGZZKdsQ8=\n")

ORIGIN = "courier-gateway.example/evidence"
AT = datetime(2026, 11, 28, 10, 15, 30, 123456, tzinfo=UTC)
ROOT = bytes(range(32))


def go_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])  # the key material may hold "+" itself
    assert seed[0] == 1 and len(seed) == 33
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def key_pair(seed: int, name: str = ORIGIN) -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return private, cp.verifier_key(name, private.public_key())


def test_our_signature_is_byte_for_byte_what_go_writes() -> None:
    private = go_private_key()
    assert cp.verifier_key("PeterNeumann", private.public_key()) == GO_PETER
    assert cp.sign_note(GO_TEXT, private, "PeterNeumann") == GO_TEXT + "\n" + GO_PETER_SIG


def test_notes_go_signed_open_with_any_of_their_keys() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    assert cp.open_note(note, [GO_PETER]) == (GO_TEXT, "c74f20a3")
    assert cp.open_note(note, [GO_ENOCH]) == (GO_TEXT, "af0cfe78")
    with pytest.raises(CheckpointError, match="signed by no known key"):
        cp.open_note(note, [])
    corrupt = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(CheckpointError, match="signature of key PeterNeumann\\+c74f20a3 does not verify"):
        cp.open_note(corrupt, [GO_PETER])


def test_base64_with_its_unused_bits_set_is_refused() -> None:
    # "AM=" and "AN=" differ only in bits base64 leaves unused: the same signature bytes, another note text.
    respelled = GO_TEXT + "\n" + GO_PETER_SIG.replace("AM=\n", "AN=\n")
    assert base64.b64decode(respelled.rsplit(" ", 1)[1]) == base64.b64decode(GO_PETER_SIG.rsplit(" ", 1)[1])
    with pytest.raises(CheckpointError, match="not base64"):
        cp.open_note(respelled, [GO_PETER])


def test_a_published_sum_golang_org_checkpoint_opens() -> None:
    found = cp.open_checkpoint(SUMDB_NOTE, [SUMDB_KEY])
    assert (found.origin, found.size, found.at, found.key_id) == ("go.sum database tree", 65209736, None, "033de0ae")
    assert base64.b64encode(found.root).decode() == "5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo="
    with pytest.raises(CheckpointError):
        cp.open_checkpoint(SUMDB_NOTE.replace("65209736", "65209737"), [SUMDB_KEY])


def test_key_ids_follow_the_signed_note_formula() -> None:
    assert cp.key_id(SUMDB_KEY) == "033de0ae" and cp.key_id(GO_ENOCH) == "af0cfe78"
    private, key = key_pair(7)
    raw = base64.b64decode(key.split("+", 2)[2])
    assert key.split("+")[1] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw[1:]).digest()[:4].hex()


def test_a_checkpoint_round_trips_with_its_time_line() -> None:
    private, key = key_pair(1)
    note = cp.sign_checkpoint(ORIGIN, 300, ROOT, AT, private, ORIGIN)
    body = note.split("\n\n")[0]
    assert body == f"{ORIGIN}\n300\n{base64.b64encode(ROOT).decode()}\ntime 2026-11-28T10:15:30Z"
    assert note.split("\n\n")[1].startswith(f"\u2014 {ORIGIN} ")
    found = cp.open_checkpoint(note, [key])
    assert found == cp.Checkpoint(ORIGIN, 300, ROOT, AT.replace(microsecond=0), cp.key_id(key))


def test_a_time_in_another_zone_is_written_in_utc() -> None:
    private, key = key_pair(1)
    at = datetime(2026, 11, 28, 18, 15, 30, tzinfo=timezone(timedelta(hours=8)))
    assert "time 2026-11-28T10:15:30Z\n" in cp.sign_checkpoint(ORIGIN, 1, ROOT, at, private, ORIGIN)
    with pytest.raises(CheckpointError, match="time zone"):
        cp.sign_checkpoint(ORIGIN, 1, ROOT, datetime(2026, 1, 1), private, ORIGIN)


def test_any_changed_byte_of_the_body_or_signature_fails() -> None:
    private, key = key_pair(1)
    note = cp.sign_checkpoint(ORIGIN, 300, ROOT, AT, private, ORIGIN)
    failures = 0
    for i, char in enumerate(note[:-1]):  # the final newline aside, every character
        for other in {"x", "0", "\n", " "} - {char}:
            with pytest.raises(CheckpointError):
                cp.open_checkpoint(note[:i] + other + note[i + 1:], [key])
            failures += 1
    assert failures > 4 * 150


def test_a_note_signed_by_another_key_fails_and_rotated_keys_still_verify() -> None:
    old, old_key = key_pair(1)
    new, new_key = key_pair(2)
    stranger = key_pair(3)[1]
    note = cp.sign_checkpoint(ORIGIN, 5, ROOT, AT, old, ORIGIN)
    with pytest.raises(CheckpointError, match="no known key"):
        cp.open_checkpoint(note, [stranger])
    with pytest.raises(CheckpointError, match="no known key"):
        cp.open_checkpoint(note, [new_key])
    assert cp.open_checkpoint(note, [new_key, old_key]).key_id == cp.key_id(old_key)
    assert cp.open_checkpoint(cp.sign_checkpoint(ORIGIN, 6, ROOT, AT, new, ORIGIN), [new_key, old_key]).key_id \
        == cp.key_id(new_key)


def test_a_cosigned_note_verifies_with_either_and_a_bad_known_signature_rejects_it() -> None:
    (a, a_key), (b, b_key) = key_pair(1), key_pair(2, "witness.example/w1")
    body = cp.checkpoint_body(ORIGIN, 5, ROOT, AT)
    sig_a = cp.sign_note(body, a, ORIGIN).split("\n\n")[1]
    sig_b = cp.sign_note(body, b, "witness.example/w1").split("\n\n")[1]
    note = body + "\n" + sig_a + sig_b
    assert cp.open_checkpoint(note, [b_key]).key_id == cp.key_id(b_key)
    assert cp.open_checkpoint(note, [a_key, b_key]).key_id == cp.key_id(a_key)
    broken = body + "\n" + sig_a + sig_b[:30] + ("A" if sig_b[30] != "A" else "B") + sig_b[31:]
    with pytest.raises(CheckpointError, match="witness.example/w1.* does not verify"):
        cp.open_checkpoint(broken, [a_key, b_key])
    assert cp.open_checkpoint(broken, [a_key]).size == 5  # an unknown key's signature is not looked at


@pytest.mark.parametrize(("note", "reason"), [
    ("", "no blank line"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n", "no blank line"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\n", "1 to 100 signature lines"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\n- {ORIGIN} AAAA\n", "not a signature line"),
    (f"{ORIGIN}\n5\x00\n{base64.b64encode(ROOT).decode()}\n\n\u2014 {ORIGIN} AAAAAA==\n", "control character"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\n\u2014 {ORIGIN} %%%\n", "not base64"),
])
def test_malformed_notes_say_why(note: str, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason):
        cp.open_checkpoint(note, [key_pair(1)[1]])


@pytest.mark.parametrize(("body", "reason"), [
    (f"{ORIGIN}\n05\n{base64.b64encode(ROOT).decode()}\n", "not a decimal number"),
    (f"{ORIGIN}\n-5\n{base64.b64encode(ROOT).decode()}\n", "not a decimal number"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n", "base64 of 32 bytes"),
    (f"{ORIGIN}\n5\n", "an origin, a size and a root"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntime 2026-13-01T00:00:00Z\n", "is not a time"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntime yesterday\n", "time line"),
    (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntime 2026-11-01T00:00:00Z\ntime 2026-11-01T00:00:00Z\n",
     "at most once"),
])
def test_malformed_checkpoint_bodies_say_why_even_when_signed(body: str, reason: str) -> None:
    private, key = key_pair(1)
    with pytest.raises(CheckpointError, match=reason):
        cp.open_checkpoint(cp.sign_note(body, private, ORIGIN), [key])


def test_other_extension_lines_are_kept_opaque() -> None:
    private, key = key_pair(1)
    body = cp.checkpoint_body(ORIGIN, 5, ROOT, AT) + "witnessed-by example.org\n"
    assert cp.open_checkpoint(cp.sign_note(body, private, ORIGIN), [key]).at == AT.replace(microsecond=0)


@pytest.mark.parametrize("bad", [
    "PeterNeumann+c74f20a3", "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "Peter Neumann+c74f20a3+ARpc",
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "PeterNeumann+c74f20a3+!!!",
])
def test_malformed_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(CheckpointError):
        cp.key_id(bad)


def test_key_names_with_spaces_or_plus_are_refused() -> None:
    private = key_pair(1)[0]
    for name in ("a b", "a+b", ""):
        with pytest.raises(CheckpointError, match="key name"):
            cp.sign_checkpoint(ORIGIN, 1, ROOT, AT, private, name)
