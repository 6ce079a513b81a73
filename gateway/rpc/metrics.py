"""The gateway's Prometheus metrics: calls, latency, decisions and screening hits (counted at the door, from the
answers), the database pools (read at each scrape), and the metrics server itself.

Counted from the answers the door sends, so the core stays free of Prometheus and a replayed answer (same
idempotency key or event id) is not counted twice. Children are bound once per label value and cached, so the
hot path is a dict look-up and an increment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from google.protobuf.descriptor import EnumDescriptor
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from courier.v1 import acceptance_pb2, common_pb2, inspection_pb2

CALLS = Counter("gateway_rpc_total", "RPCs answered", ["method", "code"])
LATENCY = Histogram("gateway_rpc_seconds", "RPC latency", ["method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
DECISIONS = Counter("gateway_decisions_total", "Decisions answered (not replays), by RPC and outcome",
                    ["rpc", "outcome"])
HITS = Counter("gateway_screening_hits_total", "Screening hits answered (acceptance and scans), by kind and action",
               ["kind", "action"])


def _names(enum: EnumDescriptor) -> dict[int, str]:
    """Enum numbers to their names without the type's prefix (ACCEPT_DECISION_HELD -> HELD)."""
    prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
    return {n: v.name.removeprefix(prefix) for n, v in enum.values_by_number.items()}


_VERDICTS = _names(acceptance_pb2.Verdict.DESCRIPTOR)
_ACCEPTS = _names(acceptance_pb2.AcceptDecision.DESCRIPTOR)
_ROUTES = _names(inspection_pb2.RoutingDecision.DESCRIPTOR)
_ACTIONS = _names(common_pb2.ScreeningOutcome.DESCRIPTOR)


class _Outcomes:
    """Counts one RPC's decisions (and the hits its answers carry), with children bound once per value."""

    def __init__(self, rpc: str, names: Mapping[int, str], decision: Callable[[Any], Any],
                 hits: Callable[[Any], Any] | None) -> None:
        self._rpc, self._names, self._decision, self._hits = rpc, names, decision, hits
        self._children: dict[int, Any] = {}

    def __call__(self, response: Any) -> None:
        if getattr(response, "replayed", False):
            return
        value = int(self._decision(response))
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = DECISIONS.labels(self._rpc, self._names.get(value, str(value)))
        child.inc()
        if self._hits is not None:
            for hit in self._hits(response):
                _hit(hit.kind, int(hit.action)).inc()


_hit_children: dict[tuple[str, int], Any] = {}


def _hit(kind: str, action: int) -> Any:
    child = _hit_children.get((kind, action))
    if child is None:
        child = _hit_children[(kind, action)] = HITS.labels(kind or "UNKNOWN", _ACTIONS.get(action, str(action)))
    return child


# method -> what its answers say; one observer per method, used by the interceptor for each answer it sends.
OBSERVERS: dict[str, Callable[[Any], None]] = {
    "/courier.v1.Acceptance/VerifySender": _Outcomes("VerifySender", _VERDICTS, lambda r: r.verdict, None),
    "/courier.v1.Acceptance/AcceptParcel": _Outcomes("AcceptParcel", _ACCEPTS, lambda r: r.decision,
                                                     lambda r: r.hits),
    "/courier.v1.Inspection/StreamScans": _Outcomes("StreamScans", _ROUTES, lambda r: r.decision, lambda r: r.hits),
    "/courier.v1.Inspection/RecordInspection": _Outcomes("RecordInspection", _ROUTES, lambda r: r.ack.decision,
                                                         lambda r: r.ack.hits),
}


class PoolCollector(Collector):
    """gateway_db_pool_connections{pool, state}: each registered asyncpg pool's open, idle and most connections."""

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()  # scrapes run on the metrics server's thread

    def register(self, name: str, pool: Any) -> None:
        """Reports this pool under name (a second pool of the same name replaces the first)."""
        with self._lock:
            self._pools[name] = pool

    def unregister(self, name: str, pool: Any) -> None:
        """Stops reporting the pool, if it is still the one under name."""
        with self._lock:
            if self._pools.get(name) is pool:
                del self._pools[name]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge family, three samples per pool."""
        family = GaugeMetricFamily("gateway_db_pool_connections",
                                   "Database pool connections: open (size), idle, and the most it opens (max)",
                                   labels=["pool", "state"])
        with self._lock:
            pools = list(self._pools.items())
        for name, pool in pools:
            if pool.is_closing():
                continue
            family.add_metric([name, "size"], pool.get_size())
            family.add_metric([name, "idle"], pool.get_idle_size())
            family.add_metric([name, "max"], pool.get_max_size())
        yield family


POOLS = PoolCollector()
REGISTRY.register(POOLS)


class MetricsPortError(OSError):
    """The metrics server cannot listen where METRICS_PORT (and the process index) say."""


def metrics_port(base: int, process_index: int = 0) -> int:
    """The port process number process_index of a multi-process gateway serves metrics on: METRICS_PORT + index."""
    return base + process_index if base else 0


def start_metrics(port: int, host: str, process_index: int = 0) -> int:
    """Serves /metrics on host:(port + process_index) in a daemon thread; answers the port, 0 when off.

    Each process of a multi-process gateway has its own registry, so each serves its own port: process 0 on
    METRICS_PORT, process 1 on METRICS_PORT + 1, and so on (scrape them all; sum by label in PromQL).
    Raises MetricsPortError naming METRICS_PORT when the port is taken."""
    from prometheus_client import start_http_server

    chosen = metrics_port(port, process_index)
    if not chosen:
        return 0
    if chosen > 65535:
        raise MetricsPortError(f"METRICS_PORT: {port} + process {process_index} is past port 65535")
    try:
        start_http_server(chosen, addr=host or "0.0.0.0")
    except OSError as exc:
        where = f" (METRICS_PORT {port} + process {process_index})" if process_index else ""
        raise MetricsPortError(f"METRICS_PORT: cannot listen on {host}:{chosen}{where}: {exc.strerror}") from None
    return chosen
