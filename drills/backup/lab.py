"""Backups in a PostgreSQL lab: the `backup:` setting, the archive settings it gives the
servers, and what the lab does before the first step (stanza, data of the requested size, a
full backup). The nodes that can be backed up and restored have the BACKED ability."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from drills.abilities import Ability
from drills.backup.fill import fill_database
from drills.backup.pgbackrest import BackupSet, Repository, Server, find_pgbackrest
from drills.backup.progress import TransferProgress
from drills.backup.sizes import Size
from drills.durations import Duration
from drills.history import Event
from drills.journal import JournalEntry
from drills.labs.lab_process import LabServer, LabUser
from drills.model import StrictModel

# pgBackRest reaches PostgreSQL only through a Unix socket, and gets no password (its
# environment is its own): there the superuser is let in by peer authentication for the
# servers' OS user alone, the user that owns every data directory anyway.
IDENT_MAP = "drills-backup"


def os_user_name(user: LabUser | None) -> str:
    """Who the servers (and pgBackRest) run as: the lab's user under root, else the harness's."""
    return user.name if user is not None else pwd.getpwuid(os.geteuid()).pw_name


def peer_access(os_user: str) -> tuple[list[str], list[str]]:
    """pg_hba.conf lines (before the lab's own) and pg_ident.conf lines that let `os_user` in
    as the superuser through the Unix socket, for pgBackRest."""
    return [f"local all postgres peer map={IDENT_MAP}"], [f"{IDENT_MAP} {os_user} postgres"]


class BackupConfig(StrictModel):
    archive_timeout: Duration = Field(
        60.0, description="PostgreSQL's archive_timeout: the longest a WAL segment waits"
    )
    size: Size | None = Field(
        None,
        description="fill the database to about this size (pgbench -i) before the first "
        "backup, so that a restore is timed on data, e.g. 1GB",
    )
    compress: Literal["lz4", "gz", "zst", "none"] = Field(
        "lz4", description="pgBackRest's compress-type for backups and archived WAL"
    )


@runtime_checkable
class BackupSource(Protocol):
    """A lab's PostgreSQL server that pgBackRest backs up into the lab's repository."""

    def backups(self) -> Repository:
        """The lab's repository (StepError when the lab has none)."""
        ...

    def server(self) -> Server: ...


@runtime_checkable
class Backed(BackupSource, Protocol):
    """A lab's PostgreSQL server with a pgBackRest repository behind it, that the harness may
    also stop, restore and start again."""

    def local_dsn(self) -> str:
        """A superuser connection straight to the server, not through any link."""
        ...

    def standby_conninfo(self, primary: object) -> str:
        """primary_conninfo for following `primary` as a standby."""
        ...

    def stop_server(self) -> None:
        """Fast shutdown, or kill if that fails; nothing of it left running."""
        ...

    def start_server(self) -> None: ...

    def running(self) -> bool:
        """Whether the server process is alive."""
        ...

    def own_configuration(self) -> None:
        """Make restored files this node's own: its port, name and archive_command."""
        ...

    def kill_server(self) -> None:
        """SIGKILL the server and everything it runs: no shutdown checkpoint, no archiving."""
        ...

    def server_log(self) -> Path: ...

    def program_dir(self) -> Path:
        """Where the server's programs are (pg_amcheck, pgbench...)."""
        ...


BACKUP_SOURCE: Ability[BackupSource] = Ability(
    BackupSource,
    "has no backups",
    "only a lab's PostgreSQL server with the lab's `backup:` setting is backed up",
)
BACKED: Ability[Backed] = Ability(
    Backed,
    "has no backups",
    "only a lab's PostgreSQL server with the lab's `backup:` setting is backed up",
)


def archive_parameters(
    config: BackupConfig, repository: Repository, server: Server
) -> dict[str, str]:
    """PostgreSQL parameters (unquoted values) that archive WAL into the repository."""
    return {
        "archive_mode": "on",
        "archive_command": repository.archive_command(server),
        "archive_timeout": f"{max(1, round(config.archive_timeout))}s",
        "track_commit_timestamp": "on",  # an incident's commit time, read back by the harness
        "log_timezone": "UTC",  # server log times are read back (redo start / done)
    }


def archive_settings(
    config: BackupConfig, repository: Repository, server: Server
) -> dict[str, str]:
    """postgresql.conf settings (already quoted) that archive WAL into the repository."""
    return {
        key: value if value == "on" else "'" + value.replace("'", "''") + "'"
        for key, value in archive_parameters(config, repository, server).items()
    }


def transfer_lines(
    command: Literal["backup", "restore"], progress: Callable[[str], None]
) -> Callable[[str], None]:
    """A pgBackRest output hook that shows bytes done and rate at most once a second."""
    tracker = TransferProgress(command)

    def feed(line: str) -> None:
        tracker.feed(line)
        if tracker.due():
            progress(f"  {tracker.message()}")

    return feed


class LabBackups:
    """The repository of one lab, set up before the lab's first step."""

    def __init__(
        self,
        config: BackupConfig,
        root: Path,
        user: LabUser | None,
        progress: Callable[[str], None],
        events: Callable[[Event], None] | None,
        journal: Callable[[JournalEntry], None],
    ) -> None:
        find_pgbackrest()  # before anything is made: a missing tool fails the lab at once
        self.config = config
        self.repository = Repository(root, user, config.compress)
        self.repository.started = lambda pid: _journal_started(journal, pid)
        self.progress = progress
        self.events = events
        self.first: BackupSet | None = None

    def settings(self, server: Server) -> dict[str, str]:
        return archive_settings(self.config, self.repository, server)

    def prepare(
        self,
        primary: Server,
        pgbench: Path,
        run: Callable[[list[str], str], None],
        passfile: Path | None = None,
    ) -> dict[str, object]:
        """Stanza, data, first full backup; return facts for the run record. `passfile`: the
        harness's password file for the primary, when its connections need one."""
        self.repository.write_config(primary)
        self.repository.create_stanza(primary)
        facts: dict[str, object] = {"repository": str(self.repository.path / "repo")}
        if self.config.size is not None:
            self.progress(f"lab: filling the database to about {self.config.size:,} bytes")
            filled = fill_database(
                pgbench, "127.0.0.1", primary.port, self.config.size, run, self.progress, passfile
            )
            facts |= {"db_bytes": filled.db_bytes, "fill_s": round(filled.seconds, 3)}
            self.progress(
                f"lab: database filled: {filled.db_bytes / 1e6:,.0f} MB in {filled.seconds:.1f}s"
            )
        self.progress("lab: full backup before the first step")
        ran, first = self.repository.backup(
            primary, "full", transfer_lines("backup", self.progress)
        )
        self.first = first
        if self.events is not None:
            stop = self.repository.stops[first.label]
            self.events(Event("pgbackrest", "backup", f"full {first.label} stopped", stop))
        self.progress(
            f"lab: full backup {first.label}: {first.db_bytes / 1e6:,.0f} MB in {ran.seconds:.1f}s"
        )
        return facts | {
            "first_backup": first.label,
            "backup_s": round(ran.seconds, 3),
            "backup_db_bytes": first.db_bytes,
        }


def _journal_started(journal: Callable[[JournalEntry], None], pid: int) -> None:
    """Journal a pgBackRest process just started, unless it is gone already."""
    entry = LabServer.started(pid)
    if entry is not None:
        journal(entry)
