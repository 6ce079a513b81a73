"""Signed tree heads as C2SP checkpoints: a signed note (c2sp.org/signed-note) whose text is a tlog-checkpoint.

The note text is the origin line, the tree size in decimal, the base64 root hash, then extension lines; we add
one, `time <RFC 3339 UTC, seconds>Z`, saying when the head was signed. A blank line follows the text, then
signature lines `— <key name> <base64(4-byte key ID || Ed25519 signature of the text)>` (U+2014, space).
The key ID is SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4], 0x01 naming Ed25519; verifier
keys are written `<name>+<8 hex key ID>+<base64(0x01 || public key)>`, as golang.org/x/mod/sumdb/note and
Tessera write them, so those tools read our notes and we read theirs. Keys are rotated and old public keys
kept: a note verifies when a signature of any known key does, and a known key's bad signature rejects it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core.errors import DomainError

ED25519 = b"\x01"  # the signed-note signature type of Ed25519
DASH = "\u2014"
MAX_SIGNATURES = 100  # the spec asks verifiers to cap them and to accept at least 16; Go's note package caps at 100
_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]*")
_TIME = re.compile(r"time (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")  # and unpaired surrogates, which are not UTF-8


class CheckpointError(DomainError):
    """A note that is malformed, signed by no known key, or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified tree head: which log, how many leaves, their root, when it was signed and by which key."""

    origin: str
    size: int
    root: bytes
    at: datetime | None  # None for a checkpoint with no time line (other logs' notes)
    key_id: str  # the 8 hex digits of the key whose signature verified


@dataclass(frozen=True)
class _Key:
    name: str
    id: bytes
    public: Ed25519PublicKey


def decode_base64(text: str) -> bytes | None:
    """Standard base64 in its one canonical spelling, or None: unused bits set or odd padding would let a
    changed character decode to the same bytes, and a changed byte must never verify."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode() == text else None


def _raw(public_key: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public_key, bytes):
        return public_key
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _key_hash(name: str, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw).digest()[:4]


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise CheckpointError(f"a key name must be non-empty with no spaces or '+': {name!r}")


