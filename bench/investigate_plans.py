"""EXPLAIN (ANALYZE, BUFFERS) of the investigators' queries as the gateway's repository builds them, for the report.

The SQL is the repository's own (gateway.storage.investigation: the shipment select and the search conditions,
the history's event select), with keys made the way InvestigationService.query makes them, so a plan shown here is
the plan a timed call ran.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.core.investigation import SearchFilters
from gateway.core.investigation_service import InvestigationService
from gateway.security.sealing import Sealer
from gateway.storage import investigation as sql

_TIME = re.compile(r"Execution Time: ([\d.]+) ms")


def _search_sql(sealer: Sealer, filters: SearchFilters, page_size: int) -> tuple[str, list[Any]]:
    """The search's SQL and arguments, as InvestigationRepository.search sends them."""
    service = InvestigationService(None, None, blind_index=sealer.blind_index, tokens=None,  # type: ignore[arg-type]
                                   clock=lambda: datetime.now(UTC))
    query = service.query(filters, page_size, "")
    where, args = sql._conditions(query)
    return (f"{sql._SHIPMENT} WHERE {' AND '.join(where) or 'true'}"
            f" ORDER BY s.created_at DESC, s.id DESC LIMIT {query.limit + 1}"), args


async def explain(conn: asyncpg.Connection, statement: str, args: list[Any]) -> dict[str, Any]:
    """One statement's analysed plan: its text and execution time."""
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *args)
    text = "\n".join(r[0] for r in rows)
    found = _TIME.search(text)
    return {"execution_ms": float(found.group(1)) if found else None, "plan": text}


async def plans(dsn: str, sealer: Sealer, *, document_number: str, phone: str, name: str, month_start: datetime,
                waybill_no: str, page_size: int) -> dict[str, dict[str, Any]]:
    """The analysed plans of a search by document, by phone, by name within 30 days, and of a history's reads."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, dict[str, Any]] = {}
        for key, filters in (
                ("search_document", SearchFilters(document_number=document_number)),
                ("search_phone", SearchFilters(phone=phone)),
                ("search_name_month", SearchFilters(name=name, from_time=month_start,
                                                    to_time=month_start + timedelta(days=30)))):
            out[key] = await explain(conn, *_search_sql(sealer, filters, page_size))
        shipment = await conn.fetchrow(f"{sql._SHIPMENT} WHERE s.waybill_no = $1", waybill_no)
        out["history_shipment"] = await explain(conn, f"{sql._SHIPMENT} WHERE s.waybill_no = $1", [waybill_no])
        out["history_events"] = await explain(conn, sql._EVENTS, [shipment["id"]])
        return out
    finally:
        await conn.close()
