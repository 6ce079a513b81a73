"""Personal data at rest: AES-GCM sealing and an HMAC blind index for exact look-ups."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"  # the first byte of every sealed value, so keys can be rotated later


class Sealer:
    """Seals and opens document and phone numbers; computes their blind index."""

    def __init__(self, data_key: bytes, index_key: bytes) -> None:
        if len(data_key) != 32 or len(index_key) != 32:
            raise ValueError("data and index keys must be 32 bytes")
        self._aead = AESGCM(data_key)
        self._index_key = index_key

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypts; the context (e.g. "document") is bound as associated data, so blobs cannot be swapped."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, blob: bytes, *, context: str) -> str:
        """Decrypts a sealed value; raises cryptography's InvalidTag if it was altered."""
        if blob[:1] != _VERSION:
            raise ValueError("unknown sealed-value version")
        return self._aead.decrypt(blob[1:13], blob[13:], context.encode()).decode()

    def blind_index(self, context: str, value: str) -> bytes:
        """A keyed hash of a canonical value: equal values give equal indexes, nothing else is revealed."""
        return hmac.new(self._index_key, f"{context}:{value}".encode(), hashlib.sha256).digest()

    def derive_key(self, label: str) -> bytes:
        """A key of its own for another purpose (signing page tokens), derived from the index key and a label."""
        return hmac.new(self._index_key, f"derive:{label}".encode(), hashlib.sha256).digest()

    def seal_optional(self, value: str, *, context: str) -> tuple[bytes | None, bytes | None]:
        """(ciphertext, blind index) of a value, or (None, None) for an empty one."""
        if not value:
            return None, None
        return self.seal(value, context=context), self.blind_index(context, value)


def generate_key() -> bytes:
    """A fresh 32-byte key."""
    return os.urandom(32)
