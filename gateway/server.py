"""Builds the whole object graph in one function and serves it until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from courier.v1 import (
    acceptance_pb2,
    acceptance_pb2_grpc,
    blocklist_pb2,
    blocklist_pb2_grpc,
    custody_pb2,
    custody_pb2_grpc,
    inspection_pb2,
    inspection_pb2_grpc,
    investigation_pb2,
    investigation_pb2_grpc,
)
from gateway.adapters.identity_authority import HttpIdentityAuthority
from gateway.core.acceptance import AcceptanceService
from gateway.core.authority import IdentityAuthority
from gateway.core.blocklist_service import BlocklistService
from gateway.core.custody import CustodyService
from gateway.core.customers import CustomerService
from gateway.core.errors import PermissionDenied
from gateway.core.evidence_service import EvidenceService, Signer
from gateway.core.inspection import WeightPolicy
from gateway.core.inspection_service import InspectionService
from gateway.core.investigation import PageTokens
from gateway.core.investigation_service import EvidenceCalls, InvestigationService
from gateway.core.model import Actor, Principal, Role
from gateway.core.verification import VerificationService
from gateway.live.blocklist import LiveBlocklist
from gateway.live.evidence import EvidenceAppender
from gateway.live.leads import LeadListener
from gateway.live.partitions import PartitionUpkeep
from gateway.live.rescreen import Rescreener
from gateway.live.revocations import RevocationListener
from gateway.live.screener import AcceptanceScreener, ScanImageScreener
from gateway.rpc.interceptor import GatewayInterceptor
from gateway.rpc.limits import DoorLimits
from gateway.rpc.metrics import POOLS, MetricsPortError, start_metrics
from gateway.rpc.reflection import enable_reflection
from gateway.rpc.roles import AUDITED_PREFIXES, ROLE_TABLE
from gateway.rpc.servicers.acceptance import AcceptanceServicer
from gateway.rpc.servicers.blocklist import BlocklistServicer
from gateway.rpc.servicers.custody import CustodyServicer
from gateway.rpc.servicers.inspection import InspectionServicer
from gateway.rpc.servicers.investigation import InvestigationServicer
from gateway.rpc.tokens import TokenCache
from gateway.security.sealing import sealer_of
from gateway.security.tls import TLSSettingError, describe, server_tls
from gateway.settings import Settings
from gateway.storage.blobs import BlobStore
from gateway.storage.blocklist import BlocklistRepository
from gateway.storage.db import create_pool
from gateway.storage.evidence import EvidenceRepository
from gateway.storage.investigation import InvestigationRepository
from gateway.storage.principals import PrincipalRepository
from gateway.storage.replica import ReadPool, open_replica
from gateway.storage.scans import ScanRepository
from gateway.storage.shipments import ShipmentRepository
from gateway.storage.verifications import VerificationRepository

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    acceptance_pb2.DESCRIPTOR.services_by_name["Acceptance"].full_name,
    custody_pb2.DESCRIPTOR.services_by_name["Custody"].full_name,
    blocklist_pb2.DESCRIPTOR.services_by_name["Blocklist"].full_name,
    inspection_pb2.DESCRIPTOR.services_by_name["Inspection"].full_name,
    investigation_pb2.DESCRIPTOR.services_by_name["Investigation"].full_name,
)


def utc_now() -> datetime:
    """The clock the core is given."""
    return datetime.now(UTC)


@dataclass
class Gateway:
    """A built gateway: the server and what must be closed with it."""

    server: grpc.aio.Server
    port: int
    pool: asyncpg.Pool
    health: health.aio.HealthServicer
    # What runs beside the server (the live list, re-screening, listeners, the authority's client), closed in
    # the reverse order of their start once the server has stopped.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    live: LiveBlocklist | None = None
    replica: asyncpg.Pool | None = None  # DATABASE_REPLICA_URL's pool, for Investigation's reads

    async def stop(self, grace: float | None) -> None:
        """Stops accepting, lets in-flight calls finish within grace, then closes the rest and the pool."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for close in reversed(self.closers):
            await close()
        POOLS.unregister("primary", self.pool)
        await self.pool.close()
        if self.replica is not None:
            POOLS.unregister("replica", self.replica)
            await self.replica.close()


def _signer(settings: Settings) -> Signer | None:
    if not settings.evidence_signing_key:
        log.warning("EVIDENCE_SIGNING_KEY is not set: the evidence log is kept, but no tree head is signed")
        return None
    return Signer(settings.evidence_key_name, Ed25519PrivateKey.from_private_bytes(settings.evidence_signing_key))


