"""Seeds the counterfeit blocklist fast with COPY: `python -m bench.seed --blocklist N [--dsn ...]`.

N active entries in the mix the gateway is sized for (per million: 500,000 person and organisation names, Chinese
and Latin; 300,000 document, phone and organisation numbers; 10,000 goods keywords; 2,000 brands with aliases and
price floors; 100,000 image fingerprints; the rest addresses), written the way BlocklistRepository writes them:
numbers as their blind index with the gateway's keys (match_value = dedup_key) and sealed, shown masked; text kinds
as given with their normalised dedup key, unique per (kind, dedup_key) among active rows. Every row gets the same
new list version, and the version row is bumped to it (with the notification) once the rows are in.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import blocklistdata as data
from bench.blocklistdata import NO_RESERVED, Reserved
from bench.seed import copy_in_parallel
from bench.seed import settle as settle_tables
from gateway.core.screening import EntryKind, normalize_text
from gateway.security.sealing import Sealer

COLUMNS = ("kind", "display_value", "match_value", "value_enc", "dedup_key", "action", "aliases", "price_floor_fen",
           "source_agency", "source_case_no", "source_legal_basis", "added_by", "added_by_name", "added_at",
           "expires_at", "version")
PRINCIPAL = "bench-blocklist"
# The mix per million entries, by the part of the generator that makes them (a part is one kind, one shape).
PER_MILLION = {
    "person_han": 336_000, "person_dotted": 4_000, "person_latin": 80_000,
    "organisation_han": 60_000, "organisation_latin": 20_000,
    "document": 180_000, "phone": 100_000, "organisation_code": 20_000,
    "keyword": 10_000, "brand": 2_000, "image": 100_000,
    "address": 88_000,  # the rest, to reach a million
}
PART_KINDS = {
    "person_han": EntryKind.PERSON_NAME, "person_dotted": EntryKind.PERSON_NAME,
    "person_latin": EntryKind.PERSON_NAME, "organisation_han": EntryKind.ORGANISATION_NAME,
    "organisation_latin": EntryKind.ORGANISATION_NAME, "document": EntryKind.DOCUMENT_NUMBER,
    "phone": EntryKind.PHONE, "organisation_code": EntryKind.ORGANISATION_CODE, "keyword": EntryKind.GOODS_KEYWORD,
    "brand": EntryKind.BRAND_PRICE_FLOOR, "image": EntryKind.IMAGE_FINGERPRINT, "address": EntryKind.ADDRESS,
}
SEAL_CONTEXTS = {"document": "document", "phone": "phone", "organisation_code": "organisation"}
# Share of REFUSE (the rest HOLD) per kind: numbers are usually refused outright, text asks for a look.
_REFUSE_SHARE = {EntryKind.DOCUMENT_NUMBER: 0.7, EntryKind.PHONE: 0.6, EntryKind.ORGANISATION_CODE: 0.7,
                 EntryKind.PERSON_NAME: 0.4, EntryKind.ORGANISATION_NAME: 0.4, EntryKind.ADDRESS: 0.2,
                 EntryKind.GOODS_KEYWORD: 0.1, EntryKind.BRAND_PRICE_FLOOR: 0.0, EntryKind.IMAGE_FINGERPRINT: 0.3}
PROBES_PER_PART = 3_000  # listed values kept in plaintext for the screening scenario and the tests
_EXPIRING_SHARE = 0.05  # entries with a (future) expiry date: still active


def mix_for(n: int) -> dict[str, int]:
    """How many entries of each part make n: PER_MILLION scaled, at least one keyword and brand, the rest addresses."""
    counts = {part: round(share * n / 1_000_000) for part, share in PER_MILLION.items() if part != "address"}
    counts["keyword"] = max(counts["keyword"], min(n, 1))
    counts["brand"] = max(counts["brand"], 1 if n > 1 else 0)
    while sum(counts.values()) > n:  # tiny n: trim the largest parts
        biggest = max(counts, key=lambda p: counts[p])
        counts[biggest] -= 1
    counts["address"] = n - sum(counts.values())
    return counts


@dataclass
class Probes:
    """Listed values in plaintext (numbers canonical), for building consignments that hit; a sample per part."""

    person_names: list[str] = field(default_factory=list)
    organisation_names: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    organisation_codes: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    brands: list[tuple[str, tuple[str, ...], int]] = field(default_factory=list)
    fingerprints: list[int] = field(default_factory=list)
    addresses: list[tuple[str, str]] = field(default_factory=list)


_PROBE_LISTS = {"person_han": "person_names", "person_dotted": "person_names", "person_latin": "person_names",
                "organisation_han": "organisation_names", "organisation_latin": "organisation_names",
                "document": "documents", "phone": "phones", "organisation_code": "organisation_codes",
                "keyword": "keywords", "brand": "brands", "image": "fingerprints", "address": "addresses"}


@dataclass(frozen=True)
class BlocklistSeedResult:
    """What a blocklist seed wrote and how long it took."""

    entries: int
    kinds: dict[str, int]
    version: int
    seconds: float
    generate_seconds: float
    probes: Probes


# (kind, display, match value, sealed value, dedup key, aliases, price floor) and the probe value.
_Made = tuple[tuple[str, str, str, bytes | None, str, list[str], int | None], Any]


class _Generator:
    """Makes the rows part by part, interleaved at random as entries arrive over time; never a duplicate key."""

    def __init__(self, n: int, sealer: Sealer, rng: random.Random, reserved: Reserved,
                 existing: dict[str, set[str]]) -> None:
        self.sealer, self.rng, self.reserved = sealer, rng, reserved
        self.counts = mix_for(n)
        self.seen = {k.value: set(existing.get(k.value, ())) for k in EntryKind}
        self.probes = Probes()
        self.brands_made = 0
        self.keywords = iter(data.keywords(rng, self.counts["keyword"]))
        self.now = datetime.now(UTC)
        self.makers: dict[str, Callable[[], _Made]] = {
            "person_han": lambda: self._name("person_han", data.chinese_name),
            "person_dotted": lambda: self._name("person_dotted", data.dotted_name),
            "person_latin": lambda: self._name("person_latin", data.latin_name),
            "organisation_han": lambda: self._name("organisation_han", data.chinese_organisation),
            "organisation_latin": lambda: self._name("organisation_latin", data.latin_organisation),
            "document": lambda: self._number("document", data.document_entry),
            "phone": lambda: self._number("phone", data.phone),
            "organisation_code": lambda: self._number("organisation_code", data.organisation_entry),
            "keyword": self._keyword, "brand": self._brand, "image": self._image, "address": self._address,
        }

    def schedule(self) -> list[str]:
        """Every row's part, shuffled."""
        parts = [part for part, count in self.counts.items() for _ in range(count)]
        self.rng.shuffle(parts)
        return parts

    def _fresh(self, kind: EntryKind, draw: Callable[[], Any], key: Callable[[Any], str],
               ok: Callable[[Any], bool] = lambda _: True) -> tuple[Any, str]:
        seen = self.seen[kind.value]
        for _ in range(1_000):
            value = draw()
            k = key(value)
            if k and k not in seen and ok(value):
                seen.add(k)
                return value, k
        raise RuntimeError(f"{kind.value}: no new value in 1,000 draws after {len(seen):,} (vocabulary exhausted)")

    def _allowed_name(self, name: str) -> bool:
        return not self.reserved.clashes(name)

    def _name(self, part: str, draw: Callable[[random.Random], str]) -> _Made:
        name, key = self._fresh(PART_KINDS[part], lambda: draw(self.rng), normalize_text, self._allowed_name)
        return (PART_KINDS[part].value, name, name, None, key, [], None), name

    def _number(self, part: str, draw: Callable[[random.Random], tuple[str, str]]) -> _Made:
        context, kind = SEAL_CONTEXTS[part], PART_KINDS[part]

        def bidx(made: tuple[str, str]) -> str:
            return self.sealer.blind_index(context, made[0]).hex()

        (canonical, masked), key = self._fresh(kind, lambda: draw(self.rng), bidx,
                                               lambda made: made[0] not in self.reserved.numbers)
        # Sealing costs about a microsecond, so every row carries its own number (an investigator can open it).
        sealed = self.sealer.seal(canonical, context=context)
        return (kind.value, masked, key, sealed, key, [], None), canonical

    def _keyword(self) -> _Made:
        word, key = self._fresh(EntryKind.GOODS_KEYWORD, lambda: next(self.keywords), normalize_text)
        return (EntryKind.GOODS_KEYWORD.value, word, word, None, key, [], None), word

    def _brand(self) -> _Made:
        def draw() -> tuple[str, tuple[str, ...], int]:
            self.brands_made += 1
            return data.brand(self.rng, self.brands_made - 1)

        (name, aliases, floor), key = self._fresh(EntryKind.BRAND_PRICE_FLOOR, draw, lambda b: normalize_text(b[0]))
        return (EntryKind.BRAND_PRICE_FLOOR.value, name, name, None, key, list(aliases), floor), (name, aliases, floor)

    def _image(self) -> _Made:
        value, key = self._fresh(EntryKind.IMAGE_FINGERPRINT, lambda: data.fingerprint(self.rng), lambda v: f"{v:016x}")
        return (EntryKind.IMAGE_FINGERPRINT.value, key, key, None, key, [], None), value

    def _address(self) -> _Made:
        # As the gateway checks them: the value "<region>|<text>", the dedup key "<region>|<normalised text>".
        (region, text), key = self._fresh(EntryKind.ADDRESS, lambda: data.address(self.rng),
                                          lambda a: f"{a[0]}|{normalize_text(a[1])}")
        value = f"{region}|{text}"
        return (EntryKind.ADDRESS.value, value, value, None, key, [], None), (region, text)

    def rows(self, parts: list[str], principal_id: int, version: int) -> Iterator[tuple[Any, ...]]:
        """COPY records for the given parts, in order."""
        rng, now = self.rng, self.now
        refuse = {k.value: share for k, share in _REFUSE_SHARE.items()}
        for k, part in enumerate(parts):
            (kind, display, match, sealed, key, aliases, floor), probe = self.makers[part]()
            probes: list[Any] = getattr(self.probes, _PROBE_LISTS[part])
            if len(probes) < PROBES_PER_PART:
                probes.append(probe)
            agency = data.AGENCIES[k % len(data.AGENCIES)]
            added = now - timedelta(seconds=rng.randint(3_600, 3 * 365 * 86_400))
            expires = now + timedelta(days=rng.randint(30, 720)) if rng.random() < _EXPIRING_SHARE else None
            yield (kind, display, match, sealed, key, "REFUSE" if rng.random() < refuse[kind] else "HOLD", aliases,
                   floor, agency, f"BL-{added.year}-{k:07d}", data.LEGAL_BASES[k % len(data.LEGAL_BASES)],
                   principal_id, PRINCIPAL, added, expires, version)


