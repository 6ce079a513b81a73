"""Mettler Toledo MT-SICS, level 0: the weight commands and their answers, parsed strictly.

Commands the adapter sends, each ending CR LF:
    S     the next stable weight (the scale waits until stable)
    SI    the weight now, stable or not
    SIR   the weight now, then repeatedly, until another command

Answers, one per line ending CR LF (the weight field is right-aligned, 10 characters in the manual; any run
of spaces is taken):
    S S     100.00 g     stable weight                   -> Answer("stable", grams)
    S D     100.00 g     dynamic: not stable yet         -> Answer("dynamic", grams)
    S I                  understood, not executable now  -> Answer("busy")
    S +                  overload (over the range)       -> Answer("overload")
    S -                  underload (under the range)     -> Answer("underload")
    ES                   syntax error (not understood)   -> Answer("syntax_error")
    EL                   logical error (cannot execute)  -> Answer("logical_error")
    ET                   transmission error (garbled)    -> Answer("transmission_error")

Units g and kg are converted to whole grams (half a gram rounds up). Anything else is Unreadable:
UNKNOWN_STATUS for `S <other status>`, UNKNOWN_UNIT, OUT_OF_RANGE past 10^8 g, MALFORMED_LINE otherwise.
Only a stable answer is a weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from inspection.events import Unreadable

MAX_GRAMS = 10**8
WEIGHT = re.compile(r"S ([SD]) +(-?[0-9]+(?:\.[0-9]+)?) ([a-z]+)")
STATUS_ONLY = {"S I": "busy", "S +": "overload", "S -": "underload",
               "ES": "syntax_error", "EL": "logical_error", "ET": "transmission_error"}
UNITS = {"g": Decimal(1), "kg": Decimal(1000)}
COMMANDS = ("S", "SI", "SIR")


@dataclass(frozen=True)
class Answer:
    """One understood answer: its kind (stable, dynamic, busy, overload, ...) and, for a weight, grams."""

    kind: str
    grams: int = 0

    @property
    def is_weight(self) -> bool:
        """True for stable and dynamic weights."""
        return self.kind in ("stable", "dynamic")


def command(name: str) -> bytes:
    """A command line as sent to the scale."""
    if name not in COMMANDS:
        raise ValueError(f"not an MT-SICS weight command: {name}")
    return name.encode("ascii") + b"\r\n"


def parse(line: bytes) -> Answer | Unreadable:
    """Parses one answer line (without its CR LF); never raises."""
    try:
        text = line.decode("ascii").rstrip(" ")
    except UnicodeDecodeError:
        return Unreadable("MALFORMED_LINE", "not ASCII")
    if not text.isprintable():
        return Unreadable("MALFORMED_LINE", "control characters in the answer")
    if text in STATUS_ONLY:
        return Answer(STATUS_ONLY[text])
    match = WEIGHT.fullmatch(text)
    if match:
        return _weight(match.group(1), match.group(2), match.group(3))
    if len(text) >= 3 and text.startswith("S ") and text[2] not in "SDI+-" and (len(text) == 3 or text[3] == " "):
        return Unreadable("UNKNOWN_STATUS", "an MT-SICS status code this adapter does not know")
    return Unreadable("MALFORMED_LINE", "not an MT-SICS weight answer")


def _weight(status: str, value: str, unit: str) -> Answer | Unreadable:
    if unit not in UNITS:
        return Unreadable("UNKNOWN_UNIT", "a weight unit other than g or kg")
    try:
        grams = int((Decimal(value) * UNITS[unit]).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        return Unreadable("MALFORMED_LINE", "the weight is not a number")
    if abs(grams) > MAX_GRAMS:
        return Unreadable("OUT_OF_RANGE", "a weight past 10^8 g")
    return Answer("stable" if status == "S" else "dynamic", grams)


def format_weight(status: str, grams: float, unit: str = "g") -> bytes:
    """An answer line as a scale sends it (for the simulator): e.g. b"S S     100.00 g\\r\\n"."""
    value = grams / 1000 if unit == "kg" else grams
    digits = 3 if unit == "kg" else 2
    return f"S {status} {value:>10.{digits}f} {unit}\r\n".encode("ascii")
