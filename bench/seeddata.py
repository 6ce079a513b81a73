"""Plausible people, goods and addresses for the seed: valid resident ID numbers, mobile phones, real divisions."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from gateway.core.identity.masking import mask_document, mask_phone
from gateway.core.identity.regions import region_name
from gateway.security.sealing import Sealer

# County-level divisions that exist in the division table (checked by tests/bench).
REGIONS = (
    ("110101", "东城区"), ("110105", "朝阳区"), ("310104", "徐汇区"), ("310115", "浦东新区"),
    ("440305", "南山区"), ("440106", "天河区"), ("330106", "西湖区"), ("320106", "鼓楼区"),
    ("510107", "武侯区"), ("420106", "武昌区"), ("610113", "雁塔区"), ("500103", "渝中区"),
    ("120101", "和平区"), ("370202", "市南区"), ("350203", "思明区"), ("430104", "岳麓区"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国文斌辉鹏宇浩然欣怡子轩梓涵晨阳思远雨萱"
STREETS = ("中山路", "人民路", "解放路", "建设路", "和平街", "新华路", "长江路", "滨江大道", "科技园路", "学府路")
# (description, category, unit value in fen, brands it plausibly carries; "" is unbranded)
GOODS = (
    ("书籍", "books", 4500, ("",)), ("T恤", "clothing", 9900, ("", "李宁", "安踏")),
    ("运动鞋", "shoes", 39900, ("", "李宁", "安踏")), ("手机壳", "electronics", 2900, ("", "小米", "华为")),
    ("茶叶", "food", 16800, ("",)), ("保温杯", "household", 8900, ("", "无印良品")),
    ("数据线", "electronics", 1990, ("", "小米", "华为")), ("儿童玩具", "toys", 12900, ("",)),
    ("文件资料", "documents", 0, ("",)), ("蓝牙耳机", "electronics", 29900, ("", "小米", "华为")),
    ("围巾", "clothing", 15900, ("", "无印良品")), ("零食礼盒", "food", 12800, ("",)),
)
MOBILE_PREFIXES = ("130", "135", "136", "138", "139", "150", "158", "177", "186", "188", "199")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Person:
    """One person with their numbers sealed the way the gateway seals them."""

    name: str
    document_number: str
    document_masked: str
    document_enc: bytes
    document_bidx: bytes
    phone_e164: str
    phone_masked: str
    phone_enc: bytes
    phone_bidx: bytes
    region_code: str
    birth_date: str
    sex: str


def resident_id(rng: random.Random, region: str) -> tuple[str, str, str]:
    """A valid 18-character resident ID number: (number, birth date, sex)."""
    year, month, day = rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)
    seq = rng.randint(1, 999)
    body = f"{region}{year:04d}{month:02d}{day:02d}{seq:03d}"
    check = _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
    return body + check, f"{year:04d}-{month:02d}-{day:02d}", "MALE" if seq % 2 else "FEMALE"


def chinese_name(rng: random.Random) -> str:
    """A common-looking two or three character name."""
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def mobile(rng: random.Random) -> str:
    """A mainland mobile number in E.164."""
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randint(0, 99_999_999):08d}"


def make_person(rng: random.Random, sealer: Sealer) -> Person:
    """One person, sealed for real (AES-GCM + HMAC blind index with the gateway's keys)."""
    region = rng.choice(REGIONS)[0]
    number, birth, sex = resident_id(rng, region)
    phone = mobile(rng)
    return Person(
        name=chinese_name(rng), document_number=number, document_masked=mask_document(number),
        document_enc=sealer.seal(number, context="document"), document_bidx=sealer.blind_index("document", number),
        phone_e164=phone, phone_masked=mask_phone(phone), phone_enc=sealer.seal(phone, context="phone"),
        phone_bidx=sealer.blind_index("phone", phone), region_code=region, birth_date=birth, sex=sex,
    )


def address(rng: random.Random) -> tuple[str, str]:
    """(region code, street address) in one of the known divisions."""
    code, district = rng.choice(REGIONS)
    building, room = rng.randint(1, 30), rng.randint(101, 2805)
    return code, f"{district}{rng.choice(STREETS)}{rng.randint(1, 999)}号{building}栋{room}室"


def items_json(rng: random.Random) -> str:
    """The items column as the gateway writes it (asdict of each line), already serialized for COPY."""
    lines = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        desc, category, value, brands = rng.choice(GOODS)
        quantity = rng.randint(1, 5)
        lines.append({"description": desc, "quantity": quantity, "declared_value_fen": value * quantity,
                      "category": category, "brand": rng.choice(brands)})
    return json.dumps(lines, ensure_ascii=False)


def facts_json(person: Person) -> str:
    """The facts a verification stores for a resident ID."""
    return json.dumps({"birth_date": person.birth_date, "sex": person.sex, "region_code": person.region_code,
                       "region_name": region_name(person.region_code) or ""}, ensure_ascii=False)
