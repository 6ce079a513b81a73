"""The role table at the door: every RPC, every role, no token and a bad token."""

from __future__ import annotations

import itertools

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from courier.v1 import acceptance_pb2, blocklist_pb2, custody_pb2, inspection_pb2, investigation_pb2
from gateway.core.model import Role
from gateway.server import ROLE_TABLE

# method -> (stub attribute, rpc name, an empty request)
CALLS = {
    "/courier.v1.Acceptance/VerifySender": ("acceptance", "VerifySender", acceptance_pb2.VerifySenderRequest()),
    "/courier.v1.Acceptance/AcceptParcel": ("acceptance", "AcceptParcel", acceptance_pb2.AcceptParcelRequest()),
    "/courier.v1.Acceptance/RegisterContractCustomer": (
        "acceptance", "RegisterContractCustomer", acceptance_pb2.RegisterContractCustomerRequest()),
    "/courier.v1.Custody/StoreParcel": ("custody", "StoreParcel", custody_pb2.CustodyMoveRequest()),
    "/courier.v1.Custody/DispatchParcel": ("custody", "DispatchParcel", custody_pb2.CustodyMoveRequest()),
    "/courier.v1.Custody/GetParcel": ("custody", "GetParcel", custody_pb2.GetParcelRequest()),
    "/courier.v1.Custody/ReleaseHold": ("custody", "ReleaseHold", custody_pb2.ReviewDecisionRequest()),
    "/courier.v1.Custody/ConfirmHold": ("custody", "ConfirmHold", custody_pb2.ReviewDecisionRequest()),
    "/courier.v1.Custody/RefuseParcel": ("custody", "RefuseParcel", custody_pb2.ReviewDecisionRequest()),
    "/courier.v1.Blocklist/AddEntry": ("blocklist", "AddEntry", blocklist_pb2.AddEntryRequest()),
    "/courier.v1.Blocklist/RetireEntry": ("blocklist", "RetireEntry", blocklist_pb2.RetireEntryRequest()),
    "/courier.v1.Blocklist/GetEntry": ("blocklist", "GetEntry", blocklist_pb2.GetEntryRequest()),
    "/courier.v1.Blocklist/ListEntries": ("blocklist", "ListEntries", blocklist_pb2.ListEntriesRequest(page_size=-1)),
    "/courier.v1.Blocklist/Screen": ("blocklist", "Screen", blocklist_pb2.ScreenRequest()),
    "/courier.v1.Inspection/RecordInspection": (
        "inspection", "RecordInspection", inspection_pb2.InspectionRecord()),
    "/courier.v1.Investigation/SearchShipments": (
        "investigation", "SearchShipments", investigation_pb2.SearchRequest()),
    "/courier.v1.Investigation/GetShipmentHistory": (
        "investigation", "GetShipmentHistory", investigation_pb2.GetShipmentHistoryRequest()),
    "/courier.v1.Investigation/ExportEvidence": (
        "investigation", "ExportEvidence", investigation_pb2.ExportEvidenceRequest()),
    "/courier.v1.Investigation/GetConsistencyProof": (
        "investigation", "GetConsistencyProof", investigation_pb2.GetConsistencyProofRequest()),
    "/courier.v1.Investigation/GetTreeHead": ("investigation", "GetTreeHead", investigation_pb2.GetTreeHeadRequest()),
    "/courier.v1.Investigation/GetInclusionProof": (
        "investigation", "GetInclusionProof", investigation_pb2.GetInclusionProofRequest()),
    "/courier.v1.Investigation/ListAuditRecords": (
        "investigation", "ListAuditRecords", investigation_pb2.ListAuditRecordsRequest(page_size=-1)),
}
CASES = [(method, role) for method in CALLS for role in Role]


def test_every_served_method_is_in_the_table() -> None:
    # The streams' role checks are the same table entries, exercised in test_blocklist_api and test_inspection.
    streams = {"/courier.v1.Blocklist/ImportEntries", "/courier.v1.Inspection/StreamScans",
               "/courier.v1.Investigation/WatchLeads"}
    assert set(CALLS) | streams == set(ROLE_TABLE)


