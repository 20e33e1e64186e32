"""The processes of the `patroni` lab as targets: a Patroni member (Patroni and the PostgreSQL
it runs, signalled together), etcd, and HAProxy.

Patroni 3.0 starts the postmaster through a helper that double-forks it into a session of its
own, so the postmaster is not Patroni's descendant: a member is two process trees, Patroni's
and the postmaster's (read from postmaster.pid and confirmed by the process's working
directory, its data directory, and remembered with its start time)."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from drills.abilities import Injection
from drills.backup.pgbackrest import Repository, Server
from drills.errors import LabError, TargetError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.labs.lab_process import LabHost, LabProcess
from drills.patroni.lab_files import MemberPlan
from drills.proctree import (
    Identity,
    descendant_identities,
    descendants,
    executable,
    identify,
    refusal,
    signal_identities,
    signal_pids,
    signal_tree,
    start_time,
)

READY_TIMEOUT_S = 20.0


def http_status(url: str, timeout_s: float = 1.0) -> int | None:
    """The HTTP status `url` answers with, None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


@JOURNAL.register("pause-trees")
class PausedTrees(JournalEntry):
    """Process trees stopped together (a Patroni member: Patroni and its postmaster);
    recovered by resuming them."""

    op: Literal["pause-trees"] = "pause-trees"
    target: str
    roots: list[tuple[int, int | None]]
    exes: list[str | None] = Field(default_factory=list)  # each root's executable

    def problem(self) -> str | None:
        if len(self.exes) != len(self.roots) or not all(self.exes + [s for _, s in self.roots]):
            return "roots recorded without their start time and executable"
        return next((f"pid {p} is {why}" for p, _ in self.roots if (why := refusal(p))), None)

    def undo(self, recovery: Recovery) -> str | None:
        pairs = zip(self.roots, self.exes, strict=False)  # problem() checked the lengths
        roots = [Identity(p, s, exe) for (p, s), exe in pairs if s is not None]
        found = [p for r in roots if identify(r.pid) == r for p in (r, *descendant_identities(r))]
        if not found:
            return None
        signal_identities(reversed(found), signal.SIGCONT)
        return f"resumed {self.target} ({len(found)} processes)"


RESTORE_REFUSED = (
    "{step} on a Patroni member is not supported yet: Patroni manages the data directory (it "
    "restarts, rewinds or re-clones a member behind the harness's back); back the cluster up "
    "with `backup: leader`, and drill restores in a postgres-pair lab"
)


