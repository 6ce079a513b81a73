"""The log's safety net and formats: numbers masked wherever they hide in a record, one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from gateway.logs import MASK, CallContext, JsonFormatter, RedactingFilter, TextFormatter, enter_call, redact
from gateway.rpc.metrics import MetricsPortError, metrics_port, start_metrics
from gateway.settings import SettingsError, load_settings
from tests.conftest import b64key


@pytest.mark.parametrize("text", [
    "110101199003071233", "11010519491231002X", "110101 19900307 1233", "110101900307123",
    "13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+8613800138000",
    "010-12345678", "0755 87654321", "E12345678", "G1234567", "HJ1234567",
])
def test_numbers_are_masked_however_they_are_written(text: str) -> None:
    assert redact(f"sender {text}, please check") == f"sender {MASK}, please check"


@pytest.mark.parametrize("text", [
    "verified 12 senders in 3.5 ms", "2026-12-03T10:56:41.123456Z", "port 50051", "batch of 5000 rows",
    "leaf 1234567", "/courier.v1.Acceptance/VerifySender", "key id 3fa2b1c0", "version 20261203",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def _emit(formatter: logging.Formatter, *args: object, exc: bool = False, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc:
            try:
                raise ValueError("document 110101199003071233 refused")
            except ValueError:
                logger.exception("failed for %s", *args, extra=extra)
        else:
            logger.warning("checked %s and %s", *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_the_call_and_mask_args_extras_and_exceptions() -> None:
    token = enter_call(CallContext("rid-1", "/courier.v1.Acceptance/VerifySender", "courier-7"))
    try:
        line = json.loads(_emit(JsonFormatter(), "110101199003071233", "138 0013 8000", code="OK"))
        failed = json.loads(_emit(JsonFormatter(), "13800138000", exc=True))
    finally:
        from gateway.logs import _call

        _call.reset(token)
    assert line["msg"] == f"checked {MASK} and {MASK}" and line["level"] == "WARNING" and line["code"] == "OK"
    assert (line["request_id"], line["method"], line["principal"]) == (
        "rid-1", "/courier.v1.Acceptance/VerifySender", "courier-7")
    assert failed["msg"] == f"failed for {MASK}" and "ValueError: document [redacted] refused" in failed["exc"]
    assert "110101199003071233" not in failed["exc"]
    outside = json.loads(_emit(JsonFormatter(), "a", "b"))
    assert "request_id" not in outside and outside["ts"].endswith("Z")


def test_text_lines_name_the_request_id() -> None:
    token = enter_call(CallContext("rid-2", "/m"))
    try:
        text = _emit(TextFormatter(), "x", "13800138000", code="NOT_FOUND", duration_ms=1.5)
    finally:
        from gateway.logs import _call

        _call.reset(token)
    assert "WARNING test.logs [rid-2]: checked x and [redacted] code=NOT_FOUND duration_ms=1.5" in text


def test_log_format_is_json_or_text() -> None:
    env = {"DATABASE_URL": "postgresql://x", "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key()}
    assert load_settings(env).log_format == "json"
    assert load_settings({**env, "LOG_FORMAT": "TEXT"}).log_format == "text"
    with pytest.raises(SettingsError, match="LOG_FORMAT: 'yaml' is not json or text"):
        load_settings({**env, "LOG_FORMAT": "yaml"})


def test_each_process_serves_metrics_on_its_own_port() -> None:
    assert [metrics_port(9464, i) for i in range(3)] == [9464, 9465, 9466] and metrics_port(0, 2) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortError, match=f"METRICS_PORT: cannot listen on 127.0.0.1:{port}"):
            start_metrics(port, "127.0.0.1")
        with pytest.raises(MetricsPortError, match=rf"\(METRICS_PORT {port - 1} \+ process 1\)"):
            start_metrics(port - 1, "127.0.0.1", process_index=1)
    with pytest.raises(MetricsPortError, match="past port 65535"):
        start_metrics(65535, "127.0.0.1", process_index=1)