async def _code(gw, method: str, metadata) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    stub, rpc, request = CALLS[method]
    try:
        await getattr(getattr(gw, stub), rpc)(request, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(("method", "role"), CASES, ids=[f"{m.rsplit('/', 1)[1]}-{r.value}" for m, r in CASES])
async def test_role_table(gateway, method: str, role: Role) -> None:  # type: ignore[no-untyped-def]
    code = await _code(gateway, method, gateway.md(role))
    if role in ROLE_TABLE[method]:
        # Allowed in: the empty request is then answered on its merits (mostly bad fields), never at the door.
        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", list(CALLS))
async def test_no_token_or_bad_token_is_unauthenticated(gateway, method: str) -> None:  # type: ignore[no-untyped-def]
    assert await _code(gateway, method, ()) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(gateway, method, (("authorization", "Bearer cgw_nope"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(gateway, method, (("authorization", "Basic abc"),)) == grpc.StatusCode.UNAUTHENTICATED


async def test_revoked_token_is_unauthenticated(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(gateway.settings.database_url, min_size=1, max_size=1)
    assert await PrincipalRepository(pool).revoke_all("test-terminal") == 1
    await pool.close()
    code = await _code(gateway, "/courier.v1.Custody/GetParcel", gateway.md(Role.TERMINAL))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_need_no_token(gateway) -> None:  # type: ignore[no-untyped-def]
    health = health_pb2_grpc.HealthStub(gateway.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="courier.v1.Acceptance"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(gateway.channel)

    async def ask():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(ask()):
        names = {s.name for s in reply.list_services_response.service}
        assert {"courier.v1.Acceptance", "courier.v1.Custody", "grpc.health.v1.Health"} <= names
        break


# Every served method (the streams included, from the descriptors) against principals holding one role, every
# pair of roles, and no role this gateway knows (a role a newer version wrote into principals.roles; an
# empty role list the table's CHECK refuses).
PRINCIPALS = [frozenset({r}) for r in Role] + [frozenset(p) for p in itertools.combinations(Role, 2)] \
    + [frozenset()]


async def _token_for(gw, roles: frozenset[Role]) -> str:  # type: ignore[no-untyped-def]
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    name = "test-" + ("+".join(sorted(r.value for r in roles)) or "no-role")
    pool = await create_pool(gw.settings.database_url, min_size=1, max_size=1)
    try:
        token = (await PrincipalRepository(pool).create_token(name, roles or frozenset({Role.TERMINAL})))[1]
        if not roles:
            await pool.execute("UPDATE principals SET roles = '{auditor}' WHERE name = $1", name)
        return token
    finally:
        await pool.close()


async def test_every_method_for_every_principal(gateway) -> None:  # type: ignore[no-untyped-def]
    # One gateway for all 16 principals x every method: the cases are calls, not gateways to start.
    from google.protobuf.message_factory import GetMessageClass

    from tests.fuzz.rpc import path_of, send, served_methods

    methods = served_methods()
    assert {path_of(m) for m in methods} == set(ROLE_TABLE)
    for roles in PRINCIPALS:
        metadata = (("authorization", f"Bearer {await _token_for(gateway, roles)}"),)
        who = "+".join(sorted(r.value for r in roles)) or "no-role"
        for method in methods:
            path = path_of(method)
            empty = GetMessageClass(method.input_type)().SerializeToString()
            answer = await send(gateway.channel, method, [] if method.client_streaming else [empty], metadata)
            if roles & ROLE_TABLE[path]:
                # The handler ran: an empty stream or request is answered on its merits, with the bad fields
                # named (only the core names fields of an empty request), or it is OK.
                assert answer.code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (who, path,
                                                                                              answer.describe())
                assert answer.code == grpc.StatusCode.OK or answer.violations, (who, path, answer.describe())
            else:
                assert answer.code == grpc.StatusCode.PERMISSION_DENIED, (who, path, answer.describe())
