"""`investigate history WAYBILL`: one shipment in full, its verification, its hits, every event, its leads."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from courier.v1 import common_pb2, investigation_pb2
from gateway.commands.investigate.common import (
    CALL_TIMEOUT_S,
    Session,
    cell,
    emit,
    enum_name,
    facts,
    launch,
    party,
    shown_time,
)


def add(actions: Any, common: argparse.ArgumentParser) -> None:
    """Adds the `history` action."""
    p = actions.add_parser("history", parents=[common], help="one shipment and everything recorded about it",
                           description="One shipment and everything recorded about it, in order.")
    p.add_argument("waybill", help="the waybill number")
    p.set_defaults(func=launch(run_history))


async def run_history(s: Session, args: argparse.Namespace) -> int:
    """Prints the shipment, its verification, acceptance hits, events and leads."""
    request = investigation_pb2.GetShipmentHistoryRequest(case_no=s.case_no, waybill_no=args.waybill)
    found = await s.investigation.GetShipmentHistory(request, metadata=s.metadata, timeout=CALL_TIMEOUT_S)
    if s.as_json:
        emit(found)
    else:
        show(found, s.out)
    return 0


def show(h: investigation_pb2.ShipmentHistory, out: Console) -> None:
    """The panels and tables of one history, in the order an investigator reads them."""
    out.print(Panel(shipment_grid(h.shipment), title=cell(f"shipment {h.shipment.waybill_no}"), expand=False))
    if h.HasField("verification"):
        out.print(Panel(verification_grid(h.verification), title="sender verification", expand=False))
    if h.acceptance_hits:
        out.print(hits_table(h.acceptance_hits, "screening hits at acceptance"))
    out.print(events_table(h.events))
    if h.leads:
        out.print(leads_table(h.leads))


def shipment_grid(s: investigation_pb2.ShipmentRecord) -> Table:
    """The shipment's facts and both parties in full."""
    state = enum_name(common_pb2.ParcelState, s.state, "PARCEL_STATE_")
    return facts([("waybill", s.waybill_no), ("shipment id", s.shipment_id), ("decision", s.decision),
                  ("state", f"{state}: {s.hold_reason}" if s.hold_reason else state),
                  ("accepted at", shown_time(s.accepted_at)), ("flagged", "yes" if s.flagged else "no"),
                  ("contract customer", s.contract_customer_id), ("sender", party(s.sender)),
                  ("recipient", party(s.recipient)), ("goods", goods(s.items_json))])


def goods(items_json: str) -> str:
    """The goods, one line each: quantity, description, category, brand, declared value."""
    try:
        items = json.loads(items_json) if items_json else []
    except ValueError:
        return items_json
    lines = []
    for item in items if isinstance(items, list) else []:
        item = item if isinstance(item, dict) else {}
        extra = [item.get("category"), f"brand {item['brand']}" if item.get("brand") else "",
                 f"declared ¥{item['declared_value_fen'] / 100:.2f}" if item.get("declared_value_fen") else ""]
        described = ", ".join(str(x) for x in extra if x)
        lines.append(f"{item.get('quantity', 1)} × {item.get('description', '')}"
                     + (f" ({described})" if described else ""))
    return "\n".join(lines)


def verification_grid(v: investigation_pb2.VerificationRecord) -> Table:
    """How the sender was verified, with the reasons when not VERIFIED."""
    kind = enum_name(common_pb2.DocumentType, v.document_type, "DOCUMENT_TYPE_")
    reasons = "\n".join(f"{r.code}: {r.message}" for r in v.reasons)
    return facts([("verdict", v.verdict), ("document", f"{kind} {v.document_number}".strip()), ("name", v.name),
                  ("phone", v.phone), ("authority", v.authority_result), ("in-person check", v.in_person_check),
                  ("terminal", v.terminal_id), ("verified at", shown_time(v.verified_at)),
                  ("verification id", str(v.verification_id)), ("reasons", reasons)])


def hits_table(hits: Any, title: str) -> Table:
    """Screening hits: kind, action, field, matched, score against threshold, explanation."""
    table = Table("entry", "kind", "action", "field", "matched", "score / threshold", "explanation", title=title)
    for h in hits:
        action = enum_name(common_pb2.ScreeningOutcome, h.action, "SCREENING_OUTCOME_")
        table.add_row(cell(h.entry_id or "-"), cell(h.kind), cell(action), cell(h.field), cell(h.matched),
                      cell(f"{h.score:.2f} / {h.threshold:.2f}"),
                      cell(h.explanation))
    return table


def events_table(events: Any) -> Table:
    """Every event in order, with what was recorded with it."""
    table = Table("seq", "recorded at", "kind", "from → to", "actor", "location", "note", "leaf", "details",
                  title="events", show_lines=True)
    for e in events:
        move = " → ".join(enum_name(common_pb2.ParcelState, x, "PARCEL_STATE_") or "-"
                          for x in (e.from_state, e.to_state))
        actor = "\n".join(x for x in (e.actor.principal, e.actor.terminal_id, e.actor.device_id) if x)
        table.add_row(cell(e.seq), cell(shown_time(e.recorded_at)), cell(e.kind), cell(move), cell(actor),
                      cell(e.location), cell(e.note), cell(e.leaf_index if e.leaf_index >= 0 else "pending"),
                      cell("\n".join(details_lines(e.details_json))))
    return table


def details_lines(details_json: str) -> list[str]:
    """The interesting parts of an event's details: hits, measurements, images, findings, decision, case."""
    try:
        d = json.loads(details_json) if details_json else {}
    except ValueError:
        return [details_json]
    if not isinstance(d, dict):
        return [details_json]
    lines = [f"origin {d['origin']}"] if d.get("origin") else []
    lines += [f"hit {h.get('kind', '')} {h.get('action', '')}: {h.get('explanation', '')}" for h in _dicts(d, "hits")]
    lines += _measurements(d.get("measurements"))
    lines += [f"image {i.get('role', '')} sha256 {i.get('sha256', '')}" for i in _dicts(d, "images")]
    lines += [_finding(f) for f in _dicts(d, "findings")]
    lines += [f"decision {d['decision']}"] if d.get("decision") else []
    lines += ["unreadable"] if d.get("unreadable") else []
    lines += [f"reviewer's case {d['case_no']}"] if d.get("case_no") else []
    return lines


def _dicts(details: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = details.get(key)
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def _measurements(m: Any) -> list[str]:
    if not isinstance(m, dict):
        return []
    size = [m.get(k) for k in ("length_mm", "width_mm", "height_mm")]
    parts = [f"{m['weight_g']} g"] if m.get("weight_g") else []
    parts += [" × ".join(str(x) for x in size) + " mm"] if all(size) else []
    return [f"measured {', '.join(parts)}"] if parts else []


def _finding(f: dict[str, Any]) -> str:
    confidence = f.get("confidence")
    sure = f" ({confidence:.2f})" if isinstance(confidence, int | float) and confidence else ""
    return f"finding {f.get('category', '')}: {f.get('description', '')}{sure}{' ALARM' if f.get('alarm') else ''}"


def leads_table(leads: Any) -> Table:
    """The leads a shipment raised."""
    table = Table("lead", "raised at", "kind", "origin", "regions", "reason", "hits", title="leads")
    for x in leads:
        table.add_row(cell(x.lead_id), cell(shown_time(x.created_at)), cell(x.kind), cell(x.origin),
                      cell(f"{x.origin_region_code} → {x.destination_region_code}"), cell(x.reason),
                      cell("\n".join(f"{h.kind} {h.matched}" for h in x.hits)))
    return table

