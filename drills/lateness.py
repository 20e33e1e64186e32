"""The harness's own lateness, kept apart from the target's downtime.

A sample is due at a time (open loop); the harness issues it a little later. When it issues it
later than a tolerance, or cannot issue it because its own threads still hold every connection,
or notices a deadline well after it passed, the sample says nothing reliable about the target:
it is recorded as late, with the reason, and left out of downtime and recovery (like a sample
whose probe crashed). The record reports the lag and the share left out; above a share the run
cannot be judged and its verdict is `error` (engineering guide, "Late samples").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from drills.history import Op

# The largest load measured faithful on a 2-core machine (docs/benchmarks.md, "Probe capacity").
CAPACITY_SAMPLES_PER_S = 3_000
LATE_TOLERANCE_NS = 10_000_000  # a sample issued more than 10 ms after its due time is late
OVERLOAD_SHARE = 0.05  # more than 5% of samples late: the harness could not keep up


def issued_late(due_ns: int, issued_ns: int, tolerance_ns: int = LATE_TOLERANCE_NS) -> str:
    """Why a sample issued at `issued_ns` is late ("" when it is not)."""
    lag = issued_ns - due_ns
    return f"issued {lag / 1e6:.1f} ms after its due time" if lag > tolerance_ns else ""


def deadline_noticed_late(
    deadline_ns: int, now_ns: int, tolerance_ns: int = LATE_TOLERANCE_NS
) -> str:
    """Why a timeout noticed at `now_ns` cannot be trusted ("" when it can): the answer may have
    come in time while the harness was busy elsewhere."""
    lag = now_ns - deadline_ns
    return f"its deadline was noticed {lag / 1e6:.1f} ms late" if lag > tolerance_ns else ""


def stalled(stall_ns: int) -> str:
    """Why a sample in flight during a stall of the harness is late ("" for no stall)."""
    return f"the harness stalled {stall_ns / 1e6:.1f} ms while it was in flight" if stall_ns else ""


def skip_reason(due_ns: int, now_ns: int, waited_ns: int, woke_ns: int) -> str:
    """Why a scheduler reached a due time at `now_ns`, too late to issue it: the part of its
    lateness it spent not running although its wait (begun at `waited_ns`) was due to end (the
    process or the whole machine held), and the part it spent busy (its own callbacks)."""
    asleep = max(0, woke_ns - max(due_ns, waited_ns))
    busy = max(0, now_ns - due_ns - asleep)
    return (
        f"due times skipped, {(now_ns - due_ns) / 1e6:.1f} ms late: not running for "
        f"{asleep / 1e6:.1f} ms after its wait was due to end, busy {busy / 1e6:.1f} ms"
    )


NOT_ISSUED = "never issued: the harness had no thread free before its deadline"
POOL_HELD = "no free connection: earlier samples not yet issued, recorded, or slower than `slow`"


@dataclass(frozen=True)
class HarnessLag:
    """Lag = time a sample was issued - time it was due, over the samples that were issued."""

    samples: int
    late: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None

    @property
    def late_share(self) -> float:
        return self.late / self.samples if self.samples else 0.0


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def harness_lag(ops: Iterable[Op], skipped: int = 0) -> HarnessLag:
    """Over every due sample: those recorded (crashed ones aside) and the `skipped` due times
    the harness was too far behind to issue at all, which count as late."""
    samples = late = skipped
    lags: list[float] = []
    for op in ops:
        if op.crashed:
            continue
        samples += 1
        late += bool(op.late)
        if op.issued_ns is not None:
            lags.append((op.issued_ns - op.invoke_ns) / 1e6)
    lags.sort()
    return HarnessLag(
        samples=samples,
        late=late,
        lag_p50_ms=round(statistics.median(lags), 3) if lags else None,
        lag_p99_ms=round(_percentile(lags, 0.99), 3) if lags else None,
        lag_max_ms=round(lags[-1], 3) if lags else None,
    )


def between(ops: Iterable[Op], start_ns: int | None, end_ns: int | None) -> HarnessLag | None:
    """The lag over the samples due from `start_ns` to `end_ns` (None: to the end)."""
    if start_ns is None:
        return None
    found = [
        op for op in ops if op.invoke_ns >= start_ns and (end_ns is None or op.invoke_ns <= end_ns)
    ]
    return harness_lag(found) if found else None


def overload_error(
    lag: HarnessLag, disruption: HarnessLag | None = None, share: float = OVERLOAD_SHARE
) -> str | None:
    """The run's error when too many samples were late to judge it, over the whole run or
    over the `disruption` (first disruptive step to recovery: late samples there could hide
    the outage itself); None when it can be judged. One late sample moves a bound by at most
    its interval, the resolution the record states: it alone is never an overload (a 66 ms
    disruption holds 9 samples, one of them 11%)."""
    for found, when in ((lag, ""), (disruption, " during the disruption")):
        if found is not None and found.late > 1 and found.late_share > share:
            return (
                f"harness overloaded{when}: {found.late_share:.0%} of samples late ({found.late} "
                f"of {found.samples}); use fewer probes or longer intervals"
            )
    return None


class _Sampled(Protocol):
    interval: float
    connections: int


@dataclass(frozen=True)
class ProbeLoad:
    samples_per_s: float
    on_loop: int  # probes sampled on the one event-loop thread
    threaded: int  # probes on threads of their own
    threads: int  # those threads: a scheduler and one worker per connection, per probe


def probe_load(probes: Iterable[tuple[_Sampled, bool]]) -> ProbeLoad:
    """What a scenario's probes ask of the harness: samples per second, and where they run
    (each probe with whether it goes on the event loop, drills.engines)."""
    listed = list(probes)
    threaded = [p for p, on_loop in listed if not on_loop]
    return ProbeLoad(
        samples_per_s=sum(1 / p.interval for p, _ in listed),
        on_loop=len(listed) - len(threaded),
        threaded=len(threaded),
        threads=sum(1 + p.connections for p in threaded),
    )


def load_line(load: ProbeLoad, capacity: float = CAPACITY_SAMPLES_PER_S) -> str:
    where = []
    if load.on_loop:
        where.append(f"{load.on_loop} probe{'s' * (load.on_loop != 1)} on the event loop")
    if load.threaded:
        where.append(f"{load.threaded} on {load.threads} threads")
    line = f"probe load: {load.samples_per_s:,.0f} samples/s ({', '.join(where) or 'no probes'})"
    if load.samples_per_s <= capacity:
        return line
    return (
        f"{line}. WARNING: above the {capacity:,.0f} samples/s measured faithful on a 2-core "
        "machine (docs/benchmarks.md); samples the harness is late for are left out of "
        "downtime, and too many make the verdict error: use fewer probes or longer intervals"
    )
