"""Scan events: recorded once per event_id, decided against the parcel as it stands, many per statement.

A batch (group commit) reads the acks of event_ids seen before and the parcels it names, lets the core decide
the rest, and writes in one statement: the scan rows, one history event per scan on a known parcel, and for a
scan that holds the parcel its HELD move and a lead, only if no parcel changed since the read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from gateway.core.errors import StorageUnavailable
from gateway.core.inspection import (
    ParcelAtScan,
    PreparedScan,
    Routing,
    ScanOutcome,
    ScanResult,
    WeightPolicy,
    decide,
    event_kind,
    hold_reason,
)
from gateway.core.model import Actor, ParcelState, ReasonRecord
from gateway.storage.batching import GroupCommitLane
from gateway.storage.db import translate_errors

# A batch is two statements and no explicit transaction: a read, then one write that holds only if every parcel
# it touches is still as it was read (its last_seq unchanged). A parcel that changed meanwhile, or an event_id
# another stream recorded meanwhile, makes the write fail whole (a serialization failure, a unique violation);
# the scans are then read and decided again. Every writer of a parcel's history moves last_seq, so an unchanged
# last_seq means an unchanged state.
_READ = """
SELECT now() AS at,
       (SELECT jsonb_object_agg(event_id, ack) FROM scan_events WHERE event_id = ANY($1::text[])) AS acks,
       (SELECT jsonb_agg(jsonb_build_object('id', id, 'waybill_no', waybill_no, 'state', state,
                                            'hold_reason', hold_reason, 'weight_g', weight_g, 'seq', last_seq))
        FROM shipments WHERE waybill_no = ANY($2::text[])) AS parcels
"""
_WRITE = """
WITH moved AS (
    UPDATE shipments s SET last_seq = s.last_seq + u.added, state = COALESCE(u.state, s.state),
        hold_reason = COALESCE(u.hold_reason, s.hold_reason),
        updated_at = CASE WHEN u.state IS NULL THEN s.updated_at ELSE $13 END
    FROM unnest($29::uuid[], $30::int[], $31::int[], $32::text[], $33::text[]) AS u(id, expected, added, state,
                                                                                 hold_reason)
    WHERE s.id = u.id AND s.last_seq = u.expected
    RETURNING s.id
), unchanged AS (
    SELECT courier_expect((SELECT count(*) FROM moved) = cardinality($29::uuid[]),
                          'a parcel changed while its scan was decided') AS ok
), events AS (
    INSERT INTO shipment_events (shipment_id, accepted_at, seq, kind, from_state, to_state, principal_id, principal,
        terminal_id, device_id, location, note, details, recorded_at)
    SELECT shipment_id::uuid, (SELECT p.created_at FROM shipments p WHERE p.id = shipment_id::uuid), seq, kind,
        from_state, to_state, principal_id, principal, terminal_id, device_id,
        location, note, details::jsonb, $13
    FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[], $12::text[])
        AS t(shipment_id, seq, kind, from_state, to_state, principal_id, principal, terminal_id, device_id,
             location, note, details), unchanged
    WHERE unchanged.ok
), leads AS (
    INSERT INTO leads (shipment_id, waybill_no, kind, origin, reason, hits)
    SELECT id::uuid, waybill_no, 'HELD', 'SCAN', reason, hits::jsonb
    FROM unnest($14::text[], $15::text[], $16::text[], $17::text[]) AS t(id, waybill_no, reason, hits), unchanged
    WHERE unchanged.ok
)
INSERT INTO scan_events (event_id, device_id, terminal_id, kind, waybill_no, shipment_id, event_seq, decision, ack,
    principal_id, device_time, recorded_at)
SELECT event_id, device_id, terminal_id, kind, waybill_no, shipment_id::uuid, event_seq, decision, ack::jsonb,
    principal_id, device_time, $13
FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::int[], $25::text[],
            $26::text[], $27::bigint[], $28::timestamptz[])
    AS t(event_id, device_id, terminal_id, kind, waybill_no, shipment_id, event_seq, decision, ack, principal_id,
         device_time), unchanged
