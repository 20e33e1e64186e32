"""A systemd service on another host as a target (`host:` with `unit:`), acted on over SSH
with systemctl (drills.hosts.systemctl): `kill` sends its signal to every process of the unit,
as a crash would, and the unit's own `Restart=` decides what follows; `pause`/`resume` send
SIGSTOP/SIGCONT to them; `stop`, `start` and `restart` are systemctl's, so the unit's ExecStop,
KillSignal, timeouts and dependencies apply. Partitions are iptables on that host.

A unit must be loaded and running when a fault starts; one whose processes hold drills' own SSH
session is refused (the revert needs that session). A pause is journalled with the unit's
InvocationID: `drills recover` resumes it only if that invocation still runs."""

from __future__ import annotations

import signal

from drills.abilities import Injection
from drills.errors import TargetError
from drills.hosts.journal import HostUnitPaused, HostUnitStopped, host_script
from drills.hosts.spec import HostSpec
from drills.hosts.systemctl import (
    UnitState,
    action_script,
    kill_script,
    parse_state,
    show_script,
)
from drills.hosts.target import START_TIMEOUT_S, HostTarget
from drills.targets import PromotesThroughDsn

SYSTEMD_STOP_TIMEOUT_S = 90.0  # systemd's DefaultTimeoutStopSec


class HostUnit(HostTarget):
    def __init__(self, name: str, host: HostSpec, unit: str, dsn: str | None = None) -> None:
        super().__init__(name, host, dsn)
        self.unit = unit

    def _where(self) -> str:
        return f"(unit {self.unit}) on {self.host.describe()}"

    def _systemctl(self, script: str, timeout_s: float = 60.0) -> str:
        return self.ssh.run("sh -s", stdin=host_script(script), timeout_s=timeout_s)

    def state(self) -> UnitState:
        return parse_state(self._systemctl(show_script(self.unit)))

    def running(self) -> UnitState:
        """The unit's state, checked: loaded, running, and not holding drills' own session."""
        state = self.state()
        if state.load != "loaded":
            raise TargetError(f"{self.name}: no unit {self._where()} (LoadState={state.load})")
        if not state.running:
            raise TargetError(
                f"{self.name}: not running {self._where()} (ActiveState={state.active})"
            )
        if state.holds_own_session():
            raise TargetError(
                f"{self.name}: {self.unit} holds drills' own SSH session on "
                f"{self.host.describe()} (cgroup {state.cgroup}): a fault on it would cut the "
                "connection that reverts it"
            )
        return state

    def describe(self) -> dict[str, object]:
        return {"host": self.host.describe(), "unit": self.unit}

    def send(self, sig: signal.Signals) -> str:
        self.running()
        self._systemctl(kill_script(self.unit, sig))
        return f"{sig.name} sent to the processes of {self.unit} on {self.host.describe()}"

    def pausing(self, called: str) -> Injection:
        invocation = self.running().invocation

        def make() -> str:
            sent = self._systemctl(kill_script(self.unit, signal.SIGSTOP, invocation))
            if sent.strip() != "sent":
                raise TargetError(f"{self.name}: restarted {self._where()} since it was checked")
            return f"SIGSTOP sent to the processes {self._where()}"

        def undo() -> None:  # a unit restarted since is not stopped: nothing to resume
            self._systemctl(kill_script(self.unit, signal.SIGCONT, invocation))

        entry = HostUnitPaused(**self._entry(called), unit=self.unit, invocation=invocation)
        return Injection(entry, make, undo, f"resume {called}")

    def resume(self) -> str:
        self._systemctl(kill_script(self.unit, signal.SIGCONT))
        return f"SIGCONT sent to the processes {self._where()}"

    def stopping(self, called: str, timeout_s: float) -> Injection:
        self.running()

        def make() -> str:
            self._systemctl(action_script("stop", self.unit), stop_wait_s(timeout_s))
            return f"{called} stopped {self._where()}"

        entry = HostUnitStopped(**self._entry(called), unit=self.unit)
        return Injection(entry, make, self.start, f"start {called}")

    def start(self) -> None:
        self._systemctl(action_script("start", self.unit), START_TIMEOUT_S)

    def restart(self) -> None:
        self.running()
        self._systemctl(action_script("restart", self.unit), stop_wait_s() + START_TIMEOUT_S)


def stop_wait_s(timeout_s: float = 0.0) -> float:
    """How long drills waits for `systemctl stop`: systemd applies the unit's own stop timeout
    (TimeoutStopSec, 90 s by default), not the step's; drills waits for the longer of the two,
    and 30 s more."""
    return max(timeout_s, SYSTEMD_STOP_TIMEOUT_S) + 30


class PromotableHostUnit(HostUnit, PromotesThroughDsn):
    pass


def host_unit_class(dsn: str | None) -> type[HostUnit]:
    """The one place a unit target's abilities follow from its spec."""
    return PromotableHostUnit if dsn else HostUnit
