"""Which engine samples a probe: the event loop when every connection can have a non-blocking
client (drills.loop_runner), threads otherwise (drills.threaded_runner)."""

from __future__ import annotations

from drills.history import Clock, HistoryLog
from drills.loop_runner import LoopRunner
from drills.openloop import ProbeRunner
from drills.probe import LoopClient, Probe
from drills.stalls import SHARED, StallWatch
from drills.threaded_runner import ThreadedRunner


def probe_runner(
    probe: Probe, log: HistoryLog, clock: Clock, stalls: StallWatch | None = SHARED
) -> ProbeRunner:
    clients: list[LoopClient] = []
    for _ in range(probe.config.connections):
        client = probe.loop_client()
        if client is None:
            return ThreadedRunner(probe, log, clock, stalls)
        clients.append(client)
    return LoopRunner(probe, log, clock, clients, stalls)


def engine_of(probe: Probe) -> str:
    """`loop` or `threads`, as `probe_runner` would choose (for the dry run)."""
    return "threads" if probe.loop_client() is None else "loop"
