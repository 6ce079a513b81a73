"""Masking of document numbers, phones and names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.identity import mask_document, mask_name, mask_phone


@pytest.mark.parametrize(("number", "masked"), [
    ("110101199003071233", "110101********1233"), ("USA110085061501", "USA110*****1501"),
    ("E12345678", "E******78"), ("H1234567801", "H1*******01"), ("12345", "1***5"), ("1234", "****"),
    ("", ""), ("南字第12345678号", "南字第1*****78号"),
])
def test_mask_document(number: str, masked: str) -> None:
    assert mask_document(number) == masked


@given(st.text(alphabet="ABCDEFGH0123456789", min_size=1, max_size=14))
def test_short_numbers_never_reveal_more_than_40_percent(number: str) -> None:
    masked = mask_document(number)
    assert len(masked) == len(number)
    assert sum(ch != "*" for ch in masked) <= 0.4 * len(number)


@pytest.mark.parametrize(("phone", "masked"), [
    ("13800138000", "138****8000"), ("+8613800138000", "138****8000"), ("010-12345678", "010-****5678"),
    ("0991-1234567", "0991-****4567"), ("+44 20 7946 0958", "+44 ****0958"), ("4008123123", "40******23"),
])
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(("name", "masked"), [
    ("张三", "张*"), ("张小三", "张*三"), ("欧阳娜娜", "欧阳**"), ("欧阳修", "欧阳*"), ("诸葛孔明", "诸葛**"),
    ("阿沛·阿旺晋美", "阿*·***美"), ("买买提・艾力", "买**·*力"),
    ("John Smith", "J***"), ("张", "张"), ("", ""),
])
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked
