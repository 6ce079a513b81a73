"""The process's log lines: one JSON object per line (LOG_FORMAT=json) or plain text, with the call's request id,
and a filter that masks anything that looks like a document or phone number, whoever logged it.

The code never logs numbers; the filter is the safety net for what it cannot control (a driver's error text, an
exception's message, a future careless line). What is masked: runs of 11 or more digits (optionally with single
spaces or dashes between groups, a leading + and a final X: resident IDs, mobile numbers with a country code),
15- and 17-digit runs, landlines such as 010-12345678, and passport-like numbers (one or two capital letters and
7 to 9 digits). A waybill (letters and 10 or more digits) may be masked too; that is the price of the net.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

MASK = "[redacted]"

_PATTERNS = re.compile(
    r"(?<![0-9A-Za-z])\+?\d(?:[ \-]?\d){10,}[Xx]?(?![0-9A-Za-z])"  # 11+ digits: IDs, phones (spaced or not)
    r"|(?<![0-9A-Za-z])\d{14}[\dXx](?![0-9A-Za-z])"  # a legacy 15-digit resident number (covered above too)
    r"|(?<![0-9A-Za-z])0\d{2,3}[ \-]?\d{7,8}(?![0-9A-Za-z])"  # a landline with its area code
    r"|(?<![0-9A-Za-z])[A-Z]{1,2}\d{7,9}(?![0-9A-Za-z])"  # passports and travel permits: E12345678, HJ1234567
)


def redact(text: str) -> str:
    """The text with anything that looks like a document or phone number replaced by [redacted]."""
    return _PATTERNS.sub(MASK, text)


@dataclass(frozen=True)
class CallContext:
    """What every log line of one RPC carries: its request id, method and principal's name (never a token)."""

    request_id: str
    method: str
    principal: str = ""


_call: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("gateway_call", default=None)


def current_call() -> CallContext | None:
    """The call being served, or None outside one."""
    return _call.get()


def enter_call(call: CallContext) -> contextvars.Token[CallContext | None]:
    """Marks the rest of this task as serving call (its log lines carry it)."""
    return _call.set(call)


class RedactingFilter(logging.Filter):
    """Masks numbers in a record's message, its arguments and its exception text, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrites the record in place; never drops it."""
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name in _EXTRA_TEXT:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


# Extra fields that callers pass with `extra=` and that hold text from outside (method and code are the door's own).
_EXTRA_TEXT = ("principal", "request_id")


_second: tuple[int, str] = (0, "")  # the last second formatted: strftime was a sixth of an access line's cost


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with microseconds and Z (the evidence log's form)."""
    global _second
    whole = int(created)
    seen, prefix = _second
    if whole != seen:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{int((created - whole) * 1_000_000):06d}Z"


_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the call's fields and any extras, then exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        call = _call.get()
        if call is not None:
            line["request_id"], line["method"] = call.request_id, call.method
            if call.principal:
                line["principal"] = call.principal
        for name in ("method", "principal", "code", "duration_ms", "request_id"):
            value = getattr(record, name, None)
            if value is not None and value != "":
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return _encode(line)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(call)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, with the request id when it was logged inside a call."""
        call = _call.get()
        rid = getattr(record, "request_id", None) or (call.request_id if call else "")
        record.call = f" [{rid}]" if rid else ""
        text = super().format(record)
        extras = [f"{name}={getattr(record, name)}" for name in ("code", "duration_ms")
                  if getattr(record, name, None) is not None]
        return f"{text} {' '.join(extras)}" if extras else text


def configure(level: str, fmt: str) -> None:
    """Sends every log line of the process to stderr in this format (json or text), numbers masked."""
    # Neither format prints the caller's file and line, thread or process: skip finding them for every record
    # (a fifth of an access line's cost).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
