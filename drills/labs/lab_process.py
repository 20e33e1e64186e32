"""The processes of the local labs: a server started in the lab's directory and session, a
PostgreSQL server of the pair, and the crash-journal entries that let `drills recover` kill
them and remove the lab's directory if the harness died."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import psycopg

from drills.backup.pgbackrest import Repository, Server, programs
from drills.errors import LabError, TargetError
from drills.files import open_nofollow
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.labs.credentials import dsn, passfile_param
from drills.labs.lab_paths import lab_directory_problem
from drills.proctree import (
    alive,
    descendants,
    identify,
    signal_identities,
    signal_pids,
    signal_tree,
    start_time,
)
from drills.targets import ProcessTree, ProcessTreeEntry, promote_postgres

if TYPE_CHECKING:
    from drills.labs.postgres_pair import PostgresPairLab

READY_TIMEOUT_S = 30.0


def _wait_gone(pids: list[int], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


@JOURNAL.register("process")
class LabServer(ProcessTreeEntry):
    """A lab server started; recovered by killing it with everything it started."""

    op: Literal["process"] = "process"
    subject = "pid"

    @classmethod
    def started(cls, pid: int) -> LabServer | None:
        """The entry of a server just started (a child not yet reaped); None if it exited
        already: recovery would refuse an entry without identity and keep the journal."""
        process = identify(pid)
        return None if process is None else cls.of(process)

    def undo(self, recovery: Recovery) -> str | None:
        processes = self.live_tree()
        if processes is None:
            return self.left_alone()
        signal_identities(processes, signal.SIGCONT)
        signal_identities(processes, signal.SIGKILL)
        _wait_gone([process.pid for process in processes])
        return f"killed lab server {self.pid} ({len(processes)} processes)"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def processes_in(root: str, bin_dir: str | None, programs: list[str] | None = None) -> list[int]:
    """Lab servers: processes whose working directory is inside `root` (PostgreSQL chdirs to
    its data) and, when the journal names it, whose program is in the lab's `bin_dir` or is one
    of `programs` (pgBackRest), so that a shell an operator opened in a kept lab is left alone."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
                exe = os.readlink(entry / "exe") if bin_dir else ""
            except OSError:
                continue
            ours = not bin_dir or _inside(exe, bin_dir) or exe in (programs or [])
            if _inside(cwd, root) and ours:
                found.append(int(entry.name))
    return found


def kill_processes_in(root: str, bin_dir: str | None, programs: list[str]) -> None:
    """Kill the lab's processes, scanning again for any forked meanwhile (a pgBackRest restore
    starts its workers after it starts)."""
    for _ in range(5):
        leftovers = processes_in(root, bin_dir, programs)
        if not leftovers:
            return
        signal_pids(leftovers, signal.SIGCONT)
        signal_pids(leftovers, signal.SIGKILL)
        _wait_gone(leftovers)


@JOURNAL.register("lab-dir")
class LabDirectory(JournalEntry):
    """A lab's temporary directory, about to be made; recovered by killing the servers still
    running in it and removing it. `owner` is the uid of the lab's OS user, if it has one."""

    op: Literal["lab-dir"] = "lab-dir"
    subject = "path"
    path: str
    bin: str | None = None
    programs: tuple[str, ...] = ()
    owner: int | None = None
    processes: bool = True  # False: nothing runs from it on this host (a docker lab's files)

    def problem(self) -> str | None:
        return lab_directory_problem(self.path, self.owner)

    def undo(self, recovery: Recovery) -> str | None:
        if self.processes:
            bin_dir = os.path.realpath(self.bin) if self.bin else None
            kill_processes_in(self.path, bin_dir, [os.path.realpath(p) for p in self.programs])
        if not Path(self.path).exists():
            return None
        shutil.rmtree(self.path, ignore_errors=True)
        return f"removed lab {self.path}"


def lab_directory(root: Path, bin_dir: Path, user: LabUser | None = None) -> LabDirectory:
    """The journal entry of a lab's directory, made before the directory."""
    owner = None if user is None else user.uid
    return LabDirectory(path=str(root), bin=str(bin_dir), programs=programs(), owner=owner)


@dataclass
class LabUser:
    uid: int
    gid: int
    name: str


def check_searchable(root: Path, user: LabUser, runs: str) -> None:
    """Every parent of a lab directory must be searchable by `user`, which `runs` what."""
    for parent in root.parents:
        info = parent.stat()
        if info.st_mode & 0o001 or (info.st_uid == user.uid and info.st_mode & 0o100):
            continue
        if info.st_gid == user.gid and info.st_mode & 0o010:
            continue
        raise LabError(
            f"{parent} is not searchable by OS user {user.name!r}, which runs {runs}: "
            "set TMPDIR to a directory it can reach (e.g. /tmp)"
        )


def spawn(
    argv: list[str], log: Any, user: LabUser | None, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a lab server: as `user` (None: as the harness), in a session of its own, so that
    Ctrl-C in the terminal reaches the harness, not the servers, and the harness decides what
    happens to them. `env`: its whole environment (drills.labs.credentials.child_env); None
    inherits the harness's, which may hold secrets: callers pass one."""
    return subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=[] if user else None,
        cwd=cwd,
        env=env,
    )


class LabHost(Protocol):
    """What a lab gives its server processes: its directory, how to start a process there,
    and its crash journal."""

    root: Path
    journal: Callable[[JournalEntry], None]

    def popen(
        self, argv: list[str], log: Any, as_lab_user: bool = True
    ) -> subprocess.Popen[bytes]: ...