WHERE unchanged.ok
"""
# How often a batch is read and decided again when its write lost a race, before the caller is told to retry.
ATTEMPTS = 5


@dataclass(frozen=True)
class _Item:
    scan: PreparedScan
    actor: Actor


def ack_record(result: ScanResult) -> dict[str, Any]:
    """What is stored to answer a resend."""
    return {"routing": result.routing.value, "reasons": [r.as_dict() for r in result.reasons],
            "hits": list(result.hits), "waybill_no": result.waybill_no,
            "state": result.state.value if result.state else None, "event_seq": result.event_seq,
            "recorded_at": result.recorded_at.isoformat() if result.recorded_at else None,
            "image_sha256": list(result.image_sha256)}


def replayed(event_id: str, ack: dict[str, Any]) -> ScanResult:
    """The first answer to an event_id, answered again."""
    return ScanResult(
        event_id=event_id, routing=Routing(ack["routing"]), reasons=tuple(ReasonRecord(**r) for r in ack["reasons"]),
        hits=tuple(ack["hits"]), waybill_no=ack["waybill_no"],
        state=ParcelState(ack["state"]) if ack["state"] else None, event_seq=ack["event_seq"],
        recorded_at=datetime.fromisoformat(ack["recorded_at"]) if ack["recorded_at"] else None,
        replayed=True, image_sha256=tuple(ack["image_sha256"]),
    )


class _Batch:
    """The rows of one write, gathered while each scan is decided in order."""

    def __init__(self, at: datetime, read_seqs: dict[str, int]) -> None:
        self.at = at
        self.events: list[tuple[Any, ...]] = []
        self.leads: list[tuple[str, str, str, str]] = []
        self.scans: list[tuple[Any, ...]] = []
        # Per parcel touched: the last_seq it was read with, how many events this batch adds, a hold's reason.
        self.read_seqs = read_seqs
        self.added: dict[str, int] = {}
        self.holds: dict[str, str] = {}

    def moves(self) -> list[list[Any]]:
        """The columns of the parcel updates: id, expected last_seq, events added, new state, hold reason."""
        ids = list(self.added)
        return [ids, [self.read_seqs[i] for i in ids], [self.added[i] for i in ids],
                ["HELD" if i in self.holds else None for i in ids], [self.holds.get(i) for i in ids]]

    def record(self, item: _Item, parcel: ParcelAtScan | None, outcome: ScanOutcome, seq: int) -> ScanResult:
        cmd = item.scan.command
        who = (item.actor.principal.id, item.actor.principal.name)
        state = parcel.state if parcel else None
        event_seq = 0
        if parcel is not None:
            event_seq = seq + 1
            details = {"event_id": cmd.event_id, "scan_kind": cmd.kind.value if cmd.kind else "",
                       "measurements": {"weight_g": cmd.weight_g, "length_mm": cmd.length_mm,
                                        "width_mm": cmd.width_mm, "height_mm": cmd.height_mm},
                       "images": [{"sha256": d, "role": i.role.value, "media_type": i.media_type}
                                  for d, i in zip(item.scan.image_sha256, cmd.images, strict=True)],
                       "findings": [f.__dict__ for f in cmd.findings], "decision": outcome.routing.value,
                       "reasons": [r.as_dict() for r in outcome.reasons], "hits": list(outcome.hits),
                       "device_time": cmd.device_time.isoformat() if cmd.device_time else None,
                       "unreadable": cmd.unreadable, "raw_sha256": cmd.raw_sha256, "notes": cmd.notes}
            self.events.append((parcel.shipment_id, event_seq, event_kind(cmd), parcel.state.value,
                                parcel.state.value, *who, cmd.terminal_id, cmd.device_id, cmd.location,
                                outcome.reasons[0].message if outcome.reasons else "", json.dumps(details)))
            self.added[parcel.shipment_id] = self.added.get(parcel.shipment_id, 0) + 1
            if outcome.hold:
                reason = hold_reason(outcome)
                held = [h for h in outcome.hits if h["action"] in ("HOLD", "REFUSE")]
                self.events.append((parcel.shipment_id, event_seq + 1, "HELD", parcel.state.value, "HELD", *who,
                                    cmd.terminal_id, cmd.device_id, cmd.location, reason,
                                    json.dumps({"origin": "SCAN", "event_id": cmd.event_id, "hits": held})))
                self.holds[parcel.shipment_id] = reason
                self.added[parcel.shipment_id] += 1
                self.leads.append((parcel.shipment_id, parcel.waybill_no, reason, json.dumps(held)))
                state = ParcelState.HELD
        result = ScanResult(cmd.event_id, outcome.routing, outcome.reasons, outcome.hits,
                            parcel.waybill_no if parcel else cmd.waybill_no, state, event_seq, self.at,
                            image_sha256=item.scan.image_sha256)
        self.scans.append((cmd.event_id, cmd.device_id, cmd.terminal_id, cmd.kind.value if cmd.kind else "",
                           cmd.waybill_no, parcel.shipment_id if parcel else None, event_seq or None,
                           outcome.routing.value, json.dumps(ack_record(result)), who[0], cmd.device_time))
        return result


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


class ScanRepository:
    """Owns the SQL of scan_events and of the history events, holds and leads that scans write.

    A single-statement lane: the read runs outside any transaction and the write is one statement, which
    PostgreSQL commits atomically (and durably before answering).
    """

    def __init__(self, pool: asyncpg.Pool, policy: WeightPolicy, *, max_batch: int = 256) -> None:
        self._policy = policy
        self._lane: GroupCommitLane[_Item, ScanResult] = GroupCommitLane(
            pool, self._write, max_batch=max_batch, single_statement=True)

    @translate_errors
    async def record(self, scan: PreparedScan, actor: Actor) -> ScanResult:
        """Records a scan once (answered after commit); a known event_id gets its first answer, replayed."""
        for _ in range(ATTEMPTS):
            try:
                return await self._lane.submit(_Item(scan, actor))
            except (asyncpg.SerializationError, asyncpg.UniqueViolationError):
                continue  # the parcel changed, or another stream recorded this event_id: read and decide again
        raise StorageUnavailable("the parcel kept changing while its scan was recorded; retry")

    async def _write(self, conn: asyncpg.Connection, items: Sequence[_Item]) -> list[ScanResult]:
        event_ids = [i.scan.command.event_id for i in items]
        waybills = sorted({i.scan.command.waybill_no for i in items if i.scan.command.waybill_no})
        seen = await conn.fetchrow(_READ, event_ids, waybills)
        acks: dict[str, Any] = seen["acks"] or {}
        parcels = {r["waybill_no"]: r for r in seen["parcels"] or ()}
        seqs = {w: r["seq"] for w, r in parcels.items()}
        states = {w: ParcelAtScan(r["id"], w, ParcelState(r["state"]), r["hold_reason"], r["weight_g"])
                  for w, r in parcels.items()}
        batch = _Batch(seen["at"], {r["id"]: r["seq"] for r in parcels.values()})
        results, first = list[ScanResult](), dict[str, ScanResult]()
        for item in items:
            event_id = item.scan.command.event_id
            if event_id in acks or event_id in first:
                results.append(replayed(event_id, acks[event_id]) if event_id in acks else
                               _again(first[event_id]))
                continue
            parcel = states.get(item.scan.command.waybill_no)
            outcome = decide(item.scan, parcel, self._policy)
            result = batch.record(item, parcel, outcome, seqs.get(parcel.waybill_no, 0) if parcel else 0)
            if parcel is not None:  # later scans of the same parcel in this batch see what this one did
                seqs[parcel.waybill_no] = result.event_seq + (1 if outcome.hold else 0)
                if outcome.hold and result.state is not None:
                    states[parcel.waybill_no] = ParcelAtScan(parcel.shipment_id, parcel.waybill_no, result.state,
                                                             hold_reason(outcome), parcel.weight_g)
            first[event_id] = result
            results.append(result)
        await self._flush(conn, batch)
        return results

    async def _flush(self, conn: asyncpg.Connection, batch: _Batch) -> None:
        await conn.execute(_WRITE, *_columns(batch.events, 12), batch.at, *_columns(batch.leads, 4),
                           *_columns(batch.scans, 11), *batch.moves())


def _again(first: ScanResult) -> ScanResult:
    return replace(first, replayed=True)