class PatroniMember(LabProcess):
    """One member: Patroni and the PostgreSQL it runs. Signalling it signals both (a kill is
    the loss of the member's node). It cannot be promoted: Patroni decides which member is
    the primary. With the lab's `backup:` it can be backed up (the leader), never restored."""

    # Steps validation refuses on a member, with why (drills.scenario_checks).
    refuses: ClassVar[dict[str, str]] = {
        step: RESTORE_REFUSED.format(step=step) for step in ("restore", "restore-config")
    }

    def __init__(
        self,
        lab: LabHost,
        plan: MemberPlan,
        binary: str,
        dsn: str,
        repository: Repository | None = None,
    ) -> None:
        super().__init__(plan.name, lab, plan.pg_port)
        self.site = plan.site
        self.config = plan.config
        self.datadir = plan.datadir
        self.rest_port = plan.rest_port
        self.binary = binary
        self.dsn = dsn  # its PostgreSQL, directly (not through a link)
        self.repository = repository

    def backups(self) -> Repository:
        if self.repository is None:
            raise TargetError(f"{self.name}: the lab has no `backup:` setting, so no backups")
        return self.repository

    def server(self) -> Server:
        return Server(self.datadir, self.port)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def argv(self) -> list[str]:
        return [self.binary, str(self.config)]

    def wait_ready(self) -> None:
        """Patroni is running; the lab waits for the cluster as a whole."""
        if self.proc is not None and self.proc.poll() is not None:
            raise LabError(
                f"{self.name}: patroni exited ({self.proc.returncode}): {self.log_tail()}"
            )

    def wait_rest(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.wait_ready()
            if http_status(self.rest_url + "/patroni") is not None:
                return
            time.sleep(0.05)
        raise LabError(f"{self.name}: no REST API on {self.rest_url}: {self.log_tail()}")

    def postmaster(self) -> int | None:
        """The member's running postmaster: the pid in postmaster.pid, if that process works
        in this member's data directory (a reused pid does not)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.realpath(cwd) == os.path.realpath(self.datadir) else None

    def roots(self) -> list[int]:
        """Patroni's pid (when running) and the postmaster's, in that order: Patroni first, so
        that it cannot restart a PostgreSQL it saw die."""
        found = []
        if self.proc is not None and self.proc.poll() is None:
            found.append(self.proc.pid)
        postmaster = self.postmaster()
        if postmaster is not None:
            found.append(postmaster)
        return found

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        sent = [] if sent is None else sent
        roots = self.roots()
        if not roots:
            raise TargetError(f"{self.name}: neither Patroni nor PostgreSQL is running")
        try:
            for root in roots:
                signal_tree(root, sig, sent)
            return sent
        finally:
            self._remember(sent)

    def pausing(self, called: str) -> Injection:
        roots = self.roots()
        if not roots:
            raise TargetError(f"{self.name}: neither Patroni nor PostgreSQL is running")
        stopped: list[int] = []

        def make() -> str:
            for root in roots:
                signal_tree(root, signal.SIGSTOP, stopped)
            self._remember(stopped)
            return f"SIGSTOP sent to {len(stopped)} processes (Patroni and PostgreSQL)"

        return Injection(
            PausedTrees(
                target=called,
                roots=[(r, start_time(r)) for r in roots],
                exes=[executable(r) for r in roots],
            ),
            make,
            lambda: signal_pids(list(reversed(stopped)), signal.SIGCONT),
            f"resume {called}",
        )

    def kill_all(self) -> None:
        postmaster = self.postmaster()
        if postmaster is not None:
            self._remember([postmaster, *descendants(postmaster)])
        super().kill_all()

    def restart(self) -> None:
        """Bring the member's node back: Patroni starts again and rejoins the cluster."""
        self.kill_all()
        self.start()


class EtcdNode(LabProcess):
    """etcd, the DCS: one member on loopback, standing for a witness at a third site."""

    as_lab_user = False

    def __init__(self, lab: LabHost, binary: str, datadir: Path, ports: tuple[int, int]) -> None:
        super().__init__("etcd", lab, ports[0])
        self.binary = binary
        self.datadir = datadir
        self.peer_port = ports[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.binary,
            *("--name", "witness", "--data-dir", str(self.datadir)),
            *("--listen-client-urls", self.url, "--advertise-client-urls", self.url),
            *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
            *("--initial-cluster", f"witness={peer}", "--initial-cluster-state", "new"),
            *("--log-level", "warn", "--logger", "zap"),
        ]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"etcd exited ({self.proc.returncode}): {self.log_tail()}")
            if http_status(self.url + "/health") == 200:
                return
            time.sleep(0.03)
        raise LabError(f"etcd did not answer on {self.url} in {READY_TIMEOUT_S:g}s")

    def restart(self) -> None:
        self.kill_all()
        self.start()


class BalancerNode(LabProcess):
    """HAProxy in front of the members: a write port to the member whose REST API answers
    /primary, a read port to those that answer /replica."""

    as_lab_user = False

    def __init__(self, lab: LabHost, binary: str, config: Path, ports: tuple[int, int]) -> None:
        super().__init__("lb", lab, ports[0])
        self.binary = binary
        self.config = config
        self.read_port = ports[1]

    def argv(self) -> list[str]:
        return [self.binary, "-db", "-f", str(self.config)]

    def wait_ready(self) -> None:
        time.sleep(0.02)
        if self.proc is not None and self.proc.poll() is not None:
            raise LabError(f"haproxy exited ({self.proc.returncode}): {self.log_tail()}")

    def restart(self) -> None:
        self.kill_all()
        self.start()
