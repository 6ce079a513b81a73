"""Personal data at rest: AES-GCM sealing and an HMAC blind index for exact look-ups, with rotatable keys.

A sealed value is ``b"\\x02" + key id (4 bytes) + nonce (12) + ciphertext``; the version byte and the key id
are bound with the context (e.g. "document") as associated data, so neither a blob's key id nor its context
can be changed without the tag failing. A key's id is the first 4 bytes of SHA-256 over a label and the key,
so it needs no setting of its own. Values sealed before key ids existed (``b"\\x01" + nonce + ciphertext``)
still open with whichever configured data key sealed them.

Rotation: the current keys seal and index everything written; past keys only open old blobs
(``past_data_keys``) and give the candidate blind indexes of rows not yet re-keyed (``past_index_keys``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

V1 = b"\x01"  # nonce + ciphertext, no key id: sealed with the original data key
V2 = b"\x02"  # key id + nonce + ciphertext
KEY_ID_BYTES = 4
_NONCE = 12
_V2_HEADER = 1 + KEY_ID_BYTES
V1_KEY_ID = "v1"  # what key_id_of answers for a blob sealed before key ids


class UnknownKeyError(ValueError):
    """A blob sealed under a data key that is neither the current one nor a configured past one."""


def key_id(key: bytes, *, purpose: str) -> str:
    """A key's id (8 hex digits): SHA-256 over a label, the purpose ("data" or "index") and the key."""
    return hashlib.sha256(b"courier-gateway key id\x00" + purpose.encode() + b"\x00" + key).digest()[
        :KEY_ID_BYTES].hex()


def _check(keys: Iterable[bytes], what: str) -> list[bytes]:
    found = list(keys)
    for key in found:
        if len(key) != 32:
            raise ValueError(f"{what} keys must be 32 bytes")
    return found


class Sealer:
    """Seals and opens document and phone numbers; computes their blind index under the current and past keys."""

    def __init__(self, data_key: bytes, index_key: bytes, *, past_data_keys: Iterable[bytes] = (),
                 past_index_keys: Iterable[bytes] = ()) -> None:
        if len(data_key) != 32 or len(index_key) != 32:
            raise ValueError("data and index keys must be 32 bytes")
        past_data = [k for k in _check(past_data_keys, "past data") if k != data_key]
        past_index = [k for k in _check(past_index_keys, "past index") if k != index_key]
        self.data_key_id = key_id(data_key, purpose="data")
        self.index_key_id = key_id(index_key, purpose="index")
        self._aead = AESGCM(data_key)
        # Every data key by id, current first; v1 blobs try them in this order.
        self._data: dict[str, AESGCM] = {self.data_key_id: self._aead}
        for key in past_data:
            self._data.setdefault(key_id(key, purpose="data"), AESGCM(key))
        self._index_key = index_key
        self._index: dict[str, bytes] = {self.index_key_id: index_key}
        for key in past_index:
            self._index.setdefault(key_id(key, purpose="index"), key)

    @property
    def data_key_ids(self) -> tuple[str, ...]:
        """The ids of every data key that opens values, the current one first."""
        return tuple(self._data)

    @property
    def index_key_ids(self) -> tuple[str, ...]:
        """The ids of every index key whose blind indexes still match, the current one first."""
        return tuple(self._index)

    @property
    def rotating(self) -> bool:
        """Whether past index keys are configured (look-ups then match under each of them too)."""
        return len(self._index) > 1

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """Encrypts under the current key; the version, key id and context are bound as associated data."""
        header = V2 + bytes.fromhex(self.data_key_id)
        nonce = os.urandom(_NONCE)
        return header + nonce + self._aead.encrypt(nonce, plaintext.encode(), header + context.encode())

    def open(self, blob: bytes, *, context: str) -> str:
        """Decrypts a sealed value; InvalidTag if it was altered or no configured key sealed it."""
        version = blob[:1]
        if version == V2:
            aead = self._data.get(blob[1:_V2_HEADER].hex())
            if aead is None:
                raise UnknownKeyError(f"sealed under data key {blob[1:_V2_HEADER].hex()}, which is not configured")
            nonce, body = blob[_V2_HEADER:_V2_HEADER + _NONCE], blob[_V2_HEADER + _NONCE:]
            return aead.decrypt(nonce, body, blob[:_V2_HEADER] + context.encode()).decode()
        if version == V1:
            for aead in self._data.values():
                try:
                    return aead.decrypt(blob[1:13], blob[13:], context.encode()).decode()
                except InvalidTag:
                    continue
            raise InvalidTag
        raise ValueError("unknown sealed-value version")

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The id of the data key a blob names ("v1" for one sealed before key ids)."""
        if blob[:1] == V2:
            return blob[1:_V2_HEADER].hex()
        if blob[:1] == V1:
            return V1_KEY_ID
        raise ValueError("unknown sealed-value version")

    def is_current(self, blob: bytes) -> bool:
        """Whether a blob is sealed under the current data key (nothing to re-encrypt)."""
        return blob[:1] == V2 and blob[1:_V2_HEADER].hex() == self.data_key_id

    def reseal(self, blob: bytes, *, context: str) -> bytes:
        """The same value sealed under the current key (the blob itself when it already is)."""
        return blob if self.is_current(blob) else self.seal(self.open(blob, context=context), context=context)

    def blind_index(self, context: str, value: str) -> bytes:
        """A keyed hash of a canonical value under the current index key: equal values give equal indexes."""
        return _hmac(self._index_key, context, value)

    def blind_indexes(self, context: str, value: str) -> tuple[bytes, ...]:
        """The value's blind index under every configured index key, the current one first: the candidates an
        exact look-up matches while rows are being re-keyed."""
        return tuple(_hmac(key, context, value) for key in self._index.values())

    def index_key_id_of(self, index: bytes, context: str, value: str) -> str | None:
        """Which configured index key gives this blind index of the value (None: none of them)."""
        for kid, key in self._index.items():
            if hmac.compare_digest(_hmac(key, context, value), index):
                return kid
        return None

    def derive_key(self, label: str) -> bytes:
        """A key of its own for another purpose (signing page tokens), derived from the index key and a label."""
        return hmac.new(self._index_key, f"derive:{label}".encode(), hashlib.sha256).digest()

    def seal_optional(self, value: str, *, context: str) -> tuple[bytes | None, bytes | None]:
        """(ciphertext, blind index) of a value, or (None, None) for an empty one."""
        if not value:
            return None, None
        return self.seal(value, context=context), self.blind_index(context, value)


def _hmac(key: bytes, context: str, value: str) -> bytes:
    return hmac.new(key, f"{context}:{value}".encode(), hashlib.sha256).digest()


def generate_key() -> bytes:
    """A fresh 32-byte key."""
    return os.urandom(32)


def sealer_of(settings: Any) -> Sealer:
    """The Sealer of a gateway's settings: GATEWAY_DATA_KEY / GATEWAY_INDEX_KEY, and the past keys kept for
    reading and matching while a rotation re-keys the rows (GATEWAY_PAST_DATA_KEYS / GATEWAY_PAST_INDEX_KEYS)."""
    return Sealer(settings.data_key, settings.index_key, past_data_keys=settings.past_data_keys,
                  past_index_keys=settings.past_index_keys)
