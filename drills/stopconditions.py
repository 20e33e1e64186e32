"""Stop conditions: a watcher thread that aborts the drill when a probe has been down too long
(`abort_if` in the scenario, `--max-downtime` on the command line)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drills.openloop import ProbeState
from drills.scenario import Scenario
from drills.signals import abort


@dataclass
class StopCondition:
    what: str
    state: ProbeState
    limit_s: float
    total: bool  # total downtime so far, or the current outage

    def fired(self, now_ns: int) -> bool:
        down = self.state.total_down_ns(now_ns) if self.total else self.state.down_for_ns(now_ns)
        return down > self.limit_s * 1e9


def stop_conditions(
    scenario: Scenario, states: dict[str, ProbeState], max_downtime: float | None
) -> list[StopCondition]:
    checks: list[StopCondition] = []
    for condition in scenario.abort_if:
        state = states[str(condition.probe)]
        if condition.down_for is not None:
            checks.append(StopCondition(condition.describe(), state, condition.down_for, False))
        elif condition.downtime is not None:
            checks.append(StopCondition(condition.describe(), state, condition.downtime, True))
    if max_downtime is not None:
        what = f"--max-downtime: {scenario.service_probe} down over {max_downtime:g}s"
        checks.append(StopCondition(what, states[scenario.service_probe], max_downtime, True))
    return checks


class Monitor:
    """Watches the conditions every 20 ms until stopped; the first that fires aborts the drill
    (the main thread raises Aborted). Once stopped, none can fire any more."""

    def __init__(self, checks: list[StopCondition], say: Callable[[str], None]) -> None:
        self.checks = checks
        self.say = say
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.checks:
            self._thread = threading.Thread(target=self._watch, name="stop-conditions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic_ns()
            for condition in self.checks:
                if condition.fired(now) and not self._stop.is_set():
                    self.say(f"stop condition: {condition.what}: aborting")
                    abort(condition.what)
                    return
