"""A pgBackRest repository inside a lab's directory: its own configuration file, and every path
pgBackRest writes (repository, logs, locks, spool) under the lab, so removing the lab removes
the backups too. Commands run as the lab's OS user, with an environment of their own (the
harness's variables, secrets among them, never reach pgBackRest or PostgreSQL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from drills.errors import LabError, StepError
from drills.files import chown_nofollow, write_nofollow

if TYPE_CHECKING:
    from drills.labs.lab_process import LabUser

STANZA = "drills"
PGBACKREST = "pgbackrest"
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}


def programs() -> tuple[str, ...]:
    """pgBackRest's program, for the lab's journal entry: `drills recover` kills the pgBackRest
    processes still running in a lab (a restore's workers outlive a killed parent)."""
    found = shutil.which(PGBACKREST, path=ENVIRONMENT["PATH"])
    return (os.path.realpath(found),) if found else ()


# pgBackRest stamps each console line with its local time, UTC here (TZ above).
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) P\d\d ")
COMMAND_TIMEOUT_S = 3600.0
INSTALL_HINT = (
    "pgBackRest not found: install it (Debian/Ubuntu: apt-get install pgbackrest; "
    "`make drill` does) to drill backups and restores"
)
LineHook = Callable[[str], None]


@dataclass(frozen=True)
class BackupSet:
    """One backup as `pgbackrest info` describes it."""

    label: str
    type: str
    start_wall_s: int
    stop_wall_s: int
    db_bytes: int
    repo_bytes: int
    lsn_stop: str


@dataclass(frozen=True)
class Server:
    """Where pgBackRest finds a PostgreSQL server of the lab."""

    datadir: Path
    port: int


@dataclass(frozen=True)
class Ran:
    seconds: float  # as the harness timed it
    own_s: float | None  # as pgBackRest logged it ("command end: completed successfully (Nms)")
    start_ns: int
    end_ns: int


def find_pgbackrest() -> str:
    found = shutil.which(PGBACKREST, path=ENVIRONMENT["PATH"])
    if found is None:
        raise LabError(INSTALL_HINT)
    return found


def own_seconds(line: str) -> float | None:
    """pgBackRest's own time from its `... command end: completed successfully (1234ms)`."""
    marker = "completed successfully ("
    at = line.find(marker)
    if at < 0 or not line.rstrip().endswith("ms)"):
        return None
    try:
        return int(line[at + len(marker) : line.rstrip().rindex("ms)")]) / 1000
    except ValueError:
        return None


