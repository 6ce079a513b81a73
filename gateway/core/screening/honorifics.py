"""Courtesy words around a name on a waybill: 张伟先生, 罗胜伟收, 收件人：王芳, Mr John Smith.

A listed 张伟 must be found when the recipient is written 张伟先生 or 张伟收, so a query is also
searched without such words. The words come off only when a plausible name is left (two Han
characters at least, or one Latin token), and the name as written is searched too, so a given name
that really ends in one of them (李秋收) still matches itself and nothing is ever stripped to empty.
"""

from __future__ import annotations

from gateway.core.screening.normalize import is_han

# Longest first, so 先生收 comes off whole and 收 is not taken for the end of 先生收.
HAN_SUFFIXES = tuple(sorted((
    "先生", "女士", "小姐", "太太", "夫人", "老师", "同志", "阿姨", "师傅", "大哥", "大姐", "经理", "老板",
    "总", "收", "亲收", "亲启", "台启", "钧启", "敬启", "收启", "本人", "先生收", "女士收", "小姐收",
), key=len, reverse=True))
HAN_PREFIXES = tuple(sorted(("收件人", "收货人", "收件", "收货", "寄件人", "联系人", "致", "寄"),
                            key=len, reverse=True))
LATIN_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mme", "mlle",
                          "herr", "frau", "attn"})
MIN_HAN_NAME = 2
# The given names that do end in 收 are harvest words (李秋收, 王丰收): there 收 is kept.
HARVESTS = ("秋收", "丰收", "春收", "夏收", "麦收")
# Most names carry no courtesy word: these let them through with two set look-ups.
_SUFFIX_ENDS = frozenset(word[-1] for word in HAN_SUFFIXES)
_PREFIX_STARTS = frozenset(word[0] for word in HAN_PREFIXES)


def strip_courtesy(tokens: list[str]) -> list[str] | None:
    """The name's tokens without courtesy prefixes and suffixes, or None when there are none."""
    if not tokens or (tokens[-1][-1] not in _SUFFIX_ENDS and tokens[0][0] not in _PREFIX_STARTS
                      and tokens[0] not in LATIN_TITLES and tokens[-1] not in LATIN_TITLES):
        return None
    stripped = _strip_latin(tokens)
    stripped = _strip_han(stripped)
    return stripped if stripped != tokens and stripped else None


def _strip_latin(tokens: list[str]) -> list[str]:
    while len(tokens) > 1 and tokens[0] in LATIN_TITLES:
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in LATIN_TITLES:
        tokens = tokens[:-1]
    return tokens


def _strip_han(tokens: list[str]) -> list[str]:
    changed = True
    while changed and tokens:
        changed = False
        rest = _cut(tokens, -1, HAN_SUFFIXES)
        if rest is None:
            rest = _cut(tokens, 0, HAN_PREFIXES)
        if rest is not None:
            tokens, changed = rest, True
    return tokens


def _cut(tokens: list[str], at: int, words: tuple[str, ...]) -> list[str] | None:
    """``tokens`` with one courtesy word cut from the first (at=0) or last (at=-1) token, if a name stays."""
    token = tokens[at]
    for word in words:
        if at == 0 and token.startswith(word):
            rest = [token[len(word):], *tokens[1:]]
        elif at == -1 and token.endswith(word) and not (word == "收" and token.endswith(HARVESTS)):
            rest = [*tokens[:-1], token[: len(token) - len(word)]]
        else:
            continue
        rest = [t for t in rest if t]
        if _plausible(rest):
            return rest
    return None


def _plausible(tokens: list[str]) -> bool:
    han = sum(is_han(ch) for token in tokens for ch in token)
    return han >= MIN_HAN_NAME or (han == 0 and bool(tokens))
