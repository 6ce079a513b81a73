"""What a scenario or a ceiling is, and the registry that finds them: one small file each.

A scenario file in bench/scenarios/ (a ceiling file in bench/ceilings/) defines a subclass of Scenario and
binds an instance to the module name SCENARIO. The harness calls `prepare` once, in its own process, and sends
the (picklable) plan it returns to every load-generator process; there `setup` runs once per process and `call`
runs for every request, with a call index `i` unique across all processes and phases of the run.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import grpc
    from rich.console import Console

    from bench.config import Config
    from bench.measure import Watched
    from bench.seed import SeedPlan
    from bench.stack import Stack
    from gateway.security.sealing import Sealer

SCENARIO_PACKAGE = "bench.scenarios"
CEILING_PACKAGE = "bench.ceilings"


class Exhausted(Exception):  # noqa: N818 - a signal, not an error: this worker has no more work for the phase
    """Raised by `call` when the scenario has no unused input left (e.g. every seeded parcel was stored)."""


class CallFailed(Exception):
    """A call that returned but answered wrongly; counted as an error under `code`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Target:
    """A goal printed next to the figures: metric (e.g. "ratio", "open.p99_ms") compared with a bound."""

    metric: str
    op: str  # ">=", ">", "<=" or "<"
    bound: float

    def met(self, value: float | None) -> bool | None:
        """True/False, or None when the metric was not measured."""
        if value is None:
            return None
        return {">=": value >= self.bound, ">": value > self.bound, "<=": value <= self.bound,
                "<": value < self.bound}[self.op]

    def label(self) -> str:
        """E.g. "ratio >= 0.6"."""
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass
class BenchContext:
    """What `prepare` may use, in the harness process."""

    dsn: str
    gateway_target: str
    echo_target: str
    token: str
    seed: SeedPlan | None
    run_tag: str
    quick: bool
    sealer: Sealer | None = None  # the gateway's keys, for scenarios that write sealed values themselves
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Worker:
    """One load-generator process's view: its channel (or database), the plan, its place among the workers."""

    index: int
    count: int
    plan: dict[str, Any]
    metadata: tuple[tuple[str, str], ...]
    timeout_s: float
    dsn: str = ""
    channel: grpc.aio.Channel | None = None


class Harness(Protocol):
    """What a self-measured scenario may use of the run (bench.runner.Run implements it)."""

    cfg: Config
    stack: Stack
    console: Console

    async def phases(self, scenario: Scenario, package: str, *, target: str, watched: Watched,
                     plan: dict[str, Any], dsn: str, token: str) -> dict[str, Any]:
        """Closed loop, then open loop at a fraction of its rate, of `scenario` against another server."""
        ...

    def add_targets(self, name: str, targets: tuple[Target, ...]) -> None:
        """Targets for an extra result entry (one a self-measured scenario adds under its own name)."""
        ...

    def watch(self, server_pid: int, server_pids: tuple[int, ...] = ()) -> Watched:
        """The processes a phase against another server process (e.g. a second gateway) watches; server_pids: every
        process serving, when several do (each one's CPU is reported)."""
        ...


class Scenario:
    """Base of every scenario and ceiling; subclasses set the class attributes and implement `call`.

    A scenario whose figure is not a stream of calls (e.g. in-process timing) sets `self_measured` and implements
    `measure_self` instead: the harness runs no load-generator phase for it and reports the entries it returns.
    """

    name: ClassVar[str] = ""
    ceiling: ClassVar[str | None] = None  # the ceiling key this is reported against
    floor: ClassVar[str | None] = None  # the floor ceiling whose CPU per call this one's is a multiple of
    server: ClassVar[str] = "gateway"  # whose process is measured: "gateway", "echo" or "postgres"
    unit: ClassVar[str] = "calls"  # what a call moves, for the figures: calls, messages, rows
    units_per_call: ClassVar[int] = 1
    open_loop: ClassVar[bool] = True  # also measure latency at half the maximum rate
    concurrency: ClassVar[int | None] = None  # calls in flight in closed loop; None: the run's --concurrency
    workers: ClassVar[int | None] = None  # load generators that make calls (the rest sit out); None: all
    needs_seed: ClassVar[bool] = False  # reads seeded shipments: the run refuses --seed-shipments 0
    targets: ClassVar[tuple[Target, ...]] = ()
    description: ClassVar[str] = ""
    order: ClassVar[int] = 100  # place in a run that names no scenarios (then every one runs, by order and name)
    self_measured: ClassVar[bool] = False  # measures itself in `measure_self`, not through the load generators

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        """Runs once in the harness before the first phase; returns the plan sent to every worker."""
        return {}

    async def setup(self, worker: Worker) -> Any:
        """Runs once per load-generator process; returns the state handed to `call`."""
        return worker

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        """One request; may return named sub-latencies in seconds (e.g. {"AcceptParcel": 0.004})."""
        raise NotImplementedError

    async def teardown(self, state: Any) -> None:
        """Runs once per load-generator process after a phase."""

    async def cleanup(self, ctx: BenchContext) -> None:
        """Runs once in the harness after the last phase."""

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        """A self-measured scenario's whole measurement, in the harness: its result entries, its own first.

        Each entry has at least name, kind ("scenario"), ceiling, server and description; figures are free-form
        (targets read them by dotted path), and an optional "details" list of [label, text] rows is printed.
        """
        raise NotImplementedError


def discover(package: str) -> dict[str, Scenario]:
    """Every SCENARIO of the package's modules, by name, in file-name order."""
    pkg = importlib.import_module(package)
    found: dict[str, Scenario] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            found[scenario.name] = scenario
    return found


def load(package: str, name: str) -> Scenario:
    """One scenario by name, importing only its module (load generators need no other)."""
    module = importlib.import_module(f"{package}.{name}")
    scenario = module.SCENARIO
    assert isinstance(scenario, Scenario) and scenario.name == name, f"{package}.{name} must define SCENARIO"
    return scenario