class Repository:
    def __init__(self, lab_root: Path, user: LabUser | None, compress: str = "lz4") -> None:
        self.lab_root = lab_root
        self.path = lab_root / "pgbackrest"
        self.config = self.path / "pgbackrest.conf"
        self.user = user
        self.compress = compress
        # Backup label -> when pgBackRest stopped the backup (called pg_backup_stop),
        # on the harness's clock: pgBackRest's own stop time has a resolution of one second.
        self.stops: dict[str, int] = {}
        # Set by the lab: journals each pgBackRest process so that `drills recover` kills it.
        self.started: Callable[[int], None] = lambda pid: None

    def write_config(self, primary: Server) -> None:
        self.path.mkdir(mode=0o700, exist_ok=True)
        for sub in ("repo", "log", "lock", "spool"):
            (self.path / sub).mkdir(mode=0o700, exist_ok=True)
        write_nofollow(
            self.config,
            "[global]\n"
            f"repo1-path={self.path / 'repo'}\n"
            "repo1-retention-full=1000\n"
            f"log-path={self.path / 'log'}\n"
            f"lock-path={self.path / 'lock'}\n"
            f"spool-path={self.path / 'spool'}\n"
            "log-level-console=detail\n"
            "log-level-file=off\n"
            f"compress-type={self.compress}\n"
            "start-fast=y\n"
            "process-max=2\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={primary.datadir}\n"
            f"pg1-port={primary.port}\n"
            f"pg1-socket-path={self.lab_root}\n"
            "pg1-user=postgres\n",
        )
        if self.user is not None:
            for path in (self.path, *self.path.iterdir()):
                chown_nofollow(path, self.user.uid, self.user.gid)

    def _base(self, server: Server | None = None, port: bool = True) -> list[str]:
        """The command line's start; archive-push and restore take no port (nothing to
        connect to)."""
        argv = [PGBACKREST, f"--config={self.config}", f"--stanza={STANZA}"]
        if server is not None:
            argv.append(f"--pg1-path={server.datadir}")
            if port:
                argv.append(f"--pg1-port={server.port}")
        return argv

    def archive_command(self, server: Server) -> str:
        """For postgresql.conf: pushes the server's own WAL (its own pg1-path, so that a
        standby promoted later never pushes another server's files)."""
        # PostgreSQL replaces %p and %f anywhere in the command: a % of the lab's path is %%.
        words = [word.replace("%", "%%") for word in self._base(server, port=False)]
        return shlex.join([*words, "archive-push"]) + " %p"

    def archive_setting(self, server: Server) -> str:
        """`archive_command` as a quoted postgresql.conf value (the shell's quoting kept)."""
        return "'" + self.archive_command(server).replace("'", "''") + "'"

    def run(
        self,
        args: list[str],
        what: str,
        server: Server | None = None,
        on_line: LineHook = print,
        port: bool = True,
    ) -> Ran:
        """Run a pgBackRest command, passing each line of its output to `on_line`."""
        argv = [*self._base(server, port), *args]
        start = time.monotonic_ns()
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                env=ENVIRONMENT,
                cwd=self.lab_root,
                user=self.user.uid if self.user else None,
                group=self.user.gid if self.user else None,
                extra_groups=[] if self.user else None,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise LabError(INSTALL_HINT) from None
        tail: list[str] = []
        own: float | None = None
        assert proc.stdout is not None
        try:
            self.started(proc.pid)
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail = [*tail[-4:], line]
                own = own_seconds(line) if own is None else own
                on_line(line)
            status = proc.wait(timeout=COMMAND_TIMEOUT_S)
        except BaseException:  # its workers too: they share its session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        end = time.monotonic_ns()
        if status != 0:
            problems = [ln for ln in tail if "ERROR" in ln] or tail[-2:]
            raise StepError(f"pgBackRest {what} failed ({status}): {' | '.join(problems)}")
        return Ran((end - start) / 1e9, own, start, end)

    def create_stanza(self, server: Server) -> Ran:
        return self.run(["stanza-create"], "stanza-create", server, on_line=_ignore)

    def backup(self, server: Server, kind: str, on_line: LineHook) -> tuple[Ran, BackupSet]:
        stopped: list[int] = []

        def watch(line: str) -> None:
            # "execute non-exclusive backup stop and wait for all WAL segments to archive":
            # the stop position is taken as pg_backup_stop begins, which then waits for the
            # archiver (its "backup stop archive = ..." line comes ~0.2 s later).
            if "backup stop" in line and not stopped:
                stopped.append(stamped_ns(line))
            on_line(line)

        ran = self.run(["backup", f"--type={kind}"], f"{kind} backup", server, watch)
        sets = self.sets()
        if not sets:
            raise StepError("pgBackRest reported success but lists no backup")
        self.stops[sets[-1].label] = stopped[0] if stopped else ran.end_ns
        return ran, sets[-1]

    def sets(self) -> list[BackupSet]:
        """Every backup in the repository, oldest first."""
        lines: list[str] = []
        self.run(
            ["info", "--output=json", "--log-level-console=warn"],
            "info",
            on_line=lines.append,
        )
        try:
            stanzas = json.loads("\n".join(lines))
        except json.JSONDecodeError as exc:
            raise StepError(f"pgBackRest info gave no JSON: {exc.msg}") from exc
        found = [s for s in stanzas if s.get("name") == STANZA]
        if not found or found[0].get("status", {}).get("code") not in (0, 2):
            message = found[0]["status"]["message"] if found else "no stanza"
            raise StepError(f"pgBackRest repository {self.path / 'repo'}: {message}")
        return [_backup_set(b) for b in found[0].get("backup", [])]

    def restore(self, server: Server, options: list[str], on_line: LineHook) -> Ran:
        return self.run(["restore", *options], "restore", server, on_line, port=False)

    def verify(self) -> str:
        """`pgbackrest verify`: "ok", or what it found wrong, in one line."""
        lines: list[str] = []
        try:
            self.run(["verify"], "verify", on_line=lines.append)
        except StepError as exc:
            return str(exc)
        bad = [ln for ln in lines if "WARN" in ln or "ERROR" in ln or "invalid" in ln]
        return "ok" if not bad else " | ".join(bad[:3])

    def archive_wal_files(self) -> list[Path]:
        """The WAL segments in the repository's archive, every timeline, by name."""
        archive = self.path / "repo" / "archive" / STANZA
        files = [p for p in archive.glob("*/*/*") if p.is_file() and len(p.name) > 24]
        return sorted(files, key=lambda p: p.name)


def stamped_ns(line: str) -> int:
    """When pgBackRest logged `line`, on the harness's monotonic clock (now, without a stamp):
    its output reaches the harness through a pipe, sometimes late."""
    match = _STAMP.match(line)
    if match is None:
        return time.monotonic_ns()
    moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    wall_ns = int(moment.timestamp() * 1000) * 1_000_000
    return time.monotonic_ns() - (time.time_ns() - wall_ns)


def _ignore(line: str) -> None:
    return None


def _backup_set(entry: dict[str, Any]) -> BackupSet:
    info = entry.get("info", {})
    return BackupSet(
        label=str(entry["label"]),
        type=str(entry.get("type", "")),
        start_wall_s=int(entry["timestamp"]["start"]),
        stop_wall_s=int(entry["timestamp"]["stop"]),
        db_bytes=int(info.get("size", 0)),
        repo_bytes=int(info.get("repository", {}).get("size", 0)),
        lsn_stop=str(entry.get("lsn", {}).get("stop", "")),
    )


def archive_current_wal(dsn: str, timeout_s: float = 30.0) -> str:
    """Switch to a new WAL segment and wait until the archiver has pushed the old one, so that
    a restore can replay up to now; return the segment's name."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment = str(row[0])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = conn.execute(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver"
            ).fetchone()
            if done and done[0] is not None and str(done[0])[:24] >= segment:
                return segment
            time.sleep(0.05)
    raise StepError(f"WAL segment {segment} was not archived within {timeout_s:g}s")