def _authority(settings: Settings) -> IdentityAuthority | None:
    if not settings.identity_authority_url:
        return None
    return HttpIdentityAuthority(settings.identity_authority_url, settings.identity_authority_key,
                                 timeout_s=settings.identity_authority_timeout_s)


class ListenError(OSError):
    """The gateway cannot listen where GATEWAY_LISTEN says (the port is taken, the address is not local)."""


def check_listen(listen: str, *, shared: bool = False) -> None:
    """Raises ListenError if HOST:PORT cannot be bound, before anything is started (port 0 always can).

    shared: as a worker of GATEWAY_PROCESSES binds, beside the others on the same port (SO_REUSEPORT).
    """
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"GATEWAY_LISTEN: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As gRPC binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ListenError(f"GATEWAY_LISTEN: cannot listen on {listen}: {exc.strerror}") from None


@dataclass
class _Parts:
    """What the servicers are built from, and what the Gateway must close."""

    live: LiveBlocklist
    closers: list[Callable[[], Awaitable[None]]]
    servicers: list[tuple[Callable[[Any, grpc.aio.Server], None], Any]]
    investigation: InvestigationService


async def _build(settings: Settings, pool: asyncpg.Pool, replica: asyncpg.Pool | None = None) -> _Parts:
    """Repositories, the live list, the core services and their servicers."""
    sealer = sealer_of(settings)
    principals = PrincipalRepository(pool)
    verifications = VerificationRepository(
        pool, sealer, max_batch=settings.group_commit_max,
        pattern_window=timedelta(seconds=settings.sender_pattern_window_s))
    blobs = BlobStore(Path(settings.blob_store_dir), max_bytes=settings.blob_max_bytes)
    shipments = ShipmentRepository(pool, sealer, blobs, max_batch=settings.group_commit_max)
    blocklist = BlocklistRepository(pool, sealer)
    live = LiveBlocklist(blocklist, settings.database_url, poll_s=settings.blocklist_poll_s)
    await live.start()
    closers: list[Callable[[], Awaitable[None]]] = [live.close]
    custody = CustodyService(shipments)
    system = await principals.system_principal("system:rescreen", frozenset({Role.REVIEWER}))
    rescreener = Rescreener(pool, blocklist, custody, Actor(system), poll_s=settings.blocklist_poll_s)
    live.on_added = rescreener.wake
    rescreener.start()
    closers.append(rescreener.close)
    authority = _authority(settings)
    if authority is not None:
        closers.append(authority.aclose)
    leads = LeadListener(settings.database_url)
    await leads.start()
    closers.append(leads.close)
    investigation_repo = InvestigationRepository(pool, sealer, ReadPool(pool, replica))
    investigation = InvestigationService(
        investigation_repo, leads, blind_index=sealer.blind_index, clock=utc_now,
        past_blind_indexes=lambda context, value: sealer.blind_indexes(context, value)[1:],
        tokens=PageTokens(sealer.derive_key("investigation page tokens")))
    evidence_repo = EvidenceRepository(pool)
    evidence = EvidenceService(evidence_repo, _signer(settings), origin=settings.evidence_origin,
                               past_keys=settings.evidence_past_keys, clock=utc_now)
    appender = EvidenceAppender(pool, evidence_repo, evidence, interval_s=settings.evidence_append_s,
                                head_interval_s=settings.evidence_head_interval_s)
    if settings.evidence_append_s > 0:  # 0: this process appends nothing (another does, or a baseline measures)
        appender.start()
        closers.append(appender.close)
    upkeep = PartitionUpkeep(pool, settings.partition_months_ahead)  # the months ahead partitioned, then daily
    await upkeep.start()
    closers.append(upkeep.close)
    evidence_calls = EvidenceCalls(investigation, evidence, evidence_repo, investigation_repo.case_shipments,
                                   evidence_repo.shipment_of)
    ttl = timedelta(seconds=settings.sender_ref_ttl_s)
    scans = ScanRepository(pool, WeightPolicy(settings.weight_mismatch_share, settings.weight_mismatch_g))
    servicers: list[tuple[Callable[[Any, grpc.aio.Server], None], Any]] = [
        (acceptance_pb2_grpc.add_AcceptanceServicer_to_server, AcceptanceServicer(
            VerificationService(verifications, authority, clock=utc_now, ref_ttl=ttl),
            CustomerService(verifications, clock=utc_now),
            AcceptanceService(shipments, verifications, clock=utc_now, screener=AcceptanceScreener(live, sealer)))),
        (custody_pb2_grpc.add_CustodyServicer_to_server, CustodyServicer(custody)),
        (blocklist_pb2_grpc.add_BlocklistServicer_to_server, BlocklistServicer(
            BlocklistService(blocklist, live, clock=utc_now, blind_index=sealer.blind_index))),
        (inspection_pb2_grpc.add_InspectionServicer_to_server, InspectionServicer(
            InspectionService(scans, blobs, ScanImageScreener(live), max_image_bytes=settings.blob_max_bytes))),
        (investigation_pb2_grpc.add_InvestigationServicer_to_server,
         InvestigationServicer(investigation, evidence_calls, evidence.verifier_keys)),
    ]
    return _Parts(live, closers, servicers, investigation)