async def _principal(conn: asyncpg.Connection) -> int:
    """The admin principal the seeded entries name as their author."""
    return int(await conn.fetchval(
        "INSERT INTO principals (name, roles) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name"
        " RETURNING id", PRINCIPAL, ["admin"]))


async def _existing_keys(conn: asyncpg.Connection) -> dict[str, set[str]]:
    """Active entries' keys already in the table, so a second seed does not collide with the first."""
    found: dict[str, set[str]] = {}
    for row in await conn.fetch("SELECT kind, dedup_key FROM blocklist_entries WHERE retired_at IS NULL"):
        found.setdefault(row["kind"], set()).add(row["dedup_key"])
    return found


async def seed_blocklist(dsn: str, n: int, sealer: Sealer, *, reserved: Reserved = NO_RESERVED,
                         chunk: int = 20_000, copiers: int = 2, show_progress: bool = True,
                         rng_seed: int = 20240917, settle: bool = True) -> BlocklistSeedResult:
    """Writes n active blocklist entries with COPY and bumps the list version once; returns what it wrote."""
    from bench.seed import _progress

    started = time.perf_counter()
    rng = random.Random(rng_seed)
    conn = await asyncpg.connect(dsn)
    try:
        principal_id = await _principal(conn)
        version = int(await conn.fetchval("SELECT version FROM blocklist_version")) + 1
        generator = _Generator(n, sealer, rng, reserved, await _existing_keys(conn))
        parts = generator.schedule()
        generated = [0.0]
        with _progress(show_progress) as progress:
            task = progress.add_task("seeding blocklist", total=n, rate="")

            def advance(count: int, done: int) -> None:
                progress.update(task, advance=count, rate=f"{done / (time.perf_counter() - started):,.0f}/s")

            def make(lo: int, hi: int) -> list[tuple[Any, ...]]:
                t0 = time.perf_counter()
                rows = list(generator.rows(parts[lo:hi], principal_id, version))
                generated[0] += time.perf_counter() - t0
                return rows

            await _copy_all(dsn, make, n, chunk, copiers, advance)
        # One bump for the whole seed, notified like any change: a running gateway catches up with it. The seeded
        # list stands for one that was in force before the seeded parcels were accepted, so it is marked as
        # re-screened: a gateway would otherwise screen every parcel in custody against a million new entries.
        async with conn.transaction():
            await conn.fetchval("UPDATE blocklist_version SET version = greatest(version, $1)"
                                " RETURNING pg_notify('blocklist', version::text)", version)
            await conn.execute("UPDATE rescreen_progress SET version = greatest(version, $1)", version)
        if settle:
            await settle_tables(conn, "blocklist_entries")
    finally:
        await conn.close()
    kinds: dict[str, int] = {}
    for part, count in generator.counts.items():
        kinds[PART_KINDS[part].value] = kinds.get(PART_KINDS[part].value, 0) + count
    return BlocklistSeedResult(n, kinds, version, time.perf_counter() - started, generated[0], generator.probes)


async def _copy_all(dsn: str, make: Callable[[int, int], list[tuple[Any, ...]]], n: int, chunk: int,
                    copiers: int, advance: Callable[[int, int], None]) -> None:
    async def write(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> int:
        await conn.copy_records_to_table("blocklist_entries", records=rows, columns=COLUMNS)
        return len(rows)

    chunks = (make(lo, min(lo + chunk, n)) for lo in range(0, n, chunk))
    await copy_in_parallel(dsn, chunks, write, copiers, advance)


def bench_reserved() -> Reserved:
    """The people the bench's own requests name (the accept scenario's sender and recipients), kept off the list."""
    from bench.scenarios._requests import _RECIPIENTS as RECIPIENTS
    from bench.scenarios._requests import DEMO_PERSON

    names = {DEMO_PERSON["name"], *(r[0] for r in RECIPIENTS)}
    numbers = {DEMO_PERSON["number"], "+86" + DEMO_PERSON["phone"], *("+86" + r[1] for r in RECIPIENTS)}
    return Reserved(frozenset(names), frozenset(numbers))
