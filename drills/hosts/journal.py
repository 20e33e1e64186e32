"""`drills recover` for host targets: what a drill changed on a host over SSH, pinned to the
host's address, port, key and known_hosts, so recovery reaches the same host from anywhere."""

from __future__ import annotations

import signal
from typing import Any, Literal

from pydantic import Field

from drills.containers.iptables import rules_script
from drills.hosts.spec import HostSpec
from drills.hosts.ssh import Ssh
from drills.hosts.systemctl import kill_script, start_unless_active_script
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.pidfile import StalePidFile

SBIN = "PATH=$PATH:/usr/sbin:/sbin; export PATH"  # iptables lives there; a user's PATH may lack it


def host_script(body: str) -> str:
    return f"{SBIN}\n{body}\n"


class HostEntry(JournalEntry):
    target: str | None = None
    host: dict[str, Any] = Field(default_factory=dict)

    def spec(self) -> HostSpec:
        return HostSpec.model_validate(self.host)

    def ssh(self) -> Ssh:
        return Ssh(self.spec(), self.about())

    def where(self) -> str:
        return f"{self.about()} on {self.spec().describe()}"


@JOURNAL.register("host-pause")
class HostPause(HostEntry):
    """A process tree on a host stopped with SIGSTOP; recovered by resuming it, if its root
    still is the process recorded (pid, start time, executable)."""

    op: Literal["host-pause"] = "host-pause"
    process: list[Any]

    def problem(self) -> str | None:
        if len(self.process) != 3 or self.process[1] is None or not self.process[2]:
            return "a host process recorded without its start time and executable"
        return None

    def undo(self, recovery: Recovery) -> str | None:
        resumed = self.ssh().agent("resume-tree", root=self.process)["resumed"]
        if resumed is None:
            return None  # gone, or the pid is another process's now: nothing of ours to resume
        return f"resumed {self.where()} ({resumed} processes)"


@JOURNAL.register("host-stop")
class HostStopped(HostEntry):
    """A process on a host stopped by the drill; recovered by its start command, unless its
    pid file names a running process again."""

    op: Literal["host-stop"] = "host-stop"
    pid_file: str
    start: str

    def undo(self, recovery: Recovery) -> str | None:
        ssh = self.ssh()
        try:
            ssh.agent("resolve", pid_file=self.pid_file, name=self.about())
            return None
        except StalePidFile:
            ssh.run(self.start, timeout_s=120)
        return f"started {self.where()} with its start command"


@JOURNAL.register("host-iptables")
class HostRules(HostEntry):
    """DROP rules added to a host's iptables, each tagged with the run's comment."""

    op: Literal["host-iptables"] = "host-iptables"
    rules: list[list[str]]

    def undo(self, recovery: Recovery) -> str | None:
        self.ssh().run("sh -s", stdin=host_script(rules_script("-D", self.rules, "on the host")))
        return f"removed the drill's iptables rules from {self.where()}"


class UnitEntry(HostEntry):
    unit: str

    def where(self) -> str:
        return f"{self.about()} (unit {self.unit}) on {self.spec().describe()}"


@JOURNAL.register("host-unit-pause")
class HostUnitPaused(UnitEntry):
    """A systemd unit's processes stopped with SIGSTOP; recovered with SIGCONT to them, if the
    same invocation of the unit still runs."""

    op: Literal["host-unit-pause"] = "host-unit-pause"
    invocation: str

    def undo(self, recovery: Recovery) -> str | None:
        script = kill_script(self.unit, signal.SIGCONT, self.invocation)
        if self.ssh().run("sh -s", stdin=host_script(script)).strip() != "sent":
            return None  # restarted since, or gone: nothing of ours is stopped
        return f"resumed {self.where()}"


@JOURNAL.register("host-unit-stop")
class HostUnitStopped(UnitEntry):
    """A systemd unit stopped by the drill; recovered by starting it, unless it is active."""

    op: Literal["host-unit-stop"] = "host-unit-stop"

    def undo(self, recovery: Recovery) -> str | None:
        script = start_unless_active_script(self.unit)
        done = self.ssh().run("sh -s", stdin=host_script(script), timeout_s=120)
        return f"started {self.where()}" if done.strip() == "started" else None
