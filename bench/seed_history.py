"""Seeds a long history fast, for investigators' searches: `python -m bench.seed --history N --dsn ... --migrate`.

N shipments accepted over SPAN (a year), with their events, the leads of the flagged ones, and the evidence log
over every seeded row, as the gateway itself would have left them:

- people (N / PEOPLE_EVERY of them, at least MIN_PEOPLE) sealed with the gateway's keys, each with one VERIFIED
  verification; shipment n is sent by person n mod P to the phone of person (n * 7919 + 13) mod P, under a
  recipient name from a pool of RECIPIENT_NAMES; sender_name_keys and recipient_name_keys are
  gateway.core.investigation.name_keys of the names, last_seq the shipment's last event;
- states repeat every CYCLE shipments: one HELD (by a listed person name: events ACCEPTED, HELD) and one REFUSED
  (by a listed document number: event REFUSED), each with its lead (origin ACCEPTANCE) as acceptance writes it;
  the others 7 in 10 ACCEPTED, 2 STORED (+3 h), 1 DISPATCHED (+9 h), as bench.seed makes them;
- the evidence log: a leaf for every seeded verification (indexes 0 .. P-1) and then for every seeded event in id
  order, each with its real leaf hash: the RFC 8785 bytes (gateway.core.evidence.records.canonical_bytes) of the
  record gateway.storage.evidence.record_of builds from the row. Verifications go through those functions one by
  one; events through a template made by the same functions from a row of placeholders, filled in per event (a
  change of the record's form changes the template with it); `check_leaves` rebuilds a sample from the stored rows
  through the gateway's own code and compares, and tests/bench/test_seed_history.py does so for every leaf. Then
  every complete level-8k node gateway.core.evidence.merkle.stored_nodes_completed would store, and the cursors of
  both sources moved past the seeded rows, so the appender starts after them.

Speed: worker processes write PostgreSQL's binary COPY format from pre-encoded fields and COPY it themselves; the
secondary indexes of the filled tables are dropped first and built again afterwards from their own definitions
(the same names and definitions, checked), and the copying sessions skip foreign-key triggers when they may
(session_replication_role = replica; the rows refer only to rows seeded before them). The database must be
fresh (migrated, no shipments, verifications or leaves).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import struct
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import seeddata
from bench.seed import STATE_CYCLE, new_prefix
from bench.seed import _progress as progress_bar
from gateway.core.evidence.merkle import GROUP
from gateway.core.evidence.records import canonical_bytes, format_time, record_leaf_hash
from gateway.core.investigation import name_keys
from gateway.security.sealing import Sealer
from gateway.storage.evidence import record_of

SPAN = timedelta(days=360)
CYCLE = 100
HELD_AT, REFUSED_AT = 37, 73  # the offsets in each CYCLE of the flagged shipments
PEOPLE_EVERY = 50  # one person per this many shipments: each sends about this many, and receives as many
MIN_PEOPLE = 600
RECIPIENT_NAMES = 20_011
ADDRESSES, ITEMS, TERMINALS = 997, 499, 500
TASK = 50_000  # shipments per worker task
CHUNK = 10_000  # shipments per COPY
PRINCIPAL = "bench-seed"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_STORED_AFTER, _DISPATCHED_AFTER = timedelta(hours=3), timedelta(hours=9)
_HOLD = {"entry_id": 900_000_001, "kind": "PERSON_NAME", "action": "HOLD", "field": "recipient.name",
         "matched": "", "score": 0.9312, "threshold": 0.85, "entry_action": "HOLD",
         "explanation": "the recipient's name is close to a listed person's name"}
_REFUSE = {"entry_id": 900_000_002, "kind": "DOCUMENT_NUMBER", "action": "REFUSE", "field": "sender.document_number",
           "matched": "", "score": 1.0, "threshold": 1.0, "entry_action": "REFUSE",
           "explanation": "the sender's document number is listed"}

SHIPMENT_COLUMNS = (
    "id", "waybill_no", "idempotency_key", "request_digest", "created_at", "updated_at",
    "decision", "state", "hold_reason", "reasons", "hits", "last_seq",
    "sender_verification_id", "sender_name", "sender_name_keys", "sender_document_bidx", "sender_phone_enc",
    "sender_phone_bidx", "sender_phone_masked", "sender_region_code", "sender_address",
    "recipient_name", "recipient_name_keys", "recipient_phone_enc", "recipient_phone_bidx", "recipient_phone_masked",
    "recipient_region_code", "recipient_address", "items", "inspection", "terminal_id", "principal_id",
)
EVENT_COLUMNS = ("id", "shipment_id", "seq", "kind", "from_state", "to_state", "principal_id", "principal",
                 "terminal_id", "device_id", "location", "note", "recorded_at", "accepted_at")
KEY_COLUMNS = ("shipment_id", "waybill_no", "idempotency_key")  # the two global keys' tables (migration 011)
LEAD_COLUMNS = ("id", "shipment_id", "waybill_no", "kind", "origin", "reason", "hits", "created_at")
LEAF_COLUMNS = ("leaf_index", "source", "source_key", "leaf_hash", "appended_at")
VERIFICATION_COLUMNS = (
    "id", "sender_ref", "verdict", "document_type", "document_enc", "document_bidx", "document_masked", "name",
    "phone_enc", "phone_bidx", "phone_masked", "facts", "authority_result", "principal_id", "terminal_id",
    "created_at", "expires_at",
)
# The tables whose secondary indexes are built after the load instead of during it.
REBUILT = ("shipments", "shipment_events", "leads", "evidence_leaves")


def history_state(n: int) -> str:
    """The state the n-th shipment of the history was left in."""
    offset = n % CYCLE
    if offset == HELD_AT:
        return "HELD"
    if offset == REFUSED_AT:
        return "REFUSED"
    return STATE_CYCLE[n % len(STATE_CYCLE)]


# The events each state's history holds: (kind, from_state, to_state, hours after acceptance, with a terminal).
_EVENTS: dict[str, tuple[tuple[str, str | None, str, timedelta, bool], ...]] = {
    "ACCEPTED": (("ACCEPTED", None, "ACCEPTED", timedelta(0), True),),
    "STORED": (("ACCEPTED", None, "ACCEPTED", timedelta(0), True),
               ("STORED", "ACCEPTED", "STORED", _STORED_AFTER, False)),
    "DISPATCHED": (("ACCEPTED", None, "ACCEPTED", timedelta(0), True),
                   ("STORED", "ACCEPTED", "STORED", _STORED_AFTER, False),
                   ("DISPATCHED", "STORED", "DISPATCHED", _DISPATCHED_AFTER, False)),
    "HELD": (("ACCEPTED", None, "ACCEPTED", timedelta(0), True), ("HELD", "ACCEPTED", "HELD", timedelta(0), True)),
    "REFUSED": (("REFUSED", None, "REFUSED", timedelta(0), True),),
}
_CYCLE_STATES = tuple(history_state(k) for k in range(CYCLE))
_CYCLE_EVENTS = tuple(len(_EVENTS[s]) for s in _CYCLE_STATES)
_EVENTS_PER_CYCLE = sum(_CYCLE_EVENTS)
_EVENTS_BEFORE = tuple(sum(_CYCLE_EVENTS[:k]) for k in range(CYCLE + 1))
_FLAGGED = {HELD_AT: ("HELD", _HOLD), REFUSED_AT: ("REFUSED", _REFUSE)}


@dataclass(frozen=True)
class HistoryPlan:
    """Where everything of a seeded history is, without a query: waybills, times, parties, event and leaf ids."""

    prefix: str
    shipments: int
    people: int
    start: datetime  # shipment 0's acceptance; shipment n is accepted step * n later
    step_us: int
    verification_base: int  # person k's verification id is verification_base + k + 1
    event_base: int  # the n-th shipment's first event id is event_base + events_before(n) + 1
    lead_base: int
    id_base: int  # shipment n's id is uuid(int=id_base + n)

    def waybill(self, n: int) -> str:
        """The n-th seeded waybill number."""
        return f"{self.prefix}{n:010d}"

    def created_at(self, n: int) -> datetime:
        """When the n-th shipment was accepted."""
        return self.start + timedelta(microseconds=self.step_us * n)

    def shipment_id(self, n: int) -> str:
        """The n-th shipment's id."""
        return str(uuid.UUID(int=(self.id_base + n) & ((1 << 128) - 1)))

    @staticmethod
    def state_of(n: int) -> str:
        """The state the n-th shipment was left in."""
        return history_state(n)

    @staticmethod
    def events_before(n: int) -> int:
        """How many events the shipments before the n-th one have."""
        cycles, offset = divmod(n, CYCLE)
        return cycles * _EVENTS_PER_CYCLE + _EVENTS_BEFORE[offset]

    @property
    def events(self) -> int:
        """How many events the history holds."""
        return self.events_before(self.shipments)

    @property
    def leads(self) -> int:
        """How many leads: one per flagged shipment."""
        return self.leads_before(self.shipments)

    @staticmethod
    def leads_before(n: int) -> int:
        """How many flagged shipments come before the n-th one."""
        cycles, offset = divmod(n, CYCLE)
        return cycles * len(_FLAGGED) + sum(1 for at in _FLAGGED if at < offset)

    def sender_of(self, n: int) -> int:
        """The person who sent the n-th shipment."""
        return n % self.people

    def recipient_of(self, n: int) -> int:
        """The person whose phone received the n-th shipment."""
        return (n * 7919 + 13) % self.people

    @staticmethod
    def recipient_name_of(n: int) -> int:
        """The recipient name (in the pool) of the n-th shipment."""
        return (n * 31 + 7) % RECIPIENT_NAMES

    @property
    def leaves(self) -> int:
        """How many leaves the seeded log holds: the verifications', then the events'."""
        return self.people + self.events

    def event_leaf(self, n: int, seq: int) -> int:
        """The leaf index of the n-th shipment's event seq (from 1)."""
        return self.people + self.events_before(n) + seq - 1

    def flagged_shipment(self, k: int) -> int:
        """The k-th flagged shipment."""
        cycles, which = divmod(k, len(_FLAGGED))
        return cycles * CYCLE + sorted(_FLAGGED)[which]


