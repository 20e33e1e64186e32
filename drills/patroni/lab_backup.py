"""Backups in the `patroni` lab (its `backup:` setting): every member archives its own WAL into
one pgBackRest repository in the lab's directory, and once the cluster is up the stanza, the
fill and the first full backup are made on the leader.

pgBackRest reaches PostgreSQL only through a Unix socket, and gets no password (its environment
is its own): each member also listens in the lab's directory (the repository's
pg1-socket-path), and there the superuser is let in by peer authentication for the members'
OS user alone (a pg_ident map), the user that owns every data directory anyway. Every other
connection still needs its password."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drills.backup.lab import (
    BackupConfig,
    LabBackups,
    archive_parameters,
    os_user_name,
    peer_access,
)
from drills.backup.pgbackrest import ENVIRONMENT, Repository, Server
from drills.errors import LabError
from drills.history import Event
from drills.journal import JournalEntry
from drills.labs.lab_process import LabUser

FILL_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class MemberBackup:
    """What one member's Patroni configuration gets when the lab has backups."""

    cluster_parameters: dict[str, str]  # the DCS's: the same on every member
    parameters: dict[str, str]  # its own: archive_command with its own --pg1-path, sockets
    hba: list[str] = field(default_factory=list)  # before the lab's own lines
    ident: list[str] = field(default_factory=list)


def member_backup(
    config: BackupConfig, repository: Repository, server: Server, home: Path, os_user: str
) -> MemberBackup:
    parameters = archive_parameters(config, repository, server)
    command = parameters.pop("archive_command")
    hba, ident = peer_access(os_user)
    return MemberBackup(
        cluster_parameters=parameters,
        parameters={
            "archive_command": command,
            # The member's own directory first: Patroni connects through the first one.
            "unix_socket_directories": f"{home},{repository.lab_root}",
        },
        hba=hba,
        ident=ident,
    )


def client_runner(root: Path, passfile: Path) -> Callable[[list[str], str], None]:
    """Runs a client program (pgbench) as the harness, with the harness's password file and
    nothing else of its environment."""

    def run(argv: list[str], what: str) -> None:
        env = {**ENVIRONMENT, "PGPASSFILE": str(passfile)}
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=root,
            env=env,
            timeout=FILL_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise LabError(f"{what} failed ({result.returncode}): {tail}")

    return run


class PatroniBackups:
    """The lab's repository and what each member needs to archive into it."""

    def __init__(
        self,
        config: BackupConfig,
        root: Path,
        user: LabUser | None,
        progress: Callable[[str], None],
        events: Callable[[Event], None] | None,
        journal: Callable[[JournalEntry], None],
    ) -> None:
        self.backups = LabBackups(config, root, user, progress, events, journal)
        self.root = root
        self.os_user = os_user_name(user)

    @property
    def repository(self) -> Repository:
        return self.backups.repository

    def member(self, server: Server, home: Path) -> MemberBackup:
        return member_backup(self.backups.config, self.repository, server, home, self.os_user)

    def prepare(self, leader: Server, pgbench: Path, passfile: Path) -> dict[str, object]:
        """Stanza, fill and first full backup, on the leader; facts for the run record."""
        run = client_runner(self.root, passfile)
        return self.backups.prepare(leader, pgbench, run, passfile)
