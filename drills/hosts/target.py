"""A process on another host as a target, found by its pid file there and acted on over SSH
through drills' process agent (drills.hosts.agent): the same identity checks and tree walk as
for a local process. It can be signalled, paused, partitioned (iptables on that host), and with
a `start:` command stopped, started and restarted; with a `dsn:`, promoted. A systemd unit on a
host (drills.hosts.unit) shares the connection and the partitions."""

from __future__ import annotations

import ipaddress
import signal
from typing import Any

from drills.abilities import Injection
from drills.containers.iptables import drop_rules, rules_script
from drills.errors import StepError, TargetError
from drills.hosts.journal import HostPause, HostRules, HostStopped, host_script
from drills.hosts.spec import HostSpec
from drills.hosts.ssh import Ssh, SshTimeout
from drills.pidfile import StalePidFile
from drills.targets import PromotesThroughDsn, class_by_spec

STOP_TIMEOUT_S = 30.0
START_TIMEOUT_S = 120.0


class HostTarget:
    """What every target on a host shares: the SSH connection, and partitions made with
    iptables there."""

    def __init__(self, name: str, host: HostSpec, dsn: str | None = None) -> None:
        self.name = name
        self.host = host
        self.ssh = Ssh(host, name)
        self.dsn = dsn

    def _where(self) -> str:
        return f"on {self.host.describe()}"

    def _entry(self, called: str) -> dict[str, Any]:
        return {"target": called, "host": self.host.pinned()}

    def _refuse_own_path(self, peers: list[str]) -> None:
        """A cut of the address drills reaches the host from would cut its own connection:
        neither the revert nor `drills recover` could get through."""
        seen = self.ssh.run('echo "$SSH_CONNECTION"').split()
        if not seen:
            return
        client = ipaddress.ip_address(seen[0])
        for peer in peers:
            if client in ipaddress.ip_network(peer, strict=False):
                raise StepError(
                    f"{self.name}: cutting {peer} would cut drills' own SSH connection (from "
                    f"{client}) {self._where()}: nothing could undo it"
                )

    def partitioning(self, peers: list[str], tag: str, run_id: str) -> Injection:
        self._refuse_own_path(peers)
        rules = [rule for peer in peers for rule in drop_rules(peer, tag)]

        def apply(action: str) -> None:
            script = rules_script(action, rules, "on the host")
            self.ssh.run("sh -s", stdin=host_script(script))

        def make() -> str:
            apply("-I")
            return f"{self.name} {self._where()}: dropping traffic"

        entry = HostRules(**self._entry(self.name), rules=rules)
        return Injection(entry, make, lambda: apply("-D"), f"rules removed from {self.name}")


class HostProcess(HostTarget):
    def __init__(
        self,
        name: str,
        host: HostSpec,
        pid_file: str,
        dsn: str | None = None,
        start: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        super().__init__(name, host, dsn)
        self.pid_file = pid_file
        self.start_command = start
        self.stop_signal = stop_signal

    def process(self) -> list[Any]:
        """[pid, start time, executable] of the process the pid file names, checked there."""
        found: list[Any] = self.ssh.agent("resolve", pid_file=self.pid_file, name=self.name)[
            "process"
        ]
        return found

    def describe(self) -> dict[str, Any]:
        return {"host": self.host.describe(), "pid_file": self.pid_file}

    def _signal(self, sig: signal.Signals, root: list[Any] | None = None) -> list[list[Any]]:
        answer = self.ssh.agent("signal", root=root or self.process(), signal_name=sig.name)
        signalled: list[list[Any]] = answer["signalled"]
        return signalled

    def send(self, sig: signal.Signals) -> str:
        return f"{sig.name} sent to {len(self._signal(sig))} processes {self._where()}"

    def pausing(self, called: str) -> Injection:
        root = self.process()
        stopped: list[list[Any]] = []

        def make() -> str:
            stopped.extend(self._signal(signal.SIGSTOP, root))
            return f"SIGSTOP sent to {len(stopped)} processes {self._where()}"

        def undo() -> None:
            if stopped:
                self.ssh.agent("signal-each", processes=stopped, signal_name="SIGCONT")
            else:  # cut short before the answer came: resume the tree if it is still ours
                self.ssh.agent("resume-tree", root=root)

        entry = HostPause(**self._entry(called), process=root)
        return Injection(entry, make, undo, f"resume {called}")

    def resume(self) -> str:
        return f"SIGCONT sent to {len(self._signal(signal.SIGCONT))} processes {self._where()}"


class RestartableHostProcess(HostProcess):
    def _running(self) -> list[Any] | None:
        try:
            return self.process()
        except StalePidFile:
            return None

    def _stop(self, root: list[Any], timeout_s: float) -> None:
        self._signal(signal.SIGCONT, root)  # a paused process cannot act on its stop signal
        self.ssh.agent("signal-each", processes=[root], signal_name=self.stop_signal.name)
        exited = self.ssh.agent("wait-exit", timeout_s + 30, root=root, wait_s=timeout_s)
        if not exited["exited"]:
            self._signal(signal.SIGKILL, root)

    def start(self) -> None:
        assert self.start_command is not None
        if self._running() is not None:
            return
        try:
            self.ssh.run(self.start_command, timeout_s=START_TIMEOUT_S)
        except SshTimeout:
            raise TargetError(
                f"{self.name}: start command still running {self._where()} after "
                f"{START_TIMEOUT_S:g}s (does it leave the server attached to its output? "
                "redirect it, e.g. pg_ctl -l FILE, or `... >LOG 2>&1 </dev/null &`)"
            ) from None

    def restart(self, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        root = self._running()
        if root is not None:
            self._stop(root, stop_timeout_s)
        self.start()

    def stopping(self, called: str, timeout_s: float) -> Injection:
        root = self._running()
        if root is None:
            raise TargetError(f"{self.name}: not running {self._where()}: nothing to stop")
        assert self.start_command is not None

        def make() -> str:
            self._stop(root, timeout_s)
            return f"{called} stopped {self._where()}"

        entry = HostStopped(**self._entry(called), pid_file=self.pid_file, start=self.start_command)
        return Injection(entry, make, self.start, f"start {called}")


class PromotableHostProcess(HostProcess, PromotesThroughDsn):
    pass


class RestartablePromotableHostProcess(RestartableHostProcess, PromotableHostProcess):
    pass


def host_target_class(start: str | None, dsn: str | None) -> type[HostProcess]:
    """The one place a host target's abilities follow from its spec."""
    classes = (
        HostProcess,
        RestartableHostProcess,
        PromotableHostProcess,
        RestartablePromotableHostProcess,
    )
    return class_by_spec(start, dsn, classes)
