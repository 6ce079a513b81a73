"""The past-key settings of a rotation: comma-separated base64 keys, each checked and a bad one named."""

from __future__ import annotations

import base64
import re

import pytest

from gateway.security.sealing import key_id, sealer_of
from gateway.settings import SettingsError, load_settings

A, B, C, D = (bytes([n]) * 32 for n in range(1, 5))
GOOD = {"DATABASE_URL": "postgresql://u@/db", "GATEWAY_DATA_KEY": base64.b64encode(A).decode(),
        "GATEWAY_INDEX_KEY": base64.b64encode(B).decode()}


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_past_keys_are_read_in_order_and_reach_the_sealer() -> None:
    settings = load_settings({**GOOD, "GATEWAY_PAST_DATA_KEYS": f"{b64(C)}, {b64(D)}",
                              "GATEWAY_PAST_INDEX_KEYS": b64(D)})
    assert settings.past_data_keys == (C, D) and settings.past_index_keys == (D,)
    sealer = sealer_of(settings)
    assert sealer.data_key_ids == tuple(key_id(k, purpose="data") for k in (A, C, D))
    assert sealer.index_key_ids == tuple(key_id(k, purpose="index") for k in (B, D))


def test_no_past_keys_by_default() -> None:
    settings = load_settings(GOOD)
    assert settings.past_data_keys == () == settings.past_index_keys
    assert not sealer_of(settings).rotating


@pytest.mark.parametrize(("var", "value", "named"), [
    ("GATEWAY_PAST_DATA_KEYS", "not base64!", "GATEWAY_PAST_DATA_KEYS[0]: not valid base64"),
    ("GATEWAY_PAST_INDEX_KEYS", f"{b64(C)},{b64(D)[:-8]}", "GATEWAY_PAST_INDEX_KEYS[1]: must decode to 32 bytes"),
])
def test_a_bad_past_key_is_named_with_its_position(var: str, value: str, named: str) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(named)):
        load_settings({**GOOD, var: value})