async def create_server(settings: Settings) -> Gateway:
    """Builds the object graph: pool, repositories, live blocklist, core services, servicers, server."""
    check_listen(settings.listen, shared=settings.processes > 1)
    pool = await create_pool(settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                             connect_timeout_s=settings.db_connect_timeout_s,
                             acquire_timeout_s=settings.db_acquire_timeout_s,
                             command_timeout_s=settings.db_command_timeout_s)
    POOLS.register("primary", pool)  # gateway_db_pool_connections{pool="primary"}
    replica = None
    if settings.database_replica_url:
        replica = await open_replica(settings.database_replica_url, min_size=settings.db_pool_min,
                                     max_size=settings.db_pool_max, connect_timeout_s=settings.db_connect_timeout_s,
                                     acquire_timeout_s=settings.db_acquire_timeout_s,
                                     command_timeout_s=settings.db_command_timeout_s)
        POOLS.register("replica", replica)
    parts = await _build(settings, pool, replica)
    tokens = TokenCache(PrincipalRepository(pool).by_token_hash, settings.token_cache_ttl_s)
    revocations = RevocationListener(tokens, settings.database_url)  # a revoked token stops at once
    await revocations.start()
    parts.closers.append(revocations.close)
    limits = DoorLimits.from_settings(settings.rate_limits, settings.max_streams_per_principal)
    options = [("grpc.max_receive_message_length", settings.max_message_bytes),
               ("grpc.max_send_message_length", settings.max_message_bytes),
               # Only GATEWAY_PROCESSES' workers share their port; one gateway alone refuses a taken one.
               ("grpc.so_reuseport", 1 if settings.processes > 1 else 0)]
    async def refused(principal: Principal, method: str, request: Any, error: PermissionDenied) -> None:
        await parts.investigation.refused(Actor(principal), method, getattr(request, "case_no", ""), error)

    interceptor = GatewayInterceptor(tokens, ROLE_TABLE, on_refused=refused, audited_prefixes=AUDITED_PREFIXES,
                                     limits=limits)
    server = grpc.aio.server(options=options)
    door = interceptor.door(server)  # every service is added through the door, reflection and health too
    for add, servicer in parts.servicers:
        add(servicer, door)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, door)
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection((*SERVICE_NAMES, health.SERVICE_NAME), door)
    gateway = Gateway(server, 0, pool, health_servicer, parts.closers, parts.live, replica)
    try:
        transport = server_tls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        gateway.port = (server.add_secure_port(settings.listen, transport.credentials()) if transport
                        else server.add_insecure_port(settings.listen))
    except TLSSettingError as exc:  # a file changed or went since the settings were read
        await gateway.stop(0)
        raise ListenError(str(exc)) from None
    except RuntimeError:
        pass
    if gateway.port == 0:
        await gateway.stop(0)
        raise ListenError(f"GATEWAY_LISTEN: cannot listen on {settings.listen}")
    return gateway


async def serve(settings: Settings) -> None:
    """Runs the gateway until SIGINT or SIGTERM, then shuts it down gracefully."""
    host = settings.listen.rpartition(":")[0]
    try:  # before anything else starts, so a taken METRICS_PORT stops the gateway at once (exit 2)
        metrics = start_metrics(settings.metrics_port, host.strip("[]"), settings.process_index)
    except MetricsPortError as exc:
        raise ListenError(str(exc)) from None
    gateway = await create_server(settings)
    await gateway.server.start()
    print(f"gateway listening on {host}:{gateway.port}", flush=True)
    if metrics:
        print(f"metrics on http://{host}:{metrics}/metrics", flush=True)
    # The transport on a line of its own, after the lines that scripts read (one ends with HOST:PORT).
    print(f"gateway transport: {describe(settings.tls_cert, settings.tls_client_ca, settings.listen)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: in-flight calls have %.0f s", settings.shutdown_grace_s)
    await gateway.stop(settings.shutdown_grace_s)
    print("gateway stopped", flush=True)