class LabProcess(ProcessTree):
    """A server process of a lab, started in the lab's directory and session; a target that
    can be signalled, and killed with everything it ever started at teardown."""

    def __init__(self, name: str, lab: LabHost, port: int) -> None:
        self.name = name
        self.lab = lab
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        # Every process the server had, with its start time, so that a pid reused by an
        # unrelated process is never signalled at teardown.
        self.known_pids: dict[int, int | None] = {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def wait_ready(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        log = open_nofollow(self.lab.root / f"{self.name}.log", "ab")
        try:
            self.proc = self.lab.popen(self.argv(), log, as_lab_user=self.as_lab_user)
        finally:
            log.close()
        self._remember([self.proc.pid])
        if (entry := LabServer.started(self.proc.pid)) is not None:
            self.lab.journal(entry)
        self.wait_ready()

    as_lab_user = True  # PostgreSQL refuses root; other servers run as the harness does

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.lab.root / f"{self.name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def pid(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise TargetError(f"{self.name}: server is not running")
        return self.proc.pid

    def _remember(self, pids: list[int]) -> None:
        for pid in pids:
            self.known_pids.setdefault(pid, start_time(pid))

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        sent = [] if sent is None else sent
        try:
            return signal_tree(self.pid(), sig, sent)
        finally:
            self._remember(sent)

    def kill_all(self) -> None:
        """SIGKILL the server and every process it ever had; wait until they are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self._remember([self.proc.pid, *descendants(self.proc.pid)])
        pids = sorted(
            pid
            for pid, started in self.known_pids.items()
            if alive(pid) and (started is None or start_time(pid) == started)
        )
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)


class PostgresNode(LabProcess):
    """One PostgreSQL server of the lab; a target with every ability."""

    lab: PostgresPairLab
    name: str
    datadir: Path  # declared here so that abilities with attributes see them (incidents)

    def __init__(self, name: str, lab: PostgresPairLab, datadir: Path, port: int) -> None:
        super().__init__(name, lab, port)
        self.datadir = datadir

    @property
    def dsn(self) -> str:
        """Straight to the server, the password from the lab's password file."""
        return dsn(self.port, self.lab.passfile)

    def argv(self) -> list[str]:
        return [str(self.lab.bin / "postgres"), "-D", str(self.datadir)]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(
                    f"{self.name}: server exited ({self.proc.returncode}): {self.log_tail()}"
                )
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
                self._check_own(str(row[0]) if row else "")
                return
            except psycopg.Error as exc:
                last = str(exc).strip()
            time.sleep(0.05)
        raise LabError(f"{self.name}: not ready after {READY_TIMEOUT_S:g}s: {last}")

    def _check_own(self, datadir: str) -> None:
        """The server on the port is this one, not another that took the port first."""
        if os.path.realpath(datadir) != os.path.realpath(self.datadir):
            raise LabError(f"{self.name}: port {self.port} is answered by another server")

    def restart(self) -> None:
        self.stop_server()
        self.start()

    def promote(self, timeout_s: float) -> None:
        promote_postgres(self.dsn, timeout_s, self.name)

    def rejoin(self, primary: object) -> str:
        """Bring this server (failed, or an old primary) back as a streaming standby of
        `primary`, from a fresh base backup (which, unlike pg_rewind, needs no clean shutdown)."""
        if not isinstance(primary, PostgresNode) or primary.lab is not self.lab:
            raise TargetError(f"{self.name} can rejoin only a server of its own lab")
        self.kill_all()
        shutil.rmtree(self.datadir, ignore_errors=True)
        port = self.lab.replication_port(self.name, primary)
        self.lab.run(
            [
                str(self.lab.bin / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres"),
                *("-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast", "-N"),
            ],
            f"pg_basebackup of {self.name} from {primary.name}",
        )
        own_conf(self)
        self.start()
        return f"{self.name} streams from {primary.name} (fresh base backup)"

    def backups(self) -> Repository:
        repository = self.lab.repository
        if repository is None:
            raise TargetError(f"{self.name}: the lab has no `backup:` setting, so no backups")
        return repository

    def server(self) -> Server:
        return Server(self.datadir, self.port)

    def local_dsn(self) -> str:
        return self.dsn

    def standby_conninfo(self, primary: object) -> str:
        """How this node, restored as a standby, reaches `primary` (through the replication
        link when the lab has one)."""
        if not isinstance(primary, PostgresNode) or primary.lab is not self.lab:
            raise TargetError(f"{self.name} can follow only a server of its own lab")
        port = self.lab.replication_port(self.name, primary)
        return (
            f"host=127.0.0.1 port={port} user=postgres application_name={self.name} "
            f"{passfile_param(self.lab.passfile)}"
        )

    def program_dir(self) -> Path:
        return self.lab.bin

    def server_log(self) -> Path:
        return self.lab.root / f"{self.name}.log"

    def start_server(self) -> None:
        self.start()

    def kill_server(self) -> None:
        self.kill_all()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def own_configuration(self) -> None:
        own_conf(self)

    def stop_server(self) -> None:
        """Fast shutdown (SIGINT); SIGKILL of everything if it does not finish in 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        self.kill_all()


def own_conf(node: PostgresNode) -> None:
    """A copy of another server's data directory made this node's own: its port and name, no
    synchronous standby of its own, and its own WAL pushed to the lab's repository."""
    lines = [
        f"port = {node.port}",
        "synchronous_standby_names = ''",
        f"cluster_name = '{node.name}'",
    ]
    repository = node.lab.repository
    if repository is not None:
        lines.append(f"archive_command = {repository.archive_setting(node.server())}")
    with open_nofollow(node.datadir / "postgresql.conf", "ab") as conf:
        conf.write(("\n".join(lines) + "\n").encode())
