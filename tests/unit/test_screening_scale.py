"""An index of ~20,000 synthetic entries of every kind screens planted consignments correctly."""

from __future__ import annotations

import random

import opencc

from gateway.core.screening import (
    Action,
    BlocklistIndex,
    Consignment,
    Entry,
    EntryKind,
    Item,
    Outcome,
    Party,
)
from gateway.core.screening.names import MAX_MATCHES
from tests.fixtures.screening.synthetic import random_name

RNG = random.Random(2024)
TO_TRADITIONAL = opencc.OpenCC("s2t")


def synthetic_entries() -> list[Entry]:
    entries: list[Entry] = []

    def add(kind: EntryKind, value: str, **extra: object) -> None:
        action = RNG.choice((Action.HOLD, Action.REFUSE))
        entries.append(Entry(len(entries) + 1, kind, value, action, **extra))  # type: ignore[arg-type]

    for _ in range(10_000):
        add(EntryKind.PERSON_NAME, random_name(RNG))
    for i in range(6_000):
        add(EntryKind.PHONE if i % 2 else EntryKind.DOCUMENT_NUMBER, f"bk{i:08d}", label=f"masked-{i}")
    for i in range(200):
        add(EntryKind.GOODS_KEYWORD, f"暗语{i}号")
    for i in range(100):
        add(EntryKind.BRAND_PRICE_FLOOR, f"Brand{i}", aliases=(f"品牌{i}号",), price_floor_fen=100_000 + i)
    for _ in range(2_000):
        add(EntryKind.IMAGE_FINGERPRINT, f"{RNG.getrandbits(64):016x}")
    for i in range(1_700):
        add(EntryKind.ADDRESS, f"{440100 + i % 50:06d}|测试路{i}号{i % 7}栋")
    return entries


ENTRIES = synthetic_entries()
INDEX = BlocklistIndex.build(ENTRIES)
BY_ID = {e.id: e for e in ENTRIES}


def pick(kind: EntryKind) -> Entry:
    return RNG.choice([e for e in ENTRIES if e.kind is kind])


def ids(consignment: Consignment) -> set[int | None]:
    return {h.entry_id for h in INDEX.screen(consignment).hits}


def test_index_counts_every_entry() -> None:
    assert len(ENTRIES) >= 20_000 and len(INDEX) == len(ENTRIES)


def test_planted_exact_keys_images_and_addresses_hit_their_entries() -> None:
    for _ in range(25):
        phone, image, address = pick(EntryKind.PHONE), pick(EntryKind.IMAGE_FINGERPRINT), pick(EntryKind.ADDRESS)
        region, text = address.value.split("|")
        near_image = int(image.value, 16) ^ 0b1010_0000_0001  # three bits off
        consignment = Consignment(Party(phone_key=phone.value), Party(region_code=region, address=text),
                                  (), image_hashes=(near_image,))
        assert {phone.id, image.id, address.id} <= ids(consignment)


def test_planted_keywords_and_underpriced_brands_hit() -> None:
    for _ in range(25):
        keyword, brand = pick(EntryKind.GOODS_KEYWORD), pick(EntryKind.BRAND_PRICE_FLOOR)
        cheap = Item(f"{brand.aliases[0]} 手袋 {keyword.value}", 2, 2 * (brand.price_floor_fen or 0) - 2)
        found = ids(Consignment(Party(), Party(), (cheap,)))
        assert {keyword.id, brand.id} <= found
        fair = Item(brand.value, 1, brand.price_floor_fen or 0)
        assert brand.id not in ids(Consignment(Party(), Party(), (fair,)))


def test_planted_names_hit_their_entry_in_traditional_and_swapped_forms() -> None:
    for _ in range(40):
        entry = pick(EntryKind.PERSON_NAME)
        swapped = " ".join(reversed(entry.value.split()))
        variant = swapped if " " in entry.value else TO_TRADITIONAL.convert(entry.value)
        result = INDEX.screen(Consignment(Party(name=variant), Party(), ()))
        hit_ids = {h.entry_id for h in result.hits}
        assert entry.id in hit_ids or len(hit_ids) == MAX_MATCHES  # a very common name may be capped
        assert result.outcome is Outcome.HOLD  # names alone never refuse


def test_unlisted_consignments_pass() -> None:
    clean = Consignment(Party(name="欧阳东方红", phone_key="unlisted", region_code="110105", address="测试路1号"),
                        Party(name="Zebulon Quartermaine"), (Item("棉质 T恤", 3, 9_000),),
                        image_hashes=(0,))
    result = INDEX.screen(clean)
    assert result.outcome is Outcome.PASS, result.hits
