"""The blocklist's entry rules (validate_entry) for every kind, and the import's bookkeeping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta

import cv2
import numpy as np
import pytest

from gateway.core.blocklist import (
    MAX_LISTED_REJECTIONS,
    AddEntryCommand,
    BatchWritten,
    CheckedEntry,
    ImportLine,
    before_id,
    page_token,
    screening_canonical,
    validate_entry,
)
from gateway.core.blocklist_service import BlocklistService
from gateway.core.errors import FieldViolation, InvalidInput
from gateway.core.identity import DocumentType
from gateway.core.model import Actor, Principal, Role
from gateway.core.screening import Action, EntryKind, perceptual_hash
from tests.fixtures.identity.builders import resident_id, uscc_code

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
K = EntryKind


def cmd(kind: EntryKind | None, value: str, action: Action | None = Action.HOLD, **more: object) -> AddEntryCommand:
    """A command that passes every rule but the ones a test changes."""
    fields: dict[str, object] = {"agency": "上海市市场监督管理局"}
    fields.update(more)
    return AddEntryCommand(kind, value, action, **fields)  # type: ignore[arg-type]


def violations(command: AddEntryCommand) -> dict[str, str]:
    """The fields validate_entry refuses, with why."""
    with pytest.raises(InvalidInput) as caught:
        validate_entry(command, now=NOW)
    return {v.field: v.description for v in caught.value.violations}


def ok(command: AddEntryCommand) -> CheckedEntry:
    """The checked entry."""
    return validate_entry(command, now=NOW)


@pytest.mark.parametrize(("raw", "canonical", "display"), [
    ("11010519491231002x", "11010519491231002X", "110105********002X"),
    ("110101 19900307 1233", "110101199003071233", "110101********1233"),
    ("110101900307123", "110101199003071233", "110101********1233"),  # a legacy number, upgraded
    ("H12345678", "H12345678", "H******78"),  # Hong Kong and Macao travel permit
    ("E12345678", "E12345678", "E******78"),  # passport
])
def test_document_numbers_of_any_type_are_kept_canonical_and_shown_masked(raw: str, canonical: str,
                                                                          display: str) -> None:
    entry = ok(cmd(K.DOCUMENT_NUMBER, raw))
    assert (entry.canonical, entry.display, entry.dedup_key, entry.seal_context) == (
        canonical, display, "", "document")


@pytest.mark.parametrize("raw", ["110101199003071234", "1234", "ABCDEFGHIJKLMNOPQR", "$$$$$$$$"])
def test_implausible_document_numbers_are_refused(raw: str) -> None:
    assert "not a valid number of any document type" in violations(cmd(K.DOCUMENT_NUMBER, raw))["value"]


def test_phones_are_kept_as_e164_and_shown_masked() -> None:
    entry = ok(cmd(K.PHONE, "138 0013 8000"))
    assert (entry.canonical, entry.display, entry.seal_context) == ("+8613800138000", "138****8000", "phone")
    assert ok(cmd(K.PHONE, "+44 20 7946 0958")).canonical == "+442079460958"
    assert set(violations(cmd(K.PHONE, "12345"))) == {"value"}
    assert set(violations(cmd(K.PHONE, "138-0013-800a"))) == {"value"}


def test_organisation_codes_need_their_check_character() -> None:
    code = uscc_code("91110108MA01AB2C3")
    entry = ok(cmd(K.ORGANISATION_CODE, code.lower()))
    assert (entry.canonical, entry.seal_context) == (code, "organisation")
    assert entry.display != code and entry.display.startswith(code[:6])
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "check character" in violations(cmd(K.ORGANISATION_CODE, wrong))["value"]


def test_names_are_deduplicated_by_their_normal_form() -> None:
    person = ok(cmd(K.PERSON_NAME, " 阿沛·阿旺晋美 ", aliases=("Ngapoi Ngawang Jigme",)))
    assert (person.canonical, person.dedup_key) == ("阿沛·阿旺晋美", "阿沛阿旺晋美")
    assert ok(cmd(K.PERSON_NAME, "陳偉明")).dedup_key == ok(cmd(K.PERSON_NAME, "陈伟明")).dedup_key
    assert ok(cmd(K.ORGANISATION_NAME, "深圳市某某贸易有限公司")).seal_context is None
    assert set(violations(cmd(K.PERSON_NAME, "··"))) == {"value"}
    assert set(violations(cmd(K.PERSON_NAME, "   "))) == {"value"}


def test_addresses_need_a_known_region_and_text() -> None:
    entry = ok(cmd(K.ADDRESS, "310104 | 漕溪北路 88 号", aliases=("漕溪北路88号3楼",)))
    assert (entry.canonical, entry.dedup_key) == ("310104|漕溪北路 88 号", "310104|漕溪北路88号")
    for bad in ("漕溪北路 88 号", "31010|漕溪北路", "310104|", "310104|  "):
        assert "<6-digit region code>|<address>" in violations(cmd(K.ADDRESS, bad))["value"]
    assert "not in the division table" in violations(cmd(K.ADDRESS, "999999|某路 1 号"))["value"]


def test_keywords_are_short_and_folded() -> None:
    assert ok(cmd(K.GOODS_KEYWORD, "Ａ货")).dedup_key == "a货"
    assert ok(cmd(K.GOODS_KEYWORD, "1:1")).canonical == "1:1"
    assert "at most 64" in violations(cmd(K.GOODS_KEYWORD, "仿" * 65))["value"]


def test_brands_need_a_price_floor_and_only_brands_take_one() -> None:
    brand = ok(cmd(K.BRAND_PRICE_FLOOR, "Louis Vuitton", price_floor_fen=300000, aliases=("LV", "路易威登", "LV")))
    assert (brand.price_floor_fen, brand.aliases, brand.dedup_key) == (300000, ("LV", "路易威登"), "louisvuitton")
    assert violations(cmd(K.BRAND_PRICE_FLOOR, "Gucci")) == {"price_floor_fen": "is required for BRAND_PRICE_FLOOR"}
    for bad in (0, -5, 10**10 + 1):
        assert set(violations(cmd(K.BRAND_PRICE_FLOOR, "Gucci", price_floor_fen=bad))) == {"price_floor_fen"}
    assert ok(cmd(K.BRAND_PRICE_FLOOR, "Gucci", price_floor_fen=10**10)).price_floor_fen == 10**10
    assert set(violations(cmd(K.GOODS_KEYWORD, "高仿", price_floor_fen=100))) == {"price_floor_fen"}


def _png(size: int = 64) -> bytes:
    y, x = np.mgrid[0:size, 0:size]
    return cv2.imencode(".png", ((x * 3 + y * 2) % 256).astype(np.uint8))[1].tobytes()


def test_image_fingerprints_come_as_hex_or_as_a_photo() -> None:
    assert ok(cmd(K.IMAGE_FINGERPRINT, "00FF00FF00FF00FF")).canonical == "00ff00ff00ff00ff"
    from_photo = ok(cmd(K.IMAGE_FINGERPRINT, "", image=_png()))
    decoded = cv2.imdecode(np.frombuffer(_png(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert from_photo.canonical == f"{perceptual_hash(decoded):016x}"
    assert set(violations(cmd(K.IMAGE_FINGERPRINT, "00ff00ff00ff00f"))) == {"value"}
    assert set(violations(cmd(K.IMAGE_FINGERPRINT, "", image=b"\x89PNG\r\n\x1a\nnot really"))) == {"image"}
    assert set(violations(cmd(K.IMAGE_FINGERPRINT, "00ff00ff00ff00ff", image=_png()))) == {"value"}
    assert set(violations(cmd(K.GOODS_KEYWORD, "高仿", image=_png()))) == {"image"}


def test_a_listed_photo_is_also_kept_under_its_frames() -> None:
    from gateway.core.screening.images import listing_fingerprints

    decoded = cv2.imdecode(np.frombuffer(_png(), np.uint8), cv2.IMREAD_GRAYSCALE)
    frames = [f"{h:016x}" for h in listing_fingerprints(decoded)[1:]]
    from_photo = ok(cmd(K.IMAGE_FINGERPRINT, "", image=_png()))
    assert frames and from_photo.aliases == tuple(frames)
    assert ok(cmd(K.IMAGE_FINGERPRINT, "00ff00ff00ff00ff")).aliases == ()  # a bare hash brings no frames


def test_a_photo_that_would_unpack_to_gigapixels_is_refused_unopened() -> None:
    header = bytearray(_png())
    header[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR width and height
    assert "pixels" in violations(cmd(K.IMAGE_FINGERPRINT, "", image=bytes(header)))["image"]


def test_kind_action_and_source_are_required_and_bounded() -> None:
    found = violations(AddEntryCommand(None, "高仿", None, agency="", case_no="x" * 65, legal_basis="y" * 257))
    assert set(found) == {"kind", "action", "source.agency", "source.case_no", "source.legal_basis"}
    assert "GOODS_KEYWORD" in found["kind"]
    assert set(violations(cmd(K.GOODS_KEYWORD, "高仿", agency="局" * 129))) == {"source.agency"}
    assert set(violations(cmd(K.PERSON_NAME, "名" * 257))) == {"value"}
    assert set(violations(cmd(K.PERSON_NAME, ""))) == {"value"}


def test_expiry_must_lie_ahead_and_name_its_zone() -> None:
    assert ok(cmd(K.GOODS_KEYWORD, "高仿", expires_at=NOW + timedelta(days=30))).expires_at == NOW + timedelta(days=30)
    assert violations(cmd(K.GOODS_KEYWORD, "高仿", expires_at=NOW)) == {"expires_at": "must be in the future"}
    naive = datetime(2030, 1, 1)
    assert violations(cmd(K.GOODS_KEYWORD, "高仿", expires_at=naive)) == {"expires_at": "must carry a time zone"}


def test_aliases_are_bounded_and_never_given_to_numbers() -> None:
    assert set(violations(cmd(K.BRAND_PRICE_FLOOR, "LV", price_floor_fen=1, aliases=("a",) * 21))) == {"aliases"}
    too_long = violations(cmd(K.PERSON_NAME, "王小明", aliases=("王晓明", "Wang", "王" * 65)))
    assert set(too_long) == {"aliases[2]"}
    assert set(violations(cmd(K.PERSON_NAME, "王小明", aliases=("",)))) == {"aliases[0]"}
    # An alias of a number would be stored unsealed.
    assert "take no aliases" in violations(cmd(K.PHONE, "13800138000", aliases=("13900139000",)))["aliases"]


def test_screening_keys_numbers_like_entries() -> None:
    number = resident_id()
    entry = ok(cmd(K.DOCUMENT_NUMBER, number.lower()))
    today = date(2024, 6, 1)
    assert screening_canonical(K.DOCUMENT_NUMBER, number.lower(), today=today) == entry.canonical
    assert screening_canonical(K.DOCUMENT_NUMBER, number, today=today,
                               document_type=DocumentType.RESIDENT_ID) == entry.canonical
    assert screening_canonical(K.PHONE, "138 0013 8000", today=today) == ok(cmd(K.PHONE, "13800138000")).canonical
    assert screening_canonical(K.PHONE, "", today=today) == ""


def test_page_tokens_round_trip_and_forgeries_are_bad_input() -> None:
    assert before_id(page_token(12345)) == 12345 and before_id("") is None
    for forged in ("!!!", "bm90LWEtbnVtYmVy", page_token(0)):
        with pytest.raises(InvalidInput) as caught:
            before_id(forged)
        assert caught.value.violations[0].field == "page_token"


class _MemoryRepo:
    """Just enough of a repository to watch the service batch an import."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.keys: set[tuple[EntryKind, str]] = set()

    async def import_batch(self, entries: Sequence[CheckedEntry], actor: Actor) -> BatchWritten:
        self.batches.append(len(entries))
        ids: list[int | None] = []
        for e in entries:
            key = (e.kind, e.dedup_key or e.canonical)
            ids.append(None if key in self.keys else len(self.keys) + 1)
            self.keys.add(key)
        return BatchWritten(ids, len(self.batches))

    async def current_version(self) -> int:
        return len(self.batches)


