"""The parts of a consignment and the rules each must pass, wherever it arrives.

AcceptParcel, the Screen dry run and (later) scanners validate addresses, recipients, goods and photos
with these same functions, so that no door screens what acceptance would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.core.errors import Violations
from gateway.core.identity import check_name, check_phone, is_known_region
from gateway.core.photos import MAX_IMAGE_PIXELS, image_fingerprint

REGION_CODE = re.compile(r"\d{6}")
MAX_ITEMS = 50
MAX_QUANTITY = 100_000
MAX_DECLARED_FEN = 10**11
MAX_PHOTOS = 4
MAX_PHOTO_BYTES = 2 * 1024 * 1024
MAX_ADDRESS_DETAIL = 200


@dataclass(frozen=True)
class AddressIn:
    """An address with its 6-digit division code."""

    region_code: str
    detail: str


@dataclass(frozen=True)
class ItemIn:
    """One line of the goods."""

    description: str
    quantity: int
    declared_value_fen: int
    category: str = ""
    brand: str = ""


def check_address(v: Violations, name: str, address: AddressIn | None) -> None:
    """Checks an address: a known 6-digit division code and a one-line detail of 1 to 200 characters."""
    if address is None:
        v.add(name, "is required")
        return
    if not REGION_CODE.fullmatch(address.region_code):
        v.add(f"{name}.region_code", "must be 6 digits")
    elif not is_known_region(address.region_code):
        v.add(f"{name}.region_code", f"{address.region_code} is not in the division table")
    v.text(f"{name}.detail", address.detail, max_len=MAX_ADDRESS_DETAIL, required=True)


def check_recipient(v: Violations, name: str, phone: str, address: AddressIn | None,
                    prefix: str = "recipient") -> None:
    """Checks a recipient: a name that could be a person's or an organisation's, a phone, an address."""
    v.text(f"{prefix}.name", name, max_len=64)
    for reason in check_name(name).reasons:
        v.add(f"{prefix}.name", reason.message)
    v.text(f"{prefix}.phone", phone, max_len=32)
    if not check_phone(phone).valid:
        v.add(f"{prefix}.phone", "is not a valid phone number")
    check_address(v, f"{prefix}.address", address)


def check_items(v: Violations, items: tuple[ItemIn, ...], field: str = "items") -> None:
    """Checks the goods: 1 to 50 lines, each described, counted and valued within limits."""
    if not 1 <= len(items) <= MAX_ITEMS:
        v.add(field, f"must have 1 to {MAX_ITEMS} lines, got {len(items)}")
    for i, item in enumerate(items[:MAX_ITEMS]):
        v.text(f"{field}[{i}].description", item.description, max_len=200, required=True)
        v.text(f"{field}[{i}].category", item.category, max_len=64)
        v.text(f"{field}[{i}].brand", item.brand, max_len=64)
        v.number(f"{field}[{i}].quantity", item.quantity, lo=1, hi=MAX_QUANTITY)
        v.number(f"{field}[{i}].declared_value_fen", item.declared_value_fen, lo=0, hi=MAX_DECLARED_FEN)


def check_photos(v: Violations, photos: tuple[bytes, ...], field: str) -> tuple[int, ...]:
    """Checks photos (at most 4 JPEG or PNG, each within size and pixel limits); returns their fingerprints.

    Reading the header first means a decompression bomb is refused before it is unpacked; the
    fingerprints are what screening compares, so a photo is decoded once per request.
    """
    if len(photos) > MAX_PHOTOS:
        v.add(field, f"at most {MAX_PHOTOS} photos, got {len(photos)}")
        return ()
    hashes: list[int] = []
    for i, photo in enumerate(photos):
        if len(photo) > MAX_PHOTO_BYTES:
            v.add(f"{field}[{i}]", f"must be at most {MAX_PHOTO_BYTES} bytes, got {len(photo)}")
            continue
        found = image_fingerprint(photo)
        if found is None:
            v.add(f"{field}[{i}]", f"is not a readable JPEG or PNG of at most {MAX_IMAGE_PIXELS} pixels")
        else:
            hashes.append(found)
    return tuple(hashes)
