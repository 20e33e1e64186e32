"""The probe contract: a probe makes clients, and a client takes one sample.

The open-loop scheduling, deadlines and history recording are the harness's job
(`drills.openloop`); a probe only says how to take one sample and what it found. Probe kinds
live outside the core (the `probes` package, or any installed distribution): each registers
its class in `PROBES` and is declared as a `drills.probes` entry point.
"""

from __future__ import annotations

import selectors
import time
from abc import ABC, abstractmethod
from collections.abc import Generator
from typing import ClassVar, NamedTuple, TypeVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drills.durations import Duration, Ratio
from drills.history import Outcome
from drills.model import StrictModel
from drills.registry import Registry

MIN_INTERVAL_S = 0.010


class ProbeObjectivesConfig(StrictModel):
    """Objectives judged on this probe's own samples, besides the scenario's objectives,
    which judge the service probe."""

    rto: Duration | None = Field(None, description="this probe's recovery time objective")
    availability: Ratio | None = Field(None, description="this probe's availability objective")

    @model_validator(mode="after")
    def _something(self) -> ProbeObjectivesConfig:
        if self.rto is None and self.availability is None:
            raise ValueError("give rto, availability or both")
        return self


class ProbeConfig(StrictModel):
    kind: str
    interval: Duration = Field(0.1, description="time between samples (open loop)")
    timeout: Duration = Field(1.0, description="a sample not done by then is not ok")
    slow: Duration | None = Field(None, description="an ok slower than this counts as down")
    connections: int = Field(4, ge=1, le=64, description="samples in flight at most")
    objectives: ProbeObjectivesConfig | None = Field(
        None, description="judge this probe's RTO and availability too"
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < MIN_INTERVAL_S:
            raise ValueError(f"interval must be at least {MIN_INTERVAL_S * 1000:.0f}ms")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be positive")
        return value

    @field_validator("slow")
    @classmethod
    def _slow(cls, value: float | None, info: ValidationInfo) -> float | None:
        timeout = info.data.get("timeout")
        if value is not None and timeout is not None and value > timeout:
            raise ValueError(f"slow must not exceed timeout ({timeout:g}s)")
        return value

    @property
    def slow_s(self) -> float:
        """Default: a quarter of a second, or the timeout if that is shorter."""
        return self.slow if self.slow is not None else min(self.timeout, 0.25)


class Sample(NamedTuple):
    """What one sample found; `values` carries figures such as replication lag, `tags` facts
    such as the site that served it (`site`) and the database that committed it (`db`)."""

    outcome: Outcome
    detail: str = ""
    values: dict[str, float] | None = None
    tags: dict[str, str] | None = None


class Client(ABC):
    """One connection's worth of probe state, used by one worker thread at a time."""

    @abstractmethod
    def sample(self, seq: int) -> Sample:
        """Take sample `seq`; return its outcome, a short detail (error text), any values."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Open connections before the drill, so start-up cost is not counted as an outage.
        Failures are ignored here: the samples will report them."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class Wait(NamedTuple):
    """What a non-blocking client waits for: `fd` ready for `events` (READ, WRITE). At
    `until_ns` (monotonic), if given, TimeoutError is thrown into the exchange instead."""

    fd: int
    events: int
    until_ns: int | None = None


Exchange = Generator[Wait, None, Sample]
T = TypeVar("T")


def run_to_end(steps: Generator[Wait, None, T]) -> T:
    """Run non-blocking steps to their end on this thread, blocking on each wait (warm-ups
    before the drill, tests)."""
    with selectors.DefaultSelector() as selector:
        try:
            wait = next(steps)
            while True:
                selector.register(wait.fd, wait.events)
                left = None
                if wait.until_ns is not None:
                    left = max(0.0, (wait.until_ns - time.monotonic_ns()) / 1e9)
                ready = selector.select(left)
                selector.unregister(wait.fd)
                wait = steps.send(None) if ready else steps.throw(TimeoutError("timed out"))
        except StopIteration as end:
            return end.value  # type: ignore[no-any-return]


class LoopClient(ABC):
    """One connection's worth of non-blocking probe state, driven by the harness's event loop
    (drills.loop_runner): one thread for every such probe, no thread per connection.

    `exchange` is a generator that never blocks: it yields a Wait whenever it needs a socket
    to be ready, and returns the Sample. Anything slow that cannot wait on a socket (a DNS
    lookup) belongs in a blocking Client instead.
    """

    @abstractmethod
    def exchange(self, seq: int) -> Exchange:
        """Take sample `seq`, yielding between steps."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Open the connection before the drill (blocking is allowed here); failures ignored."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class Probe(ABC):
    Config: ClassVar[type[ProbeConfig]]
    # What a sample that timed out is: a read certainly failed, a write may have happened.
    timeout_outcome: ClassVar[Outcome] = Outcome.FAIL
    writes: ClassVar[bool] = False

    def __init__(self, name: str, config: ProbeConfig, run_id: str) -> None:
        self.name = name
        self.config = config
        self.run_id = run_id

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Set up before the drill starts (create a table); raise ProbeError on failure."""

    @abstractmethod
    def client(self) -> Client:
        """A new client for one worker thread."""

    def loop_client(self) -> LoopClient | None:
        """A new non-blocking client, or None when this probe (or this configuration of it)
        needs a blocking one: then it runs on threads."""
        return None


class WriteProbe(Probe):
    timeout_outcome = Outcome.UNKNOWN
    writes = True

    @abstractmethod
    def final_read(self) -> dict[int, int]:
        """Read back every write of this run on the surviving primary: id -> rows found."""


PROBES: Registry[Probe] = Registry("probe", group="drills.probes")
