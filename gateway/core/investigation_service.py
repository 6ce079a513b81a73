"""The Investigation use cases: search, history, watched leads and the audit, every call tied to a case."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from gateway.core.blocklist import SEAL_CONTEXTS, screening_canonical
from gateway.core.errors import (
    DomainError,
    FieldViolation,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
    Unauthenticated,
    Violations,
    WrongState,
)
from gateway.core.evidence_service import EvidenceService, Export, ExportStore, Head, Proven, export
from gateway.core.investigation import (
    DEFAULT_PAGE,
    PageTokens,
    SearchFilters,
    SearchQuery,
    check_case_no,
    check_filters,
    filters_digest,
    name_query_keys,
    region_prefix,
    require_case,
)
from gateway.core.investigation_records import (
    AsOf,
    AuditEntry,
    AuditFound,
    AuditQuery,
    HistoryFound,
    LeadCursor,
    LeadFilters,
    LeadFound,
    SearchPage,
    ShipmentFound,
)
from gateway.core.model import Actor
from gateway.core.screening import EntryKind

T = TypeVar("T")
BlindIndex = Callable[[str, str], bytes]
# A number's blind indexes under the past index keys (none once a rotation is done): rows not yet re-keyed.
PastBlindIndexes = Callable[[str, str], tuple[bytes, ...]]
LEAD_KINDS = frozenset({"HELD", "REFUSED"})
LEAD_ORIGINS = frozenset({"ACCEPTANCE", "RESCREEN", "REVIEW", "SCAN"})
LEAD_BATCH = 500
# The audit's name for how a call failed; the door's status table speaks gRPC, the audit speaks the core.
_OUTCOMES: tuple[tuple[type[DomainError], str], ...] = (
    (InvalidInput, "INVALID_INPUT"), (NotFound, "NOT_FOUND"), (PermissionDenied, "PERMISSION_DENIED"),
    (Unauthenticated, "UNAUTHENTICATED"), (StorageUnavailable, "UNAVAILABLE"), (WrongState, "WRONG_STATE"),
)


# The integers a JSON number holds exactly (RFC 8785 / I-JSON): the evidence log's canonical bytes take no other.
_JSON_SAFE_INT = 2**53 - 1


def storable(value: Any) -> Any:
    """What a call asked for, as the audit and the evidence log can keep it: a NUL (which no PostgreSQL text or
    jsonb value holds) becomes U+FFFD, and an integer beyond +-(2^53 - 1) (an old_size of -2^63) its decimal
    string, at any depth of lists and dicts; everything else is kept as it came."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _JSON_SAFE_INT:
        return str(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def outcome_of(error: DomainError) -> str:
    """The audit's status for a failed call."""
    return next((name for cls, name in _OUTCOMES if isinstance(error, cls)), "ERROR")


class InvestigationRepository(Protocol):
    """Reads shipments in full (numbers opened), histories and leads; writes and lists the audit."""

    async def search(self, query: SearchQuery) -> tuple[list[ShipmentFound], AsOf]: ...

    async def history(self, waybill_no: str) -> HistoryFound | None: ...

    async def leads_after(self, cursor: LeadCursor | None, filters: LeadFilters,
                          limit: int) -> list[LeadFound]: ...

    async def newest_lead(self) -> LeadCursor | None: ...

    async def audit(self, entry: AuditEntry) -> None: ...

    async def audit_page(self, query: AuditQuery) -> list[AuditFound]: ...


class LeadFeed(Protocol):
    """Wakes watchers when leads may have been added (a notification, or a short timeout)."""

    async def wait(self, timeout_s: float) -> None: ...


class InvestigationService:
    """SearchShipments, GetShipmentHistory, WatchLeads, ListAuditRecords, and the audit of each."""

    def __init__(self, repo: InvestigationRepository, feed: LeadFeed, *, blind_index: BlindIndex,
                 tokens: PageTokens, clock: Callable[[], datetime],
                 past_blind_indexes: PastBlindIndexes | None = None) -> None:
        self._repo = repo
        self._feed = feed
        self._blind_index = blind_index
        self._past = past_blind_indexes or (lambda context, value: ())
        self._tokens = tokens
        self._clock = clock

    async def audited(self, actor: Actor, method: str, case_no: str, filters: dict[str, Any],
                      work: Callable[[], Awaitable[T]], count: Callable[[T], tuple[int, tuple[str, ...]]]) -> T:
        """Runs one call and writes its audit record, whatever the outcome (the answer waits for the record)."""
        try:
            result = await work()
        except DomainError as error:
            await self._record(actor, method, case_no, filters, 0, outcome_of(error), ())
            raise
        returned, shipment_ids = count(result)
        await self._record(actor, method, case_no, filters, returned, "OK", shipment_ids)
        return result

    async def refused(self, actor: Actor, method: str, case_no: str, error: DomainError) -> None:
        """Audits a call the door refused (a principal without the role): the attempt is on record too."""
        await self._record(actor, method, case_no, {}, 0, outcome_of(error), ())

    async def _record(self, actor: Actor, method: str, case_no: str, filters: dict[str, Any], returned: int,
                      status: str, shipment_ids: tuple[str, ...]) -> None:
        principal = actor.principal
        await self._repo.audit(AuditEntry(principal.id or None, principal.name, method, storable(case_no[:64]),
                                          storable(filters), returned, status, shipment_ids))

    def query(self, f: SearchFilters, page_size: int, page_token: str) -> SearchQuery:
        """A search's filters as the keys storage looks up; InvalidInput naming each bad filter."""
        v = Violations()
        check_filters(v, f, page_size)
        v.raise_if_any()
        today = self._clock().date()
        document = screening_canonical(EntryKind.DOCUMENT_NUMBER, f.document_number, today=today,
                                       document_type=f.document_type)
        phone = screening_canonical(EntryKind.PHONE, f.phone, today=today)
        query = SearchQuery(
            document_key=self._blind_index(SEAL_CONTEXTS[EntryKind.DOCUMENT_NUMBER], document) if document else None,
            phone_key=self._blind_index(SEAL_CONTEXTS[EntryKind.PHONE], phone) if phone else None,
            document_past_keys=self._past(SEAL_CONTEXTS[EntryKind.DOCUMENT_NUMBER], document) if document else (),
            phone_past_keys=self._past(SEAL_CONTEXTS[EntryKind.PHONE], phone) if phone else (),
            name_keys=name_query_keys(f.name) if f.name.strip() else (), waybill_no=f.waybill_no.strip().upper(),
            origin_prefix=region_prefix(f.origin_region_code) if f.origin_region_code else "",
            destination_prefix=region_prefix(f.destination_region_code) if f.destination_region_code else "",
            from_time=f.from_time, to_time=f.to_time, flagged_only=f.flagged_only,
            limit=page_size or DEFAULT_PAGE,
        )
        if f.name.strip() and not query.name_keys:
            raise InvalidInput([FieldViolation("name", "has nothing a name can be compared by")])
        if page_token:
            query = replace(query, after=self._tokens.open(page_token, filters_digest(query)))
        return query

    async def search(self, case_no: str, f: SearchFilters, page_size: int, page_token: str,
                     actor: Actor) -> SearchPage:
        """A page of shipments matching every filter, newest first; audited."""
        method = "/courier.v1.Investigation/SearchShipments"
        try:
            require_case(case_no)
            query = self.query(f, page_size, page_token)
        except InvalidInput as error:
            await self._record(actor, method, case_no, {}, 0, outcome_of(error), ())
            raise
        return await self.audited(actor, method, case_no, query.audit_filters(), lambda: self._page(query),
                                  lambda page: (len(page.shipments), tuple(s.shipment_id for s in page.shipments)))

    async def _page(self, query: SearchQuery) -> SearchPage:
        found, as_of = await self._repo.search(query)
        more = len(found) > query.limit
        rows = tuple(found[:query.limit])
        token = self._tokens.issue((rows[-1].accepted_at, rows[-1].shipment_id), filters_digest(query)) \
            if more and rows else ""
        return SearchPage(rows, token, as_of)

    async def history(self, case_no: str, waybill_no: str, actor: Actor) -> HistoryFound:
        """One shipment and everything recorded about it; audited."""
        waybill_no = waybill_no.strip().upper()

        async def work() -> HistoryFound:
            v = Violations()
            check_case_no(v, case_no)
            v.text("waybill_no", waybill_no, max_len=32, required=True)
            v.raise_if_any()
            found = await self._repo.history(waybill_no)
            if found is None:
                raise NotFound(f"no shipment with waybill {waybill_no}", field="waybill_no")
            return found

        return await self.audited(actor, "/courier.v1.Investigation/GetShipmentHistory", case_no,
                                  {"waybill_no": waybill_no}, work, lambda h: (1, (h.shipment.shipment_id,)))

    async def watch(self, case_no: str, cursor: str, filters: LeadFilters, actor: Actor,
                    *, poll_s: float = 0.25) -> AsyncIterator[LeadFound]:
        """New leads as they happen, after the cursor given (or from now); audited when it opens and ends."""
        method = "/courier.v1.Investigation/WatchLeads"
        described = {"cursor": cursor, "regions": list(filters.region_prefixes), "kinds": list(filters.kinds),
                     "origins": list(filters.origins)}
        position, filters = await self.audited(actor, method, case_no, described,
                                               lambda: self._start(case_no, cursor, filters), lambda _: (0, ()))
        delivered = 0
        try:
            while True:
                found = await self._repo.leads_after(position, filters, LEAD_BATCH)
                for lead in found:
                    position = lead.cursor
                    delivered += 1
                    yield lead
                if not found:
                    await self._feed.wait(poll_s)
        finally:
            await self._record(actor, method, case_no, {"cursor": position.token() if position else ""},
                               delivered, "CLOSED", ())

    async def _start(self, case_no: str, cursor: str,
                     filters: LeadFilters) -> tuple[LeadCursor | None, LeadFilters]:
        v = Violations()
        check_case_no(v, case_no)
        if not set(filters.kinds) <= LEAD_KINDS:
            v.add("kinds", f"must be among {', '.join(sorted(LEAD_KINDS))}")
        if not set(filters.origins) <= LEAD_ORIGINS:
            v.add("origins", f"must be among {', '.join(sorted(LEAD_ORIGINS))}")
        for i, region in enumerate(filters.region_prefixes):
            if not (region.isdigit() and len(region) == 6):
                v.add(f"region_codes[{i}]", "must be a 6-digit division code")
        v.raise_if_any()
        position = LeadCursor.parse(cursor) if cursor else await self._repo.newest_lead()
        return position, replace(filters, region_prefixes=tuple(region_prefix(r) for r in filters.region_prefixes))

    async def audit_records(self, query: AuditQuery) -> list[AuditFound]:
        """A page of the audit, newest first (admins); InvalidInput for a page size out of range."""
        v = Violations()
        v.number("page_size", query.limit, lo=1, hi=1000)
        v.text("case_no", query.case_no, max_len=64)  # filters go to PostgreSQL: no NUL
        v.text("principal", query.principal, max_len=256)
        if query.from_time and query.to_time and query.to_time <= query.from_time:
            v.add("to_time", "must be after from_time")
        v.raise_if_any()
        return await self._repo.audit_page(query)


def lead_filters(region_codes: list[str], kinds: list[str], origins: list[str]) -> LeadFilters:
    """A watcher's filters as given (checked, and region codes turned into prefixes, when the watch opens)."""
    return LeadFilters(tuple(region_codes), tuple(k.upper() for k in kinds), tuple(o.upper() for o in origins))


class EvidenceCalls:
    """The evidence RPCs of the Investigation service, each audited like the rest."""

    def __init__(self, investigation: InvestigationService, evidence: EvidenceService, store: ExportStore,
                 case_shipments: Callable[[str], Awaitable[list[str]]], shipment_of: Callable[[str], Awaitable[
                     str | None]]) -> None:
        self._audit = investigation
        self._evidence = evidence
        self._store = store
        self._case_shipments = case_shipments
        self._shipment_of = shipment_of

    async def tree_head(self, case_no: str, fresh: bool, actor: Actor) -> Head:
        """The latest signed tree head, or a new one."""
        async def work() -> Head:
            require_case(case_no)
            return await self._evidence.tree_head(fresh)

        return await self._audit.audited(actor, "/courier.v1.Investigation/GetTreeHead", case_no, {"fresh": fresh},
                                         work, lambda _: (1, ()))

    async def inclusion(self, case_no: str, index: int, size: int, actor: Actor) -> tuple[Proven, Head]:
        """One leaf's record and proof against a signed head."""
        async def work() -> tuple[Proven, Head]:
            v = Violations()
            check_case_no(v, case_no)
            v.number("leaf_index", index, lo=0, hi=2**62)
            v.number("tree_size", size, lo=0, hi=2**62)
            v.raise_if_any()
            return await self._evidence.inclusion(index, size)

        return await self._audit.audited(actor, "/courier.v1.Investigation/GetInclusionProof", case_no,
                                         {"leaf_index": index, "tree_size": size}, work, lambda _: (1, ()))

    async def consistency(self, case_no: str, old: int, new: int,
                          actor: Actor) -> tuple[list[bytes], bytes, bytes, Head | None, int]:
        """The proof that the log of old leaves is a prefix of the log of new (0: the latest head's)."""
        async def work() -> tuple[list[bytes], bytes, bytes, Head | None, int]:
            v = Violations()
            check_case_no(v, case_no)
            v.number("old_size", old, lo=1, hi=2**62)
            v.number("new_size", new, lo=0, hi=2**62)
            v.raise_if_any()
            proof, old_root, new_root, head = await self._evidence.consistency(old, new)
            return proof, old_root, new_root, head, head.tree_size if head else new

        return await self._audit.audited(actor, "/courier.v1.Investigation/GetConsistencyProof", case_no,
                                         {"old_size": old, "new_size": new}, work, lambda _: (1, ()))

    async def export(self, case_no: str, waybill_no: str, actor: Actor) -> Export:
        """The evidence bundle of one shipment, or of the case (its shipments and audit records)."""
        waybill_no = waybill_no.strip().upper()

        async def work() -> Export:
            require_case(case_no)
            v = Violations()  # as GetShipmentHistory checks it: a NUL must not reach PostgreSQL
            v.text("waybill_no", waybill_no, max_len=32)
            v.raise_if_any()
            if waybill_no:
                found = await self._shipment_of(waybill_no)
                if found is None:
                    raise NotFound(f"no shipment with waybill {waybill_no}", field="waybill_no")
                ids = [found]
            else:
                ids = await self._case_shipments(case_no)
            scope = {"case_no": case_no, **({"waybill_no": waybill_no} if waybill_no else {})}
            return await export(self._evidence, self._store, shipment_ids=ids, case_no=case_no, scope=scope,
                                include_audit=not waybill_no)

        return await self._audit.audited(
            actor, "/courier.v1.Investigation/ExportEvidence", case_no, {"waybill_no": waybill_no}, work,
            lambda e: (e.records, tuple(dict.fromkeys(r["record"].get("shipment_id", "") for r in e.bundle["records"]
                                                      if r["record"].get("shipment_id")))))
