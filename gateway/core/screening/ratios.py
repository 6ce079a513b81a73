"""Ratios written every way a sender can: 1:1, 1∶1, 1比1, 一比一, 壹比壹, 一 比 一 all become "1:1".

"一比一" (one-to-one) is counterfeit slang for a copy indistinguishable from the original; a list that
names "1:1" or "一比一" must find it however the ratio is spelt, and must not find a map scale such as
一比一万 (1:10000) or a mixing ratio such as 一比一点五 (1:1.5). Writing both sides as Arabic numbers
does both: the scale becomes 1:10000, which the digit boundary rule keeps apart from 1:1.
"""

from __future__ import annotations

import re

# Look-alikes of the colon used in ratios; NFKC already folds the full-width and small forms, but not
# U+2236 RATIO nor the modifier-letter colons, which is exactly why evaders pick them.
RATIO_COLONS = "\u2236\u02d0\u02f8\ua789\u205a\ufe13\ufe55\uff1a\u0589\u05c3\u2982"

_DIGITS = {ch: i for i, chars in enumerate(("零〇", "一壹幺", "二贰两", "三叁参", "四肆", "五伍", "六陆", "七柒",
                                              "八捌", "九玖")) for ch in chars}
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
# One side of a ratio: Arabic digits (with a decimal part or a 万-style unit: 1万), or Chinese numerals
# alone. Mixed runs such as 一1 are not a side, so a folded text folds to itself again. 陆 (six) and
# 参 (three) are formal numerals but also a surname and a verb; they count only next to 比 or a colon.
_CHINESE = "[" + "".join(_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS) + "]"
_SIDE = f"(?:[0-9]+(?:\\.[0-9]+)?[十百千万亿]?|{_CHINESE}+(?:点{_CHINESE}+)?)"
_RATIO = re.compile(f"({_SIDE})\\s*[比:]\\s*({_SIDE})")
_NOT_ARABIC = re.compile("[^0-9.]")


def fold_ratios(text: str) -> str:
    """Rewrite every ratio in ``text`` as <number>:<number> in Arabic numerals, without spaces."""
    if "比" not in text and ":" not in text:
        return text
    return _RATIO.sub(_arabic_ratio, text)


def _arabic_ratio(match: re.Match[str]) -> str:
    return f"{arabic(match[1])}:{arabic(match[2])}"


def arabic(number: str) -> str:
    """A Chinese (or mixed) number as Arabic digits: 一万 -> 10000, 一点五 -> 1.5, 二〇二四 -> 2024."""
    if not _NOT_ARABIC.search(number):
        return number
    whole, _, fraction = number.replace("点", ".").partition(".")
    digits = "".join(str(_DIGITS.get(ch, ch)) for ch in fraction)
    return _integer(whole) + ("." + digits if fraction else "")


def _integer(text: str) -> str:
    if not any(ch in _SMALL_UNITS or ch in _BIG_UNITS for ch in text):
        # Digits only, read one by one as in a year or a code: 二〇二四 is 2024.
        return "".join(str(_DIGITS.get(ch, ch)) for ch in text)
    total = section = 0
    pending: int | None = None
    for ch in text:
        if ch in _DIGITS:
            pending = _DIGITS[ch]
        elif ch in _SMALL_UNITS:
            # A bare unit counts one of itself: 十五 is 15.
            section += (1 if pending is None else pending) * _SMALL_UNITS[ch]
            pending = None
        elif ch in _BIG_UNITS:
            # 亿 scales everything before it, 万 only its own section: 一亿二千万 is 120,000,000.
            before = total if ch == "亿" else 0
            total = total - before + ((before + section + (pending or 0)) or 1) * _BIG_UNITS[ch]
            section, pending = 0, None
        else:  # an Arabic digit
            pending = (pending or 0) * 10 + int(ch)
    return str(total + section + (pending or 0))
