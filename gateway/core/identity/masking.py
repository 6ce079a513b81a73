"""Masking of personal data for logs, receipts and API answers (PIPL minimisation)."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from gateway.core.identity.common import fold
from gateway.core.identity.names import normalize_name

_STAR = "*"
CHINA_MOBILE_LENGTH = 11
_OFFICER = re.compile(r"^(?P<prefix>.+字第)(?P<digits>\d+)(?P<suffix>号?)$")
_MIDDLE_DOT = "\u00b7"
# Two-character surnames; masking them as one character would leave the given name half shown.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 独孤 端木 南宫 西门 "
    "万俟 闻人 呼延 澹台 公冶 太史 申屠 钟离 百里 东郭 赫连 拓跋 淳于 单于 司空 濮阳 公羊 左丘".split()
)


def _keep_ends(text: str, head: int, tail: int) -> str:
    """Keep head and tail characters of text, starring everything between."""
    return text[:head] + _STAR * (len(text) - head - tail) + (text[len(text) - tail:] if tail else "")


def _mask_short(text: str) -> str:
    """Keep 1-2 leading and 1-3 trailing characters, revealing at most 40% of text."""
    reveal = len(text) * 2 // 5
    if reveal < 2:
        return _STAR * len(text)
    head = 1 if reveal < 4 else 2
    return _keep_ends(text, head, min(3, reveal - head))


def mask_document(number: str) -> str:
    """Mask a document number: '110101********1233' for 15+ characters, fewer kept when shorter."""
    officer = _OFFICER.match(number)
    if officer:
        # The 南字第 prefix names the issuing organ, not the person; only the serial is personal.
        return officer["prefix"] + _mask_short(officer["digits"]) + officer["suffix"]
    if len(number) >= 15:
        return _keep_ends(number, 6, 4)
    return _mask_short(number)


def _parse_phone(text: str) -> phonenumbers.PhoneNumber | None:
    """Parse with China as the default region, or None when it is not a number at all."""
    try:
        return phonenumbers.parse(fold(text), "CN")
    except phonenumbers.NumberParseException:
        return None


def looks_like_china_mobile(national: str) -> bool:
    """Whether a Chinese national number has a mobile prefix (13-19); 10 is Beijing's area code."""
    return len(national) >= 2 and national[0] == "1" and national[1] in "3456789"


def mask_phone(e164_or_national: str) -> str:
    """Mask a phone: China mobile '138****1234', landline '010-****5678', other '+44 ****5678'."""
    national = e164_or_national.removeprefix("+86")
    # The common case needs no parse: a plain Chinese mobile number, as check_phone's E.164 gives it.
    if len(national) == CHINA_MOBILE_LENGTH and national.isascii() and national.isdigit() \
            and looks_like_china_mobile(national):
        return f"{national[:3]}{_STAR * 4}{national[-4:]}"
    parsed = _parse_phone(e164_or_national)
    if parsed is None:
        return _mask_short("".join(ch for ch in fold(e164_or_national) if ch.isalnum()))
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code != 86:
        return f"+{parsed.country_code} {_STAR * 4}{national[-4:]}"
    if looks_like_china_mobile(national) and len(national) == CHINA_MOBILE_LENGTH:
        return f"{national[:3]}{_STAR * 4}{national[-4:]}"
    area = phonenumbers.length_of_geographical_area_code(parsed)
    if area and len(national) - area >= 7:
        return f"0{national[:area]}-{_STAR * 4}{national[-4:]}"
    # Invalid or non-geographic numbers have no safe fixed split; fall back to the 40% rule.
    return _mask_short(national)


def _is_cjk(ch: str) -> bool:
    """Whether ch is a CJK ideograph."""
    return unicodedata.name(ch, "").startswith("CJK")


def mask_name(name: str) -> str:
    """Mask a name: '张*', '张*三', '欧阳**' (compound surname kept); Latin names 'J***'."""
    text = normalize_name(name)
    if not text:
        return ""
    if not any(_is_cjk(ch) for ch in text):
        return text[0] + _STAR * 3
    if text[:2] in COMPOUND_SURNAMES and len(text) > 2:
        return text[:2] + _STAR * (len(text) - 2)
    if len(text) <= 2:
        return text[0] + _STAR * (len(text) - 1)
    # Middle dots stay so a transliterated name keeps its shape, e.g. '阿*·***美'.
    middle = "".join(ch if ch == _MIDDLE_DOT else _STAR for ch in text[1:-1])
    return text[0] + middle + text[-1]
