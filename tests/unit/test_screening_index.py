"""The blocklist index as the gateway uses it: build, screen, outcome and the name rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.screening import (
    Action,
    BlocklistIndex,
    Consignment,
    Entry,
    EntryKind,
    Item,
    Outcome,
    Party,
    ScreeningPolicy,
)

ENTRIES = [
    Entry(1, EntryKind.PERSON_NAME, "张伟", Action.REFUSE),
    Entry(2, EntryKind.PHONE, "bk-phone-1", Action.HOLD, label="138****0001"),
    Entry(3, EntryKind.DOCUMENT_NUMBER, "bk-doc-1", Action.REFUSE, label="110***********0011"),
    Entry(4, EntryKind.ADDRESS, "440111|白云区三元里大道88号", Action.HOLD),
    Entry(5, EntryKind.GOODS_KEYWORD, "高仿", Action.REFUSE),
    Entry(6, EntryKind.BRAND_PRICE_FLOOR, "Gucci", Action.HOLD, aliases=("古驰",), price_floor_fen=200_000),
    Entry(7, EntryKind.IMAGE_FINGERPRINT, "0f0f0f0f0f0f0f0f", Action.REFUSE),
    Entry(8, EntryKind.ORGANISATION_NAME, "白云皮具商行", Action.HOLD),
    Entry(9, EntryKind.PERSON_NAME, "李娜", Action.HOLD),
]
INDEX = BlocklistIndex.build(ENTRIES)
PLAIN = Item("cotton T-shirt", 1, 5_000)


NOBODY = Party()


def screen(sender: Party = NOBODY, recipient: Party = NOBODY, items: tuple[Item, ...] = (PLAIN,),
           image_hashes: tuple[int, ...] = (), sender_recent_recipients: int | None = None,
           ) -> tuple[Outcome, list[tuple[int | None, str, Outcome]]]:
    result = INDEX.screen(Consignment(sender, recipient, items, image_hashes, sender_recent_recipients))
    return result.outcome, [(h.entry_id, h.field, h.action) for h in result.hits]


def test_a_clean_consignment_passes() -> None:
    assert screen(Party(name="赵钱孙"), Party(name="Jane Doe")) == (Outcome.PASS, [])
    assert len(INDEX) == len(ENTRIES)


def test_a_name_alone_holds_even_when_the_entry_refuses() -> None:
    outcome, hits = screen(Party(name="章伟"))
    assert outcome is Outcome.HOLD and hits == [(1, "sender.name", Outcome.HOLD)]
    hit = INDEX.screen(Consignment(Party(name="章伟"), Party(), ())).hits[0]
    assert "never refuses" in hit.explanation and "entry 1" in hit.explanation


def test_a_name_corroborated_on_the_same_party_takes_the_entry_action() -> None:
    outcome, hits = screen(Party(name="张伟", phone_key="bk-phone-1"))
    assert outcome is Outcome.REFUSE
    assert (1, "sender.name", Outcome.REFUSE) in hits and (2, "sender.phone_key", Outcome.HOLD) in hits


def test_corroboration_on_the_other_party_does_not_count() -> None:
    outcome, hits = screen(Party(name="张伟"), Party(phone_key="bk-phone-1"))
    assert outcome is Outcome.HOLD
    assert (1, "sender.name", Outcome.HOLD) in hits


def test_an_address_hit_also_corroborates_a_name() -> None:
    party = Party(name="張偉", region_code="440111", address="白云区三元里大道88号")
    assert screen(recipient=party)[0] is Outcome.REFUSE


def test_outcome_is_the_strongest_hit_and_hits_are_ordered_by_strength() -> None:
    items = (Item("高仿 古驰 手袋", 1, 10_000),)
    outcome, hits = screen(Party(name="李娜"), items=items, image_hashes=(0x0F0F0F0F0F0F0F0E,),
                           sender_recent_recipients=25)
    assert outcome is Outcome.REFUSE
    assert [a for _, _, a in hits] == sorted((a for _, _, a in hits), reverse=True)
    assert {(i, f) for i, f, _ in hits} == {(5, "items[0].description"), (6, "items[0].description"),
                                           (7, "images[0]"), (9, "sender.name"),
                                           (None, "sender_recent_recipients")}


def test_sender_pattern_is_a_review_hint_at_the_policy_threshold() -> None:
    assert screen(sender_recent_recipients=19)[0] is Outcome.PASS
    outcome, hits = screen(sender_recent_recipients=20)
    assert outcome is Outcome.REVIEW and hits == [(None, "sender_recent_recipients", Outcome.REVIEW)]
    strict = BlocklistIndex.build([], ScreeningPolicy(pattern_recipients=5))
    assert strict.screen(Consignment(Party(), Party(), (), sender_recent_recipients=5)).outcome is Outcome.REVIEW


def test_both_parties_are_screened_for_exact_keys() -> None:
    _, hits = screen(Party(document_key="bk-doc-1"), Party(document_key="bk-doc-1"))
    assert [(i, f) for i, f, _ in hits] == [(3, "recipient.document_key"), (3, "sender.document_key")]


def test_organisation_names_are_screened_from_the_party_name() -> None:
    assert screen(Party(name="白雲皮具商行"))[1] == [(8, "sender.name", Outcome.HOLD)]


def test_every_hit_explains_itself() -> None:
    result = INDEX.screen(Consignment(Party(name="张伟", phone_key="bk-phone-1"), Party(),
                                      (Item("高仿", 1, 1),), image_hashes=(0x0F0F0F0F0F0F0F0F,)))
    for hit in result.hits:
        assert f"entry {hit.entry_id}" in hit.explanation and hit.field in hit.explanation
        assert 0.0 <= hit.threshold <= hit.score <= 1.0
        assert "bk-phone-1" not in hit.matched + hit.explanation


def test_a_stricter_name_threshold_drops_homophones() -> None:
    strict = BlocklistIndex.build(ENTRIES, ScreeningPolicy(name_threshold=0.99))
    assert strict.screen(Consignment(Party(name="章伟"), Party(), ())).outcome is Outcome.PASS
    assert strict.screen(Consignment(Party(name="张伟"), Party(), ())).outcome is Outcome.HOLD


def test_malformed_entries_fail_the_build_naming_the_entry() -> None:
    for bad in (Entry(11, EntryKind.ADDRESS, "no region", Action.HOLD),
                Entry(11, EntryKind.IMAGE_FINGERPRINT, "xyz", Action.HOLD),
                Entry(11, EntryKind.BRAND_PRICE_FLOOR, "Prada", Action.HOLD)):
        with pytest.raises(ValueError):
            BlocklistIndex.build([bad])


def test_policy_values_are_validated() -> None:
    for bad in ({"name_threshold": 0.0}, {"address_threshold": 1.5}, {"image_max_distance": 64},
                {"pattern_recipients": 0}):
        with pytest.raises(ValueError):
            ScreeningPolicy(**bad)


def test_the_core_imports_neither_grpc_nor_asyncpg_and_opens_nothing() -> None:
    code = ("import sys, gateway.core.screening\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'asyncpg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    package = Path(__file__).resolve().parents[2] / "gateway" / "core" / "screening"
    for source in package.glob("*.py"):
        calls = {n.func.id for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name)}
        assert "open" not in calls, source
