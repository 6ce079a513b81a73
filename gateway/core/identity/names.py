"""Normalisation, validation and comparison of personal names."""

from __future__ import annotations

import re
import unicodedata

from gateway.core.identity.types import (
    FIELD_NAME,
    NAME_CHARACTERS,
    NAME_DOT_POSITION,
    NAME_EMPTY,
    NAME_TOO_LONG,
    NameCheck,
    Reason,
)

MAX_NAME_LENGTH = 64
MIDDLE_DOT = "\u00b7"
# Transliterated minority and foreign names are written with whichever dot the keyboard gave:
# katakana middle dot, bullet, hyphenation point, bullet operator, dot operator, word separator.
_DOT_VARIANTS = str.maketrans(dict.fromkeys("\u30fb\u2022\u2027\u2219\u22c5\u2e31", MIDDLE_DOT))
_PUNCTUATION = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-"})
_CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007]"
_CJK_CHAR = re.compile(_CJK)
_CJK_FULL_STOPS = re.compile(rf"(?<={_CJK})(?:\s*\.)+\s*(?={_CJK})")
_SPACE_BETWEEN_CJK = re.compile(rf"(?<={_CJK})\s+(?={_CJK})")
_SPACE_AROUND_DOT = re.compile(rf"\s*{MIDDLE_DOT}\s*")
_WHITESPACE = re.compile(r"\s+")
_ALLOWED_PUNCTUATION = frozenset(f" -'{MIDDLE_DOT}")


def normalize_name(name: str) -> str:
    """NFKC, fold dot/apostrophe/hyphen variants, collapse spaces; Chinese names lose inner spaces."""
    text = unicodedata.normalize("NFKC", name).translate(_DOT_VARIANTS).translate(_PUNCTUATION)
    # One dot per '.', so that '阿沛..阿旺' is still caught as a doubled dot.
    text = _CJK_FULL_STOPS.sub(lambda m: MIDDLE_DOT * m[0].count("."), text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _SPACE_AROUND_DOT.sub(MIDDLE_DOT, text)
    # Chinese names never contain spaces; one typed between characters is layout, not name.
    return _SPACE_BETWEEN_CJK.sub("", text)


def _is_allowed(ch: str) -> bool:
    """Whether ch may appear in a name: CJK, Latin letters and marks, space and · - '."""
    if ch in _ALLOWED_PUNCTUATION or _CJK_CHAR.match(ch):
        return True
    category = unicodedata.category(ch)
    if category.startswith("L"):
        return unicodedata.name(ch, "").startswith("LATIN")
    # Combining diacritics that NFKC could not fold into a precomposed letter.
    return category == "Mn" and "\u0300" <= ch <= "\u036f"


def _characters_reason(text: str) -> Reason | None:
    """NAME_CHARACTERS naming each distinct disallowed character and its code point."""
    bad = list(dict.fromkeys(ch for ch in text if not _is_allowed(ch)))
    if not bad:
        return None
    shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad)
    return Reason(NAME_CHARACTERS, f"name contains characters not allowed in a name: {shown}", FIELD_NAME)


def _dot_reason(text: str) -> Reason | None:
    """NAME_DOT_POSITION for a middle dot at either end or two in a row."""
    if text.startswith(MIDDLE_DOT) or text.endswith(MIDDLE_DOT):
        return Reason(NAME_DOT_POSITION, "name starts or ends with a middle dot", FIELD_NAME)
    if MIDDLE_DOT * 2 in text:
        return Reason(NAME_DOT_POSITION, "name contains two middle dots in a row", FIELD_NAME)
    return None


def _length_reason(text: str) -> Reason | None:
    """NAME_TOO_LONG beyond MAX_NAME_LENGTH characters."""
    if len(text) <= MAX_NAME_LENGTH:
        return None
    return Reason(NAME_TOO_LONG, f"name has {len(text)} characters, at most {MAX_NAME_LENGTH} allowed",
                  FIELD_NAME)


def check_name(name: str) -> NameCheck:
    """Normalise a name and report why it cannot be a person's legal name."""
    text = normalize_name(name)
    if not text:
        reasons: tuple[Reason, ...] = (Reason(NAME_EMPTY, "name is empty", FIELD_NAME),)
        return NameCheck(text, False, reasons)
    found = (_length_reason(text), _characters_reason(text), _dot_reason(text))
    reasons = tuple(reason for reason in found if reason is not None)
    return NameCheck(text, not reasons, reasons)


def names_match(a: str, b: str) -> bool:
    """Whether two names are the same after normalisation, ignoring Latin letter case."""
    left, right = normalize_name(a).casefold(), normalize_name(b).casefold()
    # An empty name identifies nobody, so it matches nothing, not even another empty name.
    return bool(left) and left == right
