"""Settings: read once, validated, a bad one named."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from gateway.settings import ENVIRONMENT, SettingsError, load_settings

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()
GOOD = {"DATABASE_URL": "postgresql://u@/db", "GATEWAY_DATA_KEY": KEY_A, "GATEWAY_INDEX_KEY": KEY_B}


def test_good_settings_load_with_defaults() -> None:
    s = load_settings(GOOD)
    assert s.listen == "127.0.0.1:50051" and s.data_key == b"a" * 32 and s.sender_ref_ttl_s == 1800


@pytest.mark.parametrize(("var", "value"), [
    ("DATABASE_URL", "mysql://x"), ("GATEWAY_DATA_KEY", "not-base64!"), ("GATEWAY_INDEX_KEY", KEY_A[:-8]),
    ("GATEWAY_LISTEN", "nowhere"), ("SENDER_REF_TTL_S", "five"), ("SENDER_REF_TTL_S", "10"),
    ("DB_POOL_MAX", "0"), ("LOG_LEVEL", "LOUD"), ("IDENTITY_AUTHORITY_URL", "ftp://x"),
])
def test_a_bad_setting_is_named(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}:"):
        load_settings({**GOOD, var: value})


def test_missing_required_setting_is_named() -> None:
    with pytest.raises(SettingsError, match="^GATEWAY_INDEX_KEY: required"):
        load_settings({k: v for k, v in GOOD.items() if k != "GATEWAY_INDEX_KEY"})


def test_same_key_twice_is_refused() -> None:
    with pytest.raises(SettingsError, match="GATEWAY_INDEX_KEY"):
        load_settings({**GOOD, "GATEWAY_INDEX_KEY": KEY_A})


def test_every_setting_is_read_from_exactly_one_variable() -> None:
    from dataclasses import fields

    from gateway.settings import Settings

    read = [field_name for field_name, _ in ENVIRONMENT.values()]
    assert sorted(read) == sorted(f.name for f in fields(Settings))


def test_every_variable_is_in_the_readme_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [var for var in ENVIRONMENT if f"`{var}`" not in readme] == []


def test_serve_with_a_bad_setting_exits_2_with_one_line() -> None:
    env = {**os.environ, **GOOD, "DB_POOL_MIN": "many"}
    proc = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["gateway: bad setting: DB_POOL_MIN: 'many' is not a whole number"]
