"""The per-RPC role table (API.md): who may call what."""

from __future__ import annotations

from gateway.core.model import Role

T, S, R, INV, A = Role.TERMINAL, Role.SCANNER, Role.REVIEWER, Role.INVESTIGATOR, Role.ADMIN
# The per-RPC role table (API.md). A method that is not listed here is closed to everyone.
ROLE_TABLE: dict[str, frozenset[Role]] = {
    "/courier.v1.Acceptance/VerifySender": frozenset({T}),
    "/courier.v1.Acceptance/AcceptParcel": frozenset({T}),
    "/courier.v1.Acceptance/RegisterContractCustomer": frozenset({A}),
    "/courier.v1.Custody/StoreParcel": frozenset({T, S}),
    "/courier.v1.Custody/DispatchParcel": frozenset({T, S}),
    "/courier.v1.Custody/GetParcel": frozenset({T, S, R}),
    "/courier.v1.Custody/ReleaseHold": frozenset({R}),
    "/courier.v1.Custody/ConfirmHold": frozenset({R}),
    "/courier.v1.Custody/RefuseParcel": frozenset({R}),
    "/courier.v1.Blocklist/AddEntry": frozenset({R, A}),
    "/courier.v1.Blocklist/RetireEntry": frozenset({R, A}),
    "/courier.v1.Blocklist/GetEntry": frozenset({R, A}),
    "/courier.v1.Blocklist/ListEntries": frozenset({R, A}),
    "/courier.v1.Blocklist/ImportEntries": frozenset({R, A}),
    "/courier.v1.Blocklist/Screen": frozenset({R, A}),
    "/courier.v1.Inspection/RecordInspection": frozenset({T, S}),
    "/courier.v1.Inspection/StreamScans": frozenset({S}),
    "/courier.v1.Investigation/SearchShipments": frozenset({INV}),
    "/courier.v1.Investigation/GetShipmentHistory": frozenset({INV}),
    "/courier.v1.Investigation/WatchLeads": frozenset({INV}),
    "/courier.v1.Investigation/ExportEvidence": frozenset({INV}),
    "/courier.v1.Investigation/GetConsistencyProof": frozenset({INV}),
    "/courier.v1.Investigation/GetTreeHead": frozenset({INV}),
    "/courier.v1.Investigation/GetInclusionProof": frozenset({INV}),
    "/courier.v1.Investigation/ListAuditRecords": frozenset({A}),
}
# Calls the door refuses on these services are audited too (who tried, which case they named).
AUDITED_PREFIXES = ("/courier.v1.Investigation/",)