class _QuietLive:
    version = 0

    def __init__(self) -> None:
        self.caught_up = 0
        self.added: list[int] = []

    async def catch_up(self) -> None:
        self.caught_up += 1
        raise ConnectionError("the listener is down")  # a failed catch-up must not fail the import

    def entries_added(self, entry_ids: list[int]) -> None:
        self.added += entry_ids


async def test_import_batches_counts_and_caps_the_listed_rejections() -> None:
    repo, live = _MemoryRepo(), _QuietLive()
    service = BlocklistService(repo, live, clock=lambda: NOW, batch_size=3)  # type: ignore[arg-type]
    bad = MAX_LISTED_REJECTIONS + 5

    async def source() -> AsyncIterator[AddEntryCommand | ImportLine]:
        for i in range(7):
            yield cmd(K.GOODS_KEYWORD, f"仿{i % 5}")
        for _ in range(bad):
            yield cmd(K.PHONE, "123")
        yield ImportLine(99999, None, FieldViolation("", "not JSON"))

    summary = await service.import_entries(source(), Actor(Principal(1, "admin", frozenset({Role.ADMIN}))))
    assert (summary.added, summary.duplicates, summary.rejected_count) == (5, 2, bad + 1)
    assert len(summary.rejected) == MAX_LISTED_REJECTIONS
    assert summary.rejected[0].position == 8 and summary.rejected[0].field == "value"
    assert repo.batches == [3, 3, 1] and summary.version == 3
    assert live.caught_up == 1 and live.added == [1, 2, 3, 4, 5]


async def test_an_import_that_writes_nothing_reports_the_current_version() -> None:
    repo, live = _MemoryRepo(), _QuietLive()
    repo.batches = [1, 1]  # two earlier changes
    service = BlocklistService(repo, live, clock=lambda: NOW)  # type: ignore[arg-type]

    async def source() -> AsyncIterator[AddEntryCommand | ImportLine]:
        yield cmd(K.PHONE, "123")

    summary = await service.import_entries(source(), Actor(Principal(1, "admin", frozenset({Role.ADMIN}))))
    assert (summary.added, summary.rejected_count, summary.version) == (0, 1, 2)
    assert repo.batches == [1, 1] and live.added == []