def verifier_key(key_name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """The verifier key text `<name>+<8 hex key ID>+<base64(0x01 || public key)>`."""
    _check_name(key_name)
    raw = _raw(public_key)
    if len(raw) != 32:
        raise CheckpointError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return f"{key_name}+{_key_hash(key_name, raw).hex()}+{base64.b64encode(ED25519 + raw).decode()}"


def _parse_key(text: str) -> _Key:
    name, sep, rest = text.strip().partition("+")
    hex_id, sep2, material = rest.partition("+")
    if not (sep and sep2 and re.fullmatch(r"[0-9a-f]{8}", hex_id)):
        raise CheckpointError(f"a verifier key is <name>+<8 hex digits>+<base64 key>, not {text!r}")
    _check_name(name)
    data = decode_base64(material)
    if data is None:
        raise CheckpointError(f"the key of verifier key {name}+{hex_id} is not base64")
    if len(data) != 33 or data[:1] != ED25519:
        raise CheckpointError(f"verifier key {name}+{hex_id} is not an Ed25519 key (0x01 and 32 bytes)")
    if _key_hash(name, data[1:]) != bytes.fromhex(hex_id):
        raise CheckpointError(f"verifier key {name}+{hex_id}: the key ID does not match the name and key")
    return _Key(name, bytes.fromhex(hex_id), Ed25519PublicKey.from_public_bytes(data[1:]))


def key_id(verifier_key: str) -> str:
    """The 8 hex digits of a verifier key's ID (the key is checked)."""
    return _parse_key(verifier_key).id.hex()


def checkpoint_body(origin: str, size: int, root: bytes, at: datetime) -> str:
    """The note text of a checkpoint: origin, size, base64 root, and our time line."""
    if not origin or _CONTROL.search(origin) or "\n" in origin:
        raise CheckpointError("the origin must be one non-empty line")
    if size < 0 or len(root) != 32:
        raise CheckpointError("a checkpoint needs a size of 0 or more and a 32-byte root")
    if at.tzinfo is None:
        raise CheckpointError("the signing time must carry its time zone")
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {stamp}\n"


def sign_note(text: str, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """A signed note of one Ed25519 signature over text (which ends in a newline)."""
    _check_name(key_name)
    if not text.endswith("\n") or "\n\n" in text or _CONTROL.search(text):
        raise CheckpointError("a note text ends in a newline and holds no blank line or control character")
    kid = _key_hash(key_name, _raw(private_key.public_key()))
    signature = base64.b64encode(kid + private_key.sign(text.encode())).decode()
    return f"{text}\n{DASH} {key_name} {signature}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, at: datetime, private_key: Ed25519PrivateKey,
                    key_name: str) -> str:
    """The whole signed checkpoint note."""
    return sign_note(checkpoint_body(origin, size, root, at), private_key, key_name)


def _split_note(note: str) -> tuple[str, list[str]]:
    if _CONTROL.search(note):
        raise CheckpointError("malformed note: it holds a control character or an unpaired surrogate")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointError("malformed note: no blank line between the text and the signatures")
    lines = note[cut + 2:].split("\n")[:-1]
    if not lines or len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: it must carry 1 to {MAX_SIGNATURES} signature lines")
    return note[: cut + 1], lines


def _signature(line: str) -> tuple[str, bytes, bytes]:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != DASH or not _NAME.fullmatch(parts[1]):
        raise CheckpointError(f"malformed note: {line[:60]!r} is not a signature line")
    name, encoded = parts[1], parts[2]
    data = decode_base64(encoded)
    if data is None:
        raise CheckpointError(f"malformed note: the signature of {name} is not base64")
    if len(data) < 5:
        raise CheckpointError(f"malformed note: the signature of {name} is too short")
    return name, data[:4], data[4:]


def open_note(note: str, verifier_keys: Iterable[str]) -> tuple[str, str]:
    """The text of a note and the hex ID of the known key that signed it; CheckpointError when none did."""
    text, lines = _split_note(note)
    keys = {(k.name, k.id): k for k in map(_parse_key, verifier_keys)}
    verified = ""
    for name, kid, signature in map(_signature, lines):
        key = keys.get((name, kid))
        if key is None:
            continue  # unknown keys are ignored: witnesses' cosignatures, keys we retired and forgot
        try:
            key.public.verify(signature, text.encode())
        except InvalidSignature:
            raise CheckpointError(f"the signature of key {name}+{kid.hex()} does not verify") from None
        verified = verified or kid.hex()
    if not verified:
        raise CheckpointError("the note is signed by no known key")
    return text, verified


def _parse_body(text: str) -> tuple[str, int, bytes, datetime | None]:
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("malformed checkpoint: it needs an origin, a size and a root, with no empty line")
    origin, size, root_b64, *extensions = lines
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"malformed checkpoint: the size {size[:30]!r} is not a decimal number")
    root = decode_base64(root_b64) or b""
    if len(root) != 32:
        raise CheckpointError("malformed checkpoint: the root is not the base64 of 32 bytes")
    times = [m.group(1) for m in map(_TIME.fullmatch, extensions) if m]
    if len(times) > 1 or len(times) != sum(line.startswith("time ") for line in extensions):
        raise CheckpointError("malformed checkpoint: the time line must appear at most once, "
                              "as time YYYY-MM-DDThh:mm:ssZ")
    try:
        at = datetime.strptime(times[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if times else None
    except ValueError:
        raise CheckpointError(f"malformed checkpoint: {times[0]} is not a time") from None
    return origin, int(size), root, at


def open_checkpoint(note_text: str, verifier_keys: Iterable[str]) -> Checkpoint:
    """The checkpoint a note signed by any of the keys states; CheckpointError with a plain reason otherwise."""
    text, kid = open_note(note_text, verifier_keys)
    origin, size, root, at = _parse_body(text)
    return Checkpoint(origin, size, root, at, kid)