@dataclass(frozen=True)
class Probe:
    """A seeded person in plaintext, for the searches a scenario sends (never written anywhere)."""

    index: int
    name: str
    document_number: str
    phone_e164: str


@dataclass
class HistorySeedResult:
    """What a history seed made and how long each part took."""

    plan: HistoryPlan
    events: int
    leads: int
    leaves: int
    nodes: int
    seconds: float
    phases: dict[str, float]
    probes: list[Probe]
    recipient_names: list[str]
    fk_triggers_skipped: bool
    checked_leaves: int = 0
    notes: list[str] = field(default_factory=list)


# --- PostgreSQL's binary COPY format: a header, rows of (int16 count, then per field int32 length + bytes) ---

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_I4 = struct.Struct(">i").pack
_I8 = struct.Struct(">iq").pack  # length 8, then the value
_NULL = _I4(-1)
_TEXT_OID = 25


def f_text(value: str) -> bytes:
    """A text (or char) field."""
    raw = value.encode()
    return _I4(len(raw)) + raw


def f_bytes(value: bytes) -> bytes:
    """A bytea field."""
    return _I4(len(value)) + value


def f_int8(value: int) -> bytes:
    """A bigint field."""
    return _I8(8, value)


def f_int4(value: int) -> bytes:
    """An integer field."""
    return b"\x00\x00\x00\x04" + _I4(value)


