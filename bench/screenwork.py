"""The screen scenario's in-process part: synthetic consignments, and a worker process that loads the list from
the database, builds the index and times BlocklistIndex.screen per consignment.

Consignments are made in the harness (it holds the gateway's keys, so listed numbers become the same blind-index
keys the gateway computes) and sent to the worker as plain dataclasses; the worker never sees a key.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import opencc

from bench import blocklistdata as data
from bench import seeddata
from bench.seed_blocklist import Probes
from gateway.core.screening import Consignment, Item, Party
from gateway.security.sealing import Sealer

# Homophones of common given-name characters: the spelling a sender changes to slip past a list (张伟 -> 张玮).
HOMOPHONES = {"伟": "玮", "明": "铭", "静": "靖", "丽": "莉", "军": "君", "华": "桦", "杰": "洁", "涛": "韬",
              "强": "蔷", "敏": "珉", "芳": "方", "娜": "纳", "英": "莹", "磊": "垒", "勇": "永", "艳": "燕",
              "娟": "鹃", "超": "潮", "霞": "夏", "平": "萍", "刚": "钢", "建": "健", "国": "帼", "红": "宏",
              "梅": "玫", "飞": "菲", "鹏": "朋", "辉": "晖", "斌": "彬", "宇": "雨", "浩": "昊", "凯": "楷",
              "俊": "骏", "林": "琳", "欣": "馨", "怡": "宜", "佳": "嘉", "琪": "琦", "雪": "学", "晨": "辰",
              "阳": "洋", "思": "丝", "婷": "亭", "涵": "含", "文": "雯", "东": "冬", "海": "亥", "波": "博"}


@dataclass(frozen=True)
class Shape:
    """How often a consignment carries listed values; the rest are fresh (and may still hit by chance)."""

    listed_name: float = 0.25  # a party's name is a variant of a listed name
    listed_document: float = 0.08  # the sender's document number is listed
    listed_phone: float = 0.08
    organisation_sender: float = 0.1  # the sender is an organisation (code, organisation name)
    listed_organisation: float = 0.5  # ... whose code is listed
    listed_address: float = 0.06
    keyword_item: float = 0.08  # an item's description carries a listed keyword
    brand_item: float = 0.12  # an item names a listed brand (half of them below its floor)
    listed_image: float = 0.05  # a photo is near a listed fingerprint


class ConsignmentMaker:
    """Synthetic consignments that partly hit the seeded list."""

    def __init__(self, probes: Probes, sealer: Sealer, rng: random.Random, shape: Shape = Shape()) -> None:
        self.p, self.sealer, self.rng, self.shape = probes, sealer, rng, shape
        self._s2t = opencc.OpenCC("s2t")

    def key(self, context: str, canonical: str) -> str:
        """The blind-index key the gateway computes for a number, as screening sees it (hex)."""
        return self.sealer.blind_index(context, canonical).hex()

    def han_variant(self, name: str) -> str:
        """The name as given, in Traditional, with a homophone, or spaced."""
        rng, roll = self.rng, self.rng.random()
        if roll < 0.3 or "·" in name:
            return name
        if roll < 0.5:
            return str(self._s2t.convert(name))
        if roll < 0.8:
            at = [i for i, ch in enumerate(name) if i > 0 and ch in HOMOPHONES]
            if at:
                i = rng.choice(at)
                return name[:i] + HOMOPHONES[name[i]] + name[i + 1:]
            return name
        return name[0] + " " + name[1:]

    def latin_variant(self, name: str) -> str:
        """The name as given, reordered, lower case, or with one letter slipped."""
        rng, roll = self.rng, self.rng.random()
        if roll < 0.3:
            return name
        if roll < 0.55:
            parts = name.replace(",", "").split()
            return f"{parts[-1]}, {' '.join(parts[:-1])}"
        if roll < 0.75:
            return name.lower()
        letters = [i for i, ch in enumerate(name) if ch.isalpha() and i > 0]
        i = rng.choice(letters)
        return name[:i] + rng.choice("aeiourstln") + name[i + 1:]

    def name(self, organisation: bool) -> str:
        rng, p = self.rng, self.p
        listed = p.organisation_names if organisation else p.person_names
        if listed and rng.random() < self.shape.listed_name:
            chosen = rng.choice(listed)
            return self.latin_variant(chosen) if chosen.isascii() else self.han_variant(chosen)
        if organisation:
            return data.chinese_organisation(rng) if rng.random() < 0.8 else data.latin_organisation(rng)
        roll = rng.random()
        return data.chinese_name(rng) if roll < 0.85 else data.latin_name(rng) if roll < 0.98 else data.dotted_name(rng)

    def party(self, sender: bool) -> Party:
        rng, p, shape = self.rng, self.p, self.shape
        organisation = sender and rng.random() < shape.organisation_sender
        document = phone = organisation_key = ""
        if sender and not organisation:  # senders are verified: their document's key is known
            number = (rng.choice(p.documents) if p.documents and rng.random() < shape.listed_document
                      else data.resident_id(rng))
            document = self.key("document", number)
        if organisation:
            listed = p.organisation_codes and rng.random() < shape.listed_organisation
            code = rng.choice(p.organisation_codes) if listed else data.organisation_code(rng)
            organisation_key = self.key("organisation", code)
        e164 = rng.choice(p.phones) if p.phones and rng.random() < shape.listed_phone else data.phone(rng)[0]
        phone = self.key("phone", e164)
        if p.addresses and rng.random() < shape.listed_address:
            region, text = rng.choice(p.addresses)
            text = text if rng.random() < 0.5 else text.replace("号", " 号 ")
        else:
            region, text = data.address(rng)
        return Party(self.name(organisation), document, phone, organisation_key, region, text)

    def item(self) -> Item:
        rng, p, roll = self.rng, self.p, self.rng.random()
        desc, category, unit, brands = rng.choice(seeddata.GOODS)
        quantity = rng.randint(1, 3)
        if p.keywords and roll < self.shape.keyword_item:
            keyword = rng.choice(p.keywords)
            desc = f"{keyword}{desc}" if rng.random() < 0.5 else f"{desc} {keyword}"
            return Item(desc, quantity, unit * quantity, "", category)
        if p.brands and roll < self.shape.keyword_item + self.shape.brand_item:
            name, aliases, floor = rng.choice(p.brands)
            shown = rng.choice((name, *aliases))
            price = floor // 5 if rng.random() < 0.5 else floor * 2  # half of them well below the floor
            if rng.random() < 0.5:
                return Item(desc, quantity, price * quantity, shown, category)
            return Item(f"{shown} {desc}", quantity, price * quantity, "", category)
        return Item(desc, quantity, unit * quantity, rng.choice(brands), category)

    def image(self) -> int:
        rng, p = self.rng, self.p
        if p.fingerprints and rng.random() < self.shape.listed_image:
            value = rng.choice(p.fingerprints)
            for bit in rng.sample(range(63), rng.randint(0, 6)):  # a re-taken photo: a few bits differ
                value ^= 1 << bit
            return value
        return data.fingerprint(rng)

    def consignment(self) -> Consignment:
        rng = self.rng
        items = tuple(self.item() for _ in range(rng.choice((1, 1, 2, 3))))
        images = tuple(self.image() for _ in range(rng.choice((0, 0, 0, 1, 1, 1, 1, 2, 2, 2))))
        return Consignment(self.party(True), self.party(False), items, images, rng.randint(0, 25))


def bench_parcels(sealer: Sealer) -> list[Consignment]:
    """What the accept scenario sends, as screening sees it: must not hit, or accept+1M would be held."""
    from bench.scenarios._requests import _GOODS, _RECIPIENTS, DEMO_PERSON

    sender = Party(DEMO_PERSON["name"], sealer.blind_index("document", DEMO_PERSON["number"]).hex(),
                   sealer.blind_index("phone", "+86" + DEMO_PERSON["phone"]).hex(), "", "110101", "东华门街道 1 号")
    out = []
    for (name, phone, region, detail), (desc, category, quantity, value) in zip(_RECIPIENTS, _GOODS, strict=True):
        recipient = Party(name, "", sealer.blind_index("phone", "+86" + phone).hex(), "", region, detail)
        out.append(Consignment(sender, recipient, (Item(desc, quantity, value, "", category),)))
    return out


# How many of the quality set's misses and wrong hits the results keep (all are counted).
QUALITY_NOTES = 40


# ---- the worker process ----------------------------------------------------------------------------------


def _status_mb(key: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return None


def _percentiles_us(ns: list[int]) -> dict[str, float]:
    ordered = sorted(ns)

    def at(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] / 1000

    return {"p50_us": at(0.50), "p95_us": at(0.95), "p99_us": at(0.99), "max_us": ordered[-1] / 1000,
            "mean_us": sum(ordered) / len(ordered) / 1000}


async def _load(dsn: str) -> tuple[int, list[Any], float]:
    from gateway.storage.blocklist import BlocklistRepository
    from gateway.storage.db import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        repository = BlocklistRepository(pool, Sealer(os.urandom(32), os.urandom(32)))  # load_active opens nothing
        t0 = time.perf_counter()
        version, entries = await repository.load_active()
        return version, entries, time.perf_counter() - t0
    finally:
        await pool.close()


def run_worker(plan: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: load_active, build, time screen() on each consignment after a warm-up, then screen the
    labelled quality cases (plan["quality"], added to the index) against the whole list."""
    import uvloop

    from bench import quality
    from gateway.core.screening import BlocklistIndex

    rss_start = _status_mb("VmRSS")
    version, entries, load_s = uvloop.run(_load(plan["dsn"]))
    rss_loaded = _status_mb("VmRSS")
    # As LiveBlocklist.start: the entries by id stay in memory beside the index, which is built from them (with
    # the collector on, as in the gateway's thread).
    by_id = {e.id: e for e in entries}
    labelled: quality.Labelled = plan["quality"]
    labelled_ids = {e.id for e in labelled.entries}
    t0 = time.perf_counter()
    index = BlocklistIndex.build([*entries, *labelled.entries])
    build_s = time.perf_counter() - t0
    del entries
    # What a full collection costs with the list in memory: the pause a gateway's event loop takes whenever the
    # collector decides to walk the oldest generation.
    t0 = time.perf_counter()
    gc.collect()
    full_gc_s = time.perf_counter() - t0
    rss_built, hwm_built = _status_mb("VmRSS"), _status_mb("VmHWM")

    # The labelled set holds common names and numbers (张伟, 13800138000) that the bench's own parcels use; only
    # the seeded list, which the gateway loads, decides whether accept would be held.
    clean = [sum(h.entry_id not in labelled_ids for h in index.screen(c).hits) for c in plan["bench_parcels"]]
    for c in plan["warmup"]:
        index.screen(c)
    times: list[int] = []
    hits: list[int] = []
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    clock = time.perf_counter_ns
    for c in plan["consignments"]:
        t = clock()
        result = index.screen(c)
        times.append(clock() - t)
        hits.append(len(result.hits))
        outcomes[result.outcome.name] += 1
        for h in result.hits:
            kinds[h.kind.value if h.kind else "SENDER_PATTERN"] += 1
    n = len(times)
    t0 = time.perf_counter()
    figures = quality.evaluate(index, labelled, by_id.get)
    quality_s = time.perf_counter() - t0
    notes = [line for f in figures.values() for line in f.misses + f.extras]
    return {
        "entries": len(by_id), "version": version, "load_active_s": load_s, "build_s": build_s,
        "full_gc_s": full_gc_s, "gc_tracked_objects": len(gc.get_objects()),
        "rss_start_mb": rss_start, "rss_loaded_mb": rss_loaded, "rss_built_mb": rss_built,
        "hwm_built_mb": hwm_built, "consignments": n, "warmup": len(plan["warmup"]),
        **_percentiles_us(times), "screens_per_s": n / (sum(times) / 1e9),
        "hits_per_consignment": sum(hits) / n, "with_hits_share": sum(1 for h in hits if h) / n,
        "outcomes": dict(outcomes), "hits_by_kind": dict(kinds.most_common()), "bench_parcel_hits": clean,
        "quality": quality.by_kind(figures), "quality_cases": len(labelled.cases), "quality_s": quality_s,
        "quality_notes": notes[:QUALITY_NOTES], "quality_notes_total": len(notes),
    }


def _worker_main(conn: Connection, plan: dict[str, Any]) -> None:
    """The worker process: runs run_worker and sends back its figures, or the error's text."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the harness stops this one
    try:
        conn.send(run_worker(plan))
    except Exception as exc:  # noqa: BLE001 - reported to the harness, which fails the scenario with it
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


async def run_in_worker(plan: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """run_worker in a spawned process of its own (its memory is the list's alone), awaited without blocking.

    On a timeout or an interrupt the process is ended (it is this function's own child, by its pid).
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, args=(child, plan), daemon=True, name="bench-screen")
    proc.start()
    child.close()
    try:
        answer = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, _receive, parent),
                                        timeout_s)
    finally:
        if proc.is_alive():
            proc.terminate()
        await asyncio.get_running_loop().run_in_executor(None, proc.join, 10)
        parent.close()
    if not isinstance(answer, dict):
        raise RuntimeError(f"screen worker failed: {answer}")
    return answer


def _receive(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return "the worker process exited without an answer (see its output above)"
