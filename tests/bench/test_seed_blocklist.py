"""The blocklist seed writes real entries: what the gateway loads, indexes and matches, keyed with its keys."""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from datetime import date

import asyncpg

from bench import blocklistdata as data
from bench.screenwork import ConsignmentMaker, bench_parcels
from bench.seed_blocklist import PART_KINDS, bench_reserved, mix_for, seed_blocklist
from gateway.core.blocklist import plausible_document
from gateway.core.identity import check_organisation_code, check_phone
from gateway.core.identity.masking import mask_phone
from gateway.core.identity.regions import is_known_region
from gateway.core.screening import BlocklistIndex, Consignment, EntryKind, Item, Party
from gateway.core.screening.addresses import parse_address_value
from gateway.security.sealing import Sealer, generate_key
from gateway.storage.blocklist import BlocklistRepository
from gateway.storage.db import create_pool
from tests.conftest import REPO


def test_mix_adds_up_and_keeps_every_kind() -> None:
    for n in (1, 7, 2_000, 50_000, 1_000_000):
        counts = mix_for(n)
        assert sum(counts.values()) == n and min(counts.values()) >= 0, (n, counts)
    big = mix_for(1_000_000)
    names = sum(v for p, v in big.items() if PART_KINDS[p] in (EntryKind.PERSON_NAME, EntryKind.ORGANISATION_NAME))
    numbers = big["document"] + big["phone"] + big["organisation_code"]
    assert (names, numbers, big["keyword"], big["brand"], big["image"]) == (500_000, 300_000, 10_000, 2_000, 100_000)


def test_generated_numbers_pass_the_gateways_rules() -> None:
    rng = random.Random(5)
    assert all(is_known_region(code) for code in data.REGION_CODES)
    for _ in range(300):
        number, masked = data.document_entry(rng)
        check = plausible_document(number, date.today())
        assert check is not None and check.number == number and check.masked == masked
        e164, shown = data.phone(rng)
        phone = check_phone(e164)
        assert phone.valid and phone.e164 == e164 and mask_phone(e164) == shown, e164
        code, _ = data.organisation_entry(rng)
        organisation = check_organisation_code(code)
        assert organisation.valid and organisation.code == code, (code, organisation.reasons)


async def test_seeded_entries_load_build_and_hit(db_dsn: str) -> None:
    sealer = Sealer(generate_key(), generate_key())
    result = await seed_blocklist(db_dsn, 2_000, sealer, reserved=bench_reserved(), chunk=700, show_progress=False)
    conn = await asyncpg.connect(db_dsn)
    try:
        stored = dict(await conn.fetch("SELECT kind, count(*) FROM blocklist_entries GROUP BY kind"))
        version = await conn.fetchval("SELECT version FROM blocklist_version")
        versions = await conn.fetchval("SELECT array_agg(DISTINCT version) FROM blocklist_entries")
        authors = await conn.fetchval("SELECT array_agg(DISTINCT p.name) FROM blocklist_entries e"
                                      " JOIN principals p ON p.id = e.added_by")
        sealed = await conn.fetch("SELECT kind, match_value, dedup_key, value_enc FROM blocklist_entries"
                                  " WHERE value_enc IS NOT NULL LIMIT 50")
        addresses = await conn.fetch("SELECT match_value FROM blocklist_entries WHERE kind = 'ADDRESS'")
    finally:
        await conn.close()
    assert sum(stored.values()) == result.entries == 2_000 and stored == result.kinds
    assert version == result.version == 1 and versions == [1] and authors == ["bench-blocklist"]
    contexts = {"DOCUMENT_NUMBER": "document", "PHONE": "phone", "ORGANISATION_CODE": "organisation"}
    for row in sealed:  # each number is sealed on its own, and its blind index is the gateway's
        number = sealer.open(row["value_enc"], context=contexts[row["kind"]])
        assert row["match_value"] == row["dedup_key"] == sealer.blind_index(contexts[row["kind"]], number).hex()
    assert all(is_known_region(parse_address_value(r["match_value"])[0]) for r in addresses)

    pool = await create_pool(db_dsn, min_size=1, max_size=1)
    try:
        loaded_version, entries = await BlocklistRepository(pool, sealer).load_active()
    finally:
        await pool.close()
    assert loaded_version == 1 and len(entries) == 2_000
    assert Counter(e.kind.value for e in entries) == Counter(result.kinds)
    index = BlocklistIndex.build(entries)
    assert len(index) == 2_000

    # A listed document, keyed as the gateway keys a verified sender's (canonical number, "document" context).
    check = plausible_document(result.probes.documents[0], date.today())
    assert check is not None
    sender = Party(name="", document_key=sealer.blind_index("document", check.number).hex())
    hits = index.screen(Consignment(sender, Party(), (Item("书籍", 1, 4500),))).hits
    assert [h.kind for h in hits] == [EntryKind.DOCUMENT_NUMBER]
    phone = Party(phone_key=sealer.blind_index("phone", check_phone(result.probes.phones[0]).e164).hex())
    assert [h.kind for h in index.screen(Consignment(Party(), phone, ())).hits] == [EntryKind.PHONE]
    listed_name = next(n for n in result.probes.person_names if not n.isascii())
    assert EntryKind.PERSON_NAME in {h.kind for h in index.screen(Consignment(Party(listed_name), Party(), ())).hits}

    # The screen scenario's consignments hit some of the time, and the bench's own parcels never.
    maker = ConsignmentMaker(result.probes, sealer, random.Random(3))
    screened = [index.screen(maker.consignment()) for _ in range(300)]
    assert 0 < sum(1 for r in screened if r.hits) < 300
    assert all(not index.screen(c).hits for c in bench_parcels(sealer))


async def test_command_line_seeds_the_blocklist(db_dsn: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.seed", "--blocklist", "300", "--dsn", db_dsn, "--no-progress", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
    assert "seeded 300 blocklist entries at version 1" in output.decode()
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM blocklist_entries") == 300
    finally:
        await conn.close()