def f_int2(value: int) -> bytes:
    """A smallint field."""
    return b"\x00\x00\x00\x02" + struct.pack(">h", value)


def f_time(at: datetime) -> bytes:
    """A timestamptz field."""
    return _I8(8, us_since_pg_epoch(at))


def us_since_pg_epoch(at: datetime) -> int:
    """Microseconds since 2000-01-01 UTC, as timestamptz travels."""
    delta = at - _PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def f_jsonb(text: str) -> bytes:
    """A jsonb field (version 1, then the JSON text)."""
    raw = b"\x01" + text.encode()
    return _I4(len(raw)) + raw


def f_text_array(values: Sequence[str]) -> bytes:
    """A text[] field of one dimension (or the empty array)."""
    if not values:
        body = struct.pack(">iiI", 0, 0, _TEXT_OID)
    else:
        body = struct.pack(">iiIii", 1, 0, _TEXT_OID, len(values), 1) + b"".join(f_text(v) for v in values)
    return _I4(len(body)) + body


def row(count: int) -> bytes:
    """A row's header: its field count."""
    return struct.pack(">h", count)


# --- the records of the evidence log, built by the gateway's own code so they cannot drift from it ---

_SENTINEL_TIME = datetime(1999, 12, 31, 23, 59, 58, 123456, tzinfo=UTC)
_SID, _WB, _TERM = "@SID@", "@WB@", "@TERM@"


def record_time(at: datetime) -> str:
    """A time as the gateway's records write it (gateway.core.evidence.records.format_time)."""
    return format_time(at)


def verification_row(vid: int, p: seeddata.Person, terminal: str, at: datetime) -> dict[str, Any]:
    """A seeded verification as the row record_of("V", ...) reads (the columns the seed writes, decoded)."""
    return {"id": vid, "verdict": "VERIFIED", "document_type": "RESIDENT_ID", "document_bidx": p.document_bidx,
            "document_masked": p.document_masked, "name": p.name, "phone_bidx": p.phone_bidx,
            "phone_masked": p.phone_masked, "authority_result": "MATCH", "in_person_check": "",
            "terminal_id": terminal, "reasons": [], "facts": json.loads(seeddata.facts_json(p)), "created_at": at}


def verification_leaf(vid: int, p: seeddata.Person, terminal: str, at: datetime) -> bytes:
    """The leaf hash of a seeded verification: the gateway's record_of, RFC 8785 and leaf hash."""
    return record_leaf_hash(record_of("V", verification_row(vid, p, terminal, at)))  # type: ignore[arg-type]


# --- the worker side ---

@dataclass(frozen=True)
class _Pools:
    """Everything a worker needs to write rows, pre-encoded: sent once to each worker process."""

    plan: HistoryPlan
    dsn: str
    principal_id: int
    skip_fk_triggers: bool
    senders: tuple[bytes, ...]  # sender_verification_id .. sender_phone_masked
    recipient_phones: tuple[bytes, ...]  # recipient_phone_enc .. recipient_phone_masked
    recipient_names: tuple[bytes, ...]  # recipient_name, recipient_name_keys
    recipient_name_text: tuple[str, ...]
    addresses: tuple[bytes, ...]  # region_code, address
    items: tuple[bytes, ...]
    appended_at: datetime


_WRITER: Any = None
_POOLS: _Pools | None = None
_LOOP: asyncio.AbstractEventLoop | None = None
_CONN: asyncpg.Connection | None = None


def _worker_init(pools: _Pools) -> None:
    global _POOLS, _LOOP, _WRITER
    _POOLS = pools
    _WRITER = _Writer(pools)
    _LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(_LOOP)


