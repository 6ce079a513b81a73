"""Sealing with rotatable keys: key ids on every blob, v1 blobs still open, wrong keys and tampering refused."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from gateway.security.sealing import V1_KEY_ID, Sealer, UnknownKeyError, key_id

A_DATA, A_INDEX, B_DATA, B_INDEX = (os.urandom(32) for _ in range(4))


def v1_blob(key: bytes, plaintext: str, context: str) -> bytes:
    """A value as the gateway sealed it before key ids: 0x01 + nonce + AES-GCM(context as AAD)."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())


def test_a_blob_names_the_key_that_sealed_it() -> None:
    a = Sealer(A_DATA, A_INDEX)
    blob = a.seal("110101199003071233", context="document")
    assert blob[:1] == b"\x02"
    assert Sealer.key_id_of(blob) == a.data_key_id == key_id(A_DATA, purpose="data")
    assert blob[1:5].hex() == a.data_key_id
    assert a.open(blob, context="document") == "110101199003071233"
    assert a.is_current(blob)


def test_key_ids_differ_by_key_and_by_purpose() -> None:
    assert key_id(A_DATA, purpose="data") != key_id(B_DATA, purpose="data")
    assert key_id(A_DATA, purpose="data") != key_id(A_DATA, purpose="index")
    assert len(key_id(A_DATA, purpose="data")) == 8


def test_past_keys_open_old_blobs_and_new_ones_use_the_current_key() -> None:
    old = Sealer(A_DATA, A_INDEX).seal("+8613800138000", context="phone")
    rotated = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA], past_index_keys=[A_INDEX])
    assert rotated.open(old, context="phone") == "+8613800138000"
    assert not rotated.is_current(old)
    new = rotated.reseal(old, context="phone")
    assert Sealer.key_id_of(new) == rotated.data_key_id != Sealer.key_id_of(old)
    assert Sealer(B_DATA, B_INDEX).open(new, context="phone") == "+8613800138000"
    assert rotated.reseal(new, context="phone") is new
    assert rotated.data_key_ids == (key_id(B_DATA, purpose="data"), key_id(A_DATA, purpose="data"))


def test_a_blob_under_a_key_not_configured_is_refused_by_name() -> None:
    old = Sealer(A_DATA, A_INDEX).seal("x", context="phone")
    with pytest.raises(UnknownKeyError, match=key_id(A_DATA, purpose="data")):
        Sealer(B_DATA, B_INDEX).open(old, context="phone")


def test_v1_blobs_open_with_whichever_configured_key_sealed_them() -> None:
    blob = v1_blob(A_DATA, "110101199003071233", "document")
    assert Sealer.key_id_of(blob) == V1_KEY_ID
    assert Sealer(A_DATA, A_INDEX).open(blob, context="document") == "110101199003071233"
    rotated = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA])
    assert rotated.open(blob, context="document") == "110101199003071233"
    assert not rotated.is_current(blob)
    assert rotated.is_current(rotated.reseal(blob, context="document"))
    with pytest.raises(InvalidTag):
        Sealer(B_DATA, B_INDEX).open(blob, context="document")


def test_tampering_with_any_part_of_a_blob_fails() -> None:
    a = Sealer(A_DATA, A_INDEX, past_data_keys=[B_DATA])
    b_blob = Sealer(B_DATA, B_INDEX).seal("secret", context="phone")
    blob = a.seal("secret", context="phone")
    for i in range(len(blob)):
        changed = bytearray(blob)
        changed[i] ^= 0x01
        with pytest.raises((InvalidTag, UnknownKeyError, ValueError)):
            a.open(bytes(changed), context="phone")
    # Another configured key's id put on this ciphertext does not open it: the key id is authenticated.
    relabelled = blob[:1] + b_blob[1:5] + blob[5:]
    with pytest.raises(InvalidTag):
        a.open(relabelled, context="phone")
    with pytest.raises(InvalidTag):
        a.open(blob, context="document")


def test_blind_indexes_list_the_current_key_first_then_the_past() -> None:
    old, new = Sealer(A_DATA, A_INDEX), Sealer(B_DATA, B_INDEX, past_index_keys=[A_INDEX])
    assert new.blind_index("phone", "+8613800138000") != old.blind_index("phone", "+8613800138000")
    assert new.blind_indexes("phone", "+8613800138000") == (
        new.blind_index("phone", "+8613800138000"), old.blind_index("phone", "+8613800138000"))
    assert new.rotating and not old.rotating
    assert new.index_key_id_of(old.blind_index("phone", "+8613800138000"), "phone",
                               "+8613800138000") == old.index_key_id
    assert new.index_key_id_of(old.blind_index("phone", "+8613800138001"), "phone", "+8613800138000") is None


def test_the_two_argument_constructor_still_works_and_rejects_short_keys() -> None:
    sealer = Sealer(A_DATA, A_INDEX)
    assert sealer.index_key_ids == (key_id(A_INDEX, purpose="index"),)
    with pytest.raises(ValueError):
        Sealer(A_DATA[:16], A_INDEX)
    with pytest.raises(ValueError):
        Sealer(A_DATA, A_INDEX, past_index_keys=[b"short"])


@given(st.text(max_size=64), st.sampled_from(["document", "phone", "organisation"]))
def test_any_text_round_trips_under_rotation(value: str, context: str) -> None:
    rotated = Sealer(B_DATA, B_INDEX, past_data_keys=[A_DATA])
    for blob in (Sealer(A_DATA, A_INDEX).seal(value, context=context), v1_blob(A_DATA, value, context)):
        assert rotated.open(rotated.reseal(blob, context=context), context=context) == value
