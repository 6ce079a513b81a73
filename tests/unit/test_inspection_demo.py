"""Where `python -m inspection demo` calls: --target, $GATEWAY_LISTEN, make run's .var/env, the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.commands.demo import DEFAULT_TARGET, target_of, token_of


def test_target_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_LISTEN", raising=False)
    assert target_of("", tmp_path) == DEFAULT_TARGET
    (tmp_path / "env").write_text("DATABASE_URL='postgresql://x'\nGATEWAY_LISTEN='127.0.0.1:50999'\n")
    assert target_of("", tmp_path) == "127.0.0.1:50999"
    monkeypatch.setenv("GATEWAY_LISTEN", "127.0.0.1:50777")
    assert target_of("", tmp_path) == "127.0.0.1:50777"
    assert target_of("10.0.0.9:1", tmp_path) == "10.0.0.9:1"


def test_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_TOKEN", raising=False)
    assert token_of("", tmp_path) == ""
    (tmp_path / "dev-token").write_text("from-make-run\n")
    assert token_of("", tmp_path) == "from-make-run"
    monkeypatch.setenv("GATEWAY_TOKEN", "from-env")
    assert token_of("", tmp_path) == "from-env" and token_of("given", tmp_path) == "given"