@dataclass(frozen=True)
class TaskResult:
    """What one task wrote, and the evidence hashes the parent needs to store the tree's nodes."""

    lo: int
    hi: int
    events: int
    leads: int
    first_leaf: int
    level8: list[tuple[int, bytes]]  # the complete level-8 nodes over this task's leaves
    loose: list[tuple[int, bytes]]  # this task's leaves in level-8 groups it does not cover whole
    generate_s: float
    copy_s: float
    generate_cpu_s: float = 0.0  # CPU time of the generating (wall time above includes waiting for a core)


def complete_groups(first: int, hashes: Sequence[bytes]) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """The level-8 nodes wholly inside leaves first .. first+len-1, and the leaves outside them (with indexes)."""
    size = 1 << GROUP
    lo_group = -(-first // size)
    hi_group = (first + len(hashes)) // size
    nodes = [(g, subtree_root(hashes[g * size - first:(g + 1) * size - first])) for g in range(lo_group, hi_group)]
    if hi_group <= lo_group:
        return [], [(first + i, h) for i, h in enumerate(hashes)]
    head = [(first + i, h) for i, h in enumerate(hashes[:lo_group * size - first])]
    tail_from = hi_group * size - first
    tail = [(first + tail_from + i, h) for i, h in enumerate(hashes[tail_from:])]
    return nodes, head + tail


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of a complete subtree from its 2^k hashes of one level."""
    level = list(hashes)
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)]
    return level[0]


def _task(lo: int, hi: int) -> TaskResult:
    assert _LOOP is not None
    return _LOOP.run_until_complete(_run_task(lo, hi))


async def _connection() -> asyncpg.Connection:
    global _CONN
    assert _POOLS is not None
    if _CONN is None:
        _CONN = await asyncpg.connect(_POOLS.dsn)
        await _CONN.execute("SET synchronous_commit = off")  # the seed is made durable by its final CHECKPOINT
        if _POOLS.skip_fk_triggers:
            await _CONN.execute("SET session_replication_role = replica")
    return _CONN


async def _run_task(lo: int, hi: int) -> TaskResult:
    assert _POOLS is not None
    conn = await _connection()
    gen_s = copy_s = gen_cpu = 0.0
    hashes: list[bytes] = []
    events = leads = 0
    for c_lo in range(lo, hi, CHUNK):
        c_hi = min(c_lo + CHUNK, hi)
        t0, cpu0 = time.perf_counter(), time.process_time()
        ships, evs, lds, leaves, n_events, n_leads, keys = _WRITER.chunk(c_lo, c_hi, hashes)
        t1 = time.perf_counter()
        gen_cpu += time.process_time() - cpu0
        async with conn.transaction():
            await conn.copy_to_table("shipments", source=io.BytesIO(ships), columns=SHIPMENT_COLUMNS, format="binary")
            await conn.copy_to_table("shipment_events", source=io.BytesIO(evs), columns=EVENT_COLUMNS, format="binary")
            await conn.copy_records_to_table("shipment_waybills", records=[(k[1], k[0]) for k in keys],
                                             columns=("waybill_no", "shipment_id"))
            await conn.copy_records_to_table("shipment_idempotency_keys", records=[(k[2], k[0]) for k in keys],
                                             columns=("idempotency_key", "shipment_id"))
            if n_leads:
                await conn.copy_to_table("leads", source=io.BytesIO(lds), columns=LEAD_COLUMNS, format="binary")
            await conn.copy_to_table("evidence_leaves", source=io.BytesIO(leaves), columns=LEAF_COLUMNS,
                                     format="binary")
        gen_s += t1 - t0
        copy_s += time.perf_counter() - t1
        events += n_events
        leads += n_leads
    first_leaf = _POOLS.plan.event_leaf(lo, 1)
    level8, loose = complete_groups(first_leaf, hashes)
    return TaskResult(lo, hi, events, leads, first_leaf, level8, loose, gen_s, copy_s, gen_cpu)


_EMPTY = f_text("")
_INSPECTION = '{{"outcome": "INSPECTED", "notes": "", "photos": 0, "inspected_at": "{}"}}'
_STORED_US = int(_STORED_AFTER.total_seconds()) * 1_000_000
_DISPATCHED_US = int(_DISPATCHED_AFTER.total_seconds()) * 1_000_000


def _hit_fields(state: str) -> tuple[str, str, str]:
    """hold_reason, reasons and hits of a shipment in this state, as acceptance writes them."""
    if state not in ("HELD", "REFUSED"):
        return "", "[]", "[]"
    hit = _HOLD if state == "HELD" else _REFUSE
    reason = {"code": f"SCREENING_{hit['kind']}", "message": hit["explanation"], "field": hit["field"]}
    return str(hit["explanation"]), json.dumps([reason]), json.dumps([hit])


def event_record_template(state: str, seq: int) -> str:
    """The canonical JSON of event seq of a shipment in this state, with {t} {sid} {term} {wb} to fill in:
    record_of("E", ...) and canonical_bytes of the gateway on a row of placeholders, so the form is the gateway's."""
    kind, from_state, to_state, _after, _terminal = _EVENTS[state][seq - 1]
    device, location = _PLACES.get(kind, ("", ""))
    note = _hit_fields(state)[0] if kind in ("HELD", "REFUSED") else ""
    placeholders = {"shipment_id": _SID, "waybill_no": _WB, "seq": seq, "kind": kind, "from_state": from_state,
                    "to_state": to_state, "principal": PRINCIPAL, "terminal_id": _TERM, "device_id": device,
                    "location": location, "note": note, "details": {}, "recorded_at": _SENTINEL_TIME}
    text = canonical_bytes(record_of("E", placeholders)).decode()  # type: ignore[arg-type]
    for marker in (_SID, _WB, _TERM, record_time(_SENTINEL_TIME)):
        if text.count(marker) != 1:
            raise RuntimeError(f"seed_history: the event record no longer holds {marker} once: {text}")
    return (text.replace("{", "{{").replace("}", "}}").replace(_SID, "{sid}").replace(_WB, "{wb}")
            .replace(_TERM, "{term}").replace(record_time(_SENTINEL_TIME), "{t}"))


_PLACES = {"STORED": ("SC-01", "WH-BJ-01"), "DISPATCHED": ("SC-02", "WH-BJ-01")}


class _Writer:
    """Writes the binary COPY data of a range of shipments from the pools, pre-encoding what repeats."""

    def __init__(self, pools: _Pools) -> None:
        self.pools, self.plan = pools, pools.plan
        principal = f_int8(pools.principal_id)
        self.principal = principal
        self.status: dict[str, bytes] = {}
        for state in _EVENTS:
            hold_reason, reasons, hits = _hit_fields(state)
            decision = state if state in ("HELD", "REFUSED") else "ACCEPTED"
            self.status[state] = b"".join((f_text(decision), f_text(state), f_text(hold_reason), f_jsonb(reasons),
                                           f_jsonb(hits), f_int4(len(_EVENTS[state]))))
        # Per (state, seq): the fields before the terminal, those after it, the record template, the delay.
        self.events: dict[str, list[tuple[bytes, bool, bytes, str, int]]] = {}
        for state, events in _EVENTS.items():
            parts = []
            for seq, (kind, from_state, to_state, after, with_terminal) in enumerate(events, 1):
                device, location = _PLACES.get(kind, ("", ""))
                note = _hit_fields(state)[0] if kind in ("HELD", "REFUSED") else ""
                before = b"".join((f_int4(seq), f_text(kind), _NULL if from_state is None else f_text(from_state),
                                   f_text(to_state), principal, f_text(PRINCIPAL)))
                behind = b"".join((f_text(device), f_text(location), f_text(note)))
                delay = after // timedelta(microseconds=1)
                parts.append((before, with_terminal, behind, event_record_template(state, seq), delay))
            self.events[state] = parts
        self.leads = {}
        for state in ("HELD", "REFUSED"):
            hold_reason, _reasons, hits = _hit_fields(state)
            self.leads[state] = b"".join((f_text(state), f_text("ACCEPTANCE"), f_text(hold_reason), f_jsonb(hits)))
        self.terminals = [f"T-{k:04d}" for k in range(TERMINALS)]
        self.terminal_fields = [f_text(t) for t in self.terminals]

    def chunk(self, lo: int, hi: int, hashes: list[bytes],
              ) -> tuple[bytes, bytes, bytes, bytes, int, int, list[tuple[uuid.UUID, str, str]]]:
        """The binary COPY data of shipments lo..hi-1, their events, leads and leaves; appends the leaf hashes."""
        plan, pools = self.plan, self.pools
        ships, evs, lds, leaves = [_HEADER], [_HEADER], [_HEADER], [_HEADER]
        keys: list[tuple[uuid.UUID, str, str]] = []
        people, sha256, step_us = plan.people, hashlib.sha256, plan.step_us
        base_us = us_since_pg_epoch(plan.start)
        ship_head, ev_head, lead_head, leaf_head = (row(len(c)) for c in (
            SHIPMENT_COLUMNS, EVENT_COLUMNS, LEAD_COLUMNS, LEAF_COLUMNS))
        appended, source_e, principal = f_time(pools.appended_at), f_text("E"), self.principal
        senders, addresses, names, phones, items = (pools.senders, pools.addresses, pools.recipient_names,
                                                    pools.recipient_phones, pools.items)
        event_id = plan.event_base + plan.events_before(lo)
        leaf_index = plan.event_leaf(lo, 1)
        lead_id = plan.lead_base + plan.leads_before(lo)
        n_events = n_leads = 0
        mask = (1 << 128) - 1
        for n in range(lo, hi):
            offset = n % CYCLE
            state = _CYCLE_STATES[offset]
            created_us = base_us + step_us * n
            created_f = _I8(8, created_us)
            sid_int = (plan.id_base + n) & mask
            sid_raw = b"\x00\x00\x00\x10" + sid_int.to_bytes(16, "big")
            sid_text = str(uuid.UUID(int=sid_int))
            waybill = f"{plan.prefix}{n:010d}"
            waybill_f = f_text(waybill)
            terminal = self.terminals[n % TERMINALS]
            terminal_f = self.terminal_fields[n % TERMINALS]
            created = _PG_EPOCH + timedelta(microseconds=created_us)
            keys.append((uuid.UUID(int=sid_int), waybill, "key-" + waybill))
            ships += (ship_head, sid_raw, waybill_f, f_text("key-" + waybill),
                      f_bytes(sha256(waybill.encode()).digest()), created_f, created_f, self.status[state],
                      senders[n % people], addresses[n % ADDRESSES], names[(n * 31 + 7) % RECIPIENT_NAMES],
                      phones[(n * 7919 + 13) % people], addresses[(n * 31 + 7) % ADDRESSES], items[n % ITEMS],
                      f_jsonb(_INSPECTION.format(created.isoformat())),
                      terminal_f, principal)
            for before, with_terminal, behind, template, delay in self.events[state]:
                event_id += 1
                at = created + timedelta(microseconds=delay) if delay else created
                event_key = str(event_id)
                evs += (ev_head, _I8(8, event_id), sid_raw, before, terminal_f if with_terminal else _EMPTY, behind,
                        _I8(8, created_us + delay), created_f)
                text = template.format(t=at.isoformat(timespec="microseconds")[:26] + "Z", sid=sid_text,
                                       term=terminal if with_terminal else "", wb=waybill)
                h = sha256(b"\x00" + text.encode()).digest()
                hashes.append(h)
                leaves += (leaf_head, _I8(8, leaf_index), source_e, _I4(len(event_key)), event_key.encode(),
                           b"\x00\x00\x00\x20", h, appended)
                leaf_index += 1
                n_events += 1
            if offset in _FLAGGED:
                lead_id += 1
                n_leads += 1
                lds += (lead_head, _I8(8, lead_id), sid_raw, waybill_f, self.leads[state], created_f)
        for part in (ships, evs, lds, leaves):
            part.append(_TRAILER)
        return b"".join(ships), b"".join(evs), b"".join(lds), b"".join(leaves), n_events, n_leads, keys


# --- the parent side ---

def make_pools_people(rng: random.Random, sealer: Sealer, count: int) -> list[seeddata.Person]:
    """The seeded people, sealed with the gateway's keys."""
    return [seeddata.make_person(rng, sealer) for _ in range(count)]


def people_for(shipments: int) -> int:
    """How many people a history of this many shipments has."""
    return max(MIN_PEOPLE, shipments // PEOPLE_EVERY)


def _sender_fields(vid: int, p: seeddata.Person, keys: Sequence[str]) -> bytes:
    return b"".join((f_int8(vid), f_text(p.name), f_text_array(keys), f_bytes(p.document_bidx), f_bytes(p.phone_enc),
                     f_bytes(p.phone_bidx), f_text(p.phone_masked)))


def _recipient_phone_fields(p: seeddata.Person) -> bytes:
    return b"".join((f_bytes(p.phone_enc), f_bytes(p.phone_bidx), f_text(p.phone_masked)))


@dataclass(frozen=True)
class _Index:
    """A secondary index of a filled table, as it was defined: rebuilt from this after the load."""

    table: str
    name: str
    definition: str  # CREATE INDEX ..., or the constraint's definition
    constraint: str | None  # the constraint that owns it (UNIQUE, EXCLUDE), if any

    def drop(self) -> str:
        return (f"ALTER TABLE {self.table} DROP CONSTRAINT {self.constraint}" if self.constraint
                else f"DROP INDEX {self.name}")

    def create(self) -> str:
        return (f"ALTER TABLE {self.table} ADD CONSTRAINT {self.constraint} {self.definition}" if self.constraint
                else self.definition)


_INDEXES = """
SELECT c.relname AS tbl, i.relname AS idx, pg_get_indexdef(i.oid) AS def, con.conname,
    pg_get_constraintdef(con.oid) AS condef, pg_relation_size(c.oid) AS size
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = c.oid AND con.contype IN ('u', 'x')
WHERE c.relname = ANY($1::text[]) AND c.relnamespace = 'public'::regnamespace AND NOT x.indisprimary
ORDER BY c.relname, i.relname
"""


async def secondary_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[_Index]:
    """The indexes of these tables besides their primary keys, with the definitions that make them again."""
    rows = await conn.fetch(_INDEXES, list(tables))
    return [_Index(r["tbl"], r["idx"], r["condef"] if r["conname"] else r["def"], r["conname"]) for r in rows]


async def _can_skip_fk_triggers(conn: asyncpg.Connection) -> bool:
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
        return True
    except asyncpg.InsufficientPrivilegeError:
        return False


async def _fresh(conn: asyncpg.Connection) -> None:
    for table in ("shipments", "sender_verifications", "evidence_leaves", "leads"):
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise RuntimeError(f"seed_history needs a fresh database: {table} is not empty")


async def _principal(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "INSERT INTO principals (name, roles) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles"
        " RETURNING id", PRINCIPAL, ["terminal", "scanner"]))


async def _next_id(conn: asyncpg.Connection, table: str) -> int:
    """The largest id the table's sequence has given (0 for a fresh one): seeded ids follow it."""
    seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
    return int(await conn.fetchval(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}"))


async def _set_sequence(conn: asyncpg.Connection, table: str, last: int) -> None:
    if last > 0:
        await conn.execute("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)", table, last)


async def _verifications(conn: asyncpg.Connection, plan: HistoryPlan, people: Sequence[seeddata.Person],
                         principal_id: int) -> list[bytes]:
    """COPYs one VERIFIED verification per person (ids from verification_base + 1); returns their leaf hashes."""
    at, hashes, rows = plan.start, [], []
    for k, p in enumerate(people):
        vid, terminal = plan.verification_base + k + 1, f"T-{k % TERMINALS:04d}"
        rows.append((vid, f"{plan.prefix}ref-{k}", "VERIFIED", "RESIDENT_ID", p.document_enc, p.document_bidx,
                     p.document_masked, p.name, p.phone_enc, p.phone_bidx, p.phone_masked, seeddata.facts_json(p),
                     "MATCH", principal_id, terminal, at, at + timedelta(minutes=30)))
        hashes.append(verification_leaf(vid, p, terminal, at))
    await conn.copy_records_to_table("sender_verifications", records=rows, columns=VERIFICATION_COLUMNS)
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "evidence_leaves", records=[(i, "V", str(plan.verification_base + i + 1), h, now)
                                    for i, h in enumerate(hashes)], columns=LEAF_COLUMNS)
    return hashes


def tree_nodes(size: int, level8: dict[int, bytes], loose: dict[int, bytes]) -> list[tuple[int, int, bytes]]:
    """Every complete stored node (levels 8, 16, ...) of a tree of size leaves, from the level-8 nodes already
    made and the leaves of the groups that were not (the rows stored_nodes_completed(0, size, ...) would give)."""
    width = 1 << GROUP
    out: list[tuple[int, int, bytes]] = []
    below = {}
    for g in range(size >> GROUP):
        found = level8.get(g)
        if found is None:
            found = subtree_root([loose[i] for i in range(g * width, (g + 1) * width)])
        below[g] = found
        out.append((GROUP, g, found))
    level = GROUP
    while size >> (level + GROUP):
        up = {g: subtree_root([below[i] for i in range(g * width, (g + 1) * width)])
              for g in range(size >> (level + GROUP))}
        out += [(level + GROUP, g, h) for g, h in up.items()]
        below, level = up, level + GROUP
    return out


async def seed_history(dsn: str, shipments: int, sealer: Sealer, *, prefix: str | None = None,
                       people: int | None = None, workers: int | None = None, rng_seed: int = 20240601,
                       show_progress: bool = True, check: int = 200,
                       log: Any = None) -> HistorySeedResult:
    """Seeds a history of `shipments` shipments into a fresh migrated database (see the module's comment)."""
    say = log or (lambda _text: None)
    started = time.perf_counter()
    phases: dict[str, float] = {}
    rng = random.Random(rng_seed)
    count = people or people_for(shipments)
    conn = await asyncpg.connect(dsn)
    try:
        await _fresh(conn)
        principal_id = await _principal(conn)
        skip_fk = await _can_skip_fk_triggers(conn)
        t0 = time.perf_counter()
        persons = make_pools_people(rng, sealer, count)
        names = [seeddata.chinese_name(rng) for _ in range(RECIPIENT_NAMES)]
        keys = {n: list(name_keys(n)) for n in {*names, *(p.name for p in persons)}}
        start = (datetime.now(UTC) - SPAN).replace(microsecond=0)
        # Each month of the span its own partition (migration 012), as `partitions ensure` keeps them.
        await conn.execute("SELECT courier_ensure_month('shipment_events', m::date) FROM generate_series("
                           "date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC'), now(), interval '1 month') m",
                           start)
        plan = HistoryPlan(prefix or new_prefix(), shipments, count, start,
                           SPAN // timedelta(microseconds=1) // max(shipments, 1),
                           await _next_id(conn, "sender_verifications"), await _next_id(conn, "shipment_events"),
                           await _next_id(conn, "leads"), uuid.uuid4().int)
        pools = _Pools(
            plan, dsn, principal_id, skip_fk,
            senders=tuple(_sender_fields(plan.verification_base + k + 1, p, keys[p.name])
                          for k, p in enumerate(persons)),
            recipient_phones=tuple(_recipient_phone_fields(p) for p in persons),
            recipient_names=tuple(f_text(n) + f_text_array(keys[n]) for n in names), recipient_name_text=tuple(names),
            addresses=tuple(f_text(code) + f_text(addr) for code, addr in
                            (seeddata.address(rng) for _ in range(ADDRESSES))),
            items=tuple(f_jsonb(seeddata.items_json(rng)) for _ in range(ITEMS)), appended_at=datetime.now(UTC))
        v_hashes = await _verifications(conn, plan, persons, principal_id)
        phases["people"] = time.perf_counter() - t0
        say(f"{count:,} people sealed and verified in {phases['people']:.1f} s")
        t0 = time.perf_counter()
        indexes = await secondary_indexes(conn, REBUILT)
        for index in indexes:
            await conn.execute(index.drop())
        results = await _run_tasks(pools, shipments, workers or max(2, os.cpu_count() or 2), show_progress)
        phases["copy"] = time.perf_counter() - t0
        phases["workers_generating"] = sum(r.generate_s for r in results)
        phases["workers_copying"] = sum(r.copy_s for r in results)
        phases["workers_generating_cpu"] = sum(r.generate_cpu_s for r in results)
        say(f"{shipments:,} shipments COPYed in {phases['copy']:.1f} s (the workers spent"
            f" {phases['workers_generating']:.1f} s generating rows, {phases['workers_generating_cpu']:.1f} s of it"
            f" on a core, and {phases['workers_copying']:.1f} s in COPY)")
        t0 = time.perf_counter()
        level8, loose = complete_groups(0, v_hashes)
        level8_all, loose_all = dict(level8), dict(loose)
        for r in results:
            level8_all.update(r.level8)
            loose_all.update(r.loose)
        nodes = tree_nodes(plan.leaves, level8_all, loose_all)
        await conn.copy_records_to_table("evidence_nodes", records=nodes, columns=("level", "idx", "hash"))
        phases["tree"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await _rebuild(dsn, indexes)
        phases["indexes"] = time.perf_counter() - t0
        say(f"{len(indexes)} indexes built in {phases['indexes']:.1f} s")
        await _finish(conn, plan)
        t0 = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) shipments, shipment_events, leads, evidence_leaves, evidence_nodes,"
                           " sender_verifications")
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            pass
        phases["vacuum"] = time.perf_counter() - t0
        say(f"vacuumed and checkpointed in {phases['vacuum']:.1f} s")
    finally:
        await conn.close()
    probes = [Probe(k, p.name, p.document_number, p.phone_e164) for k, p in enumerate(persons[:5000])]
    result = HistorySeedResult(plan, sum(r.events for r in results), sum(r.leads for r in results),
                               plan.leaves, len(nodes), time.perf_counter() - started, phases, probes, names, skip_fk)
    if check:
        result.checked_leaves = await check_leaves(dsn, plan, check, rng)
    return result


async def _run_tasks(pools: _Pools, shipments: int, workers: int, show_progress: bool) -> list[TaskResult]:
    loop = asyncio.get_running_loop()
    ranges = [(lo, min(lo + TASK, shipments)) for lo in range(0, shipments, TASK)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(pools,)) as executor, progress_bar(show_progress) as progress:
        bar = progress.add_task("seeding the history", total=shipments, rate="")
        done = [0]

        def advance(future: asyncio.Future[TaskResult]) -> None:
            if not future.cancelled() and future.exception() is None:
                r = future.result()
                done[0] += r.hi - r.lo
                progress.update(bar, advance=r.hi - r.lo,
                                rate=f"{done[0] / (time.perf_counter() - started):,.0f}/s")

        futures = [loop.run_in_executor(executor, _task, lo, hi) for lo, hi in ranges]
        for future in futures:
            future.add_done_callback(advance)
        return list(await asyncio.gather(*futures))


async def _rebuild(dsn: str, indexes: Sequence[_Index], connections: int = 2) -> None:
    """Builds the dropped indexes again, on a few connections at once (largest tables first)."""
    order = {"shipments": 0, "shipment_events": 1, "evidence_leaves": 2, "leads": 3}
    queue: asyncio.Queue[_Index] = asyncio.Queue()
    for index in sorted(indexes, key=lambda i: order.get(i.table, 9)):
        queue.put_nowait(index)

    async def builder() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            while not queue.empty():
                index = queue.get_nowait()
                await conn.execute(index.create())
        finally:
            await conn.close()

    await asyncio.gather(*(builder() for _ in range(connections)))


async def _finish(conn: asyncpg.Connection, plan: HistoryPlan) -> None:
    """Sequences past the seeded ids; the log's cursors past the seeded rows (the appender starts after them)."""
    await _set_sequence(conn, "sender_verifications", plan.verification_base + plan.people)
    await _set_sequence(conn, "shipment_events", plan.event_base + plan.events)
    await _set_sequence(conn, "leads", plan.lead_base + plan.leads)
    for source, table in (("V", "sender_verifications"), ("E", "shipment_events")):
        last = await conn.fetchrow(f"SELECT ins_xid, id FROM {table} ORDER BY ins_xid DESC, id DESC LIMIT 1")
        if last is not None:
            await conn.execute("UPDATE evidence_cursors SET last_xid = $2::xid8, last_key = $3 WHERE source = $1",
                               source, int(last["ins_xid"]), str(last["id"]))


async def check_leaves(dsn: str, plan: HistoryPlan, sample: int, rng: random.Random) -> int:
    """Rebuilds a sample of the seeded leaves' records through the gateway's own code (record_of on the rows, RFC
    8785, the leaf hash) and compares them with the stored hashes; raises on the first that differs."""
    from gateway.core.evidence.records import record_leaf_hash
    from gateway.storage.db import create_pool
    from gateway.storage.evidence import EvidenceRepository

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        repo = EvidenceRepository(pool)
        indexes = sorted({0, plan.leaves - 1, *(rng.randrange(plan.leaves) for _ in range(sample))})
        for index in indexes:
            found = await repo.leaf_record(index)
            if found is None:
                raise RuntimeError(f"seed_history: leaf {index} has no record")
            record, stored = found
            if record_leaf_hash(record) != stored:
                raise RuntimeError(f"seed_history: leaf {index}'s stored hash is not its record's: {record}")
        return len(indexes)
    finally:
        await pool.close()
