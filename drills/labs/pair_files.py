"""What the `postgres-pair` lab writes into a server's data directory: its settings, and who
may connect (pg_hba.conf, pg_ident.conf).

Nobody is trusted: every connection, over TCP or the Unix socket, replication too, needs the
superuser's password made for the run (scram-sha-256). The one exception is pgBackRest, which
reaches PostgreSQL through the socket with no password: with backups, the servers' OS user alone
is let in there as the superuser (peer authentication, drills.backup.lab.peer_access)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from drills.backup.lab import peer_access
from drills.files import write_nofollow
from drills.labs.credentials import SUPERUSER, dsn, password, pgpass, write_private

HBA = [
    "local all all scram-sha-256",
    "host all all 127.0.0.1/32 scram-sha-256",
    f"host replication {SUPERUSER} 127.0.0.1/32 scram-sha-256",
]


def access_files(backup_os_user: str | None) -> tuple[str, str]:
    """pg_hba.conf and pg_ident.conf; `backup_os_user`: the OS user pgBackRest runs as, when
    the lab has backups."""
    hba, ident = peer_access(backup_os_user) if backup_os_user else ([], [])
    header = "# drills postgres-pair lab: a password for everyone, nobody trusted\n"
    return header + "\n".join([*hba, *HBA]) + "\n", "\n".join(ident) + "\n" if ident else ""


def init_cluster(
    run: Callable[[list[str], str], None],
    initdb: Path,
    datadir: Path,
    passfile: Path,
    owner: tuple[int, int] | None,
) -> None:
    """initdb with a superuser password made now: written to `passfile` for the clients (owned
    by `owner`, the servers' user, so that a standby streams with it too) and handed to initdb
    in a file of its own, removed once read."""
    secret = password()
    write_private(passfile, pgpass(secret), owner)
    pwfile = passfile.with_name("initdb.pw")
    write_private(pwfile, secret + "\n", owner)
    argv = [str(initdb), "-D", str(datadir), "-U", SUPERUSER, "--auth=scram-sha-256"]
    try:
        run([*argv, f"--pwfile={pwfile}", "-N", "-E", "UTF8", "--locale=C"], "initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def write_access(datadir: Path, backup_os_user: str | None) -> None:
    """Replace initdb's pg_hba.conf and pg_ident.conf (kept owned by the servers' user)."""
    hba, ident = access_files(backup_os_user)
    write_nofollow(datadir / "pg_hba.conf", hba)
    write_nofollow(datadir / "pg_ident.conf", ident)


def base_settings(root: Path, port: int) -> dict[str, object]:
    """postgresql.conf settings (already quoted) of a server of the pair."""
    return {
        "cluster_name": "'a'",  # names the server in answers and logs; B overrides it
        "wal_log_hints": "on",  # lets pg_rewind bring a failed primary back as a standby
        "listen_addresses": "'127.0.0.1'",
        "port": port,
        "unix_socket_directories": f"'{root}'",
        "password_encryption": "'scram-sha-256'",
        "max_connections": 60,
        "shared_buffers": "'32MB'",
        "wal_level": "replica",
        "max_wal_senders": 5,
        "wal_keep_size": "'128MB'",
        "hot_standby": "on",
        "wal_receiver_status_interval": "'1s'",
        "log_min_messages": "warning",
    }


def connect_hint(passfile: Path, ports: dict[str, int]) -> str:
    """How an operator reaches a kept lab's servers: the password file, and psql with it."""
    commands = "; ".join(
        f"{name}: psql {shlex.quote(dsn(port, passfile))}" for name, port in ports.items()
    )
    return (
        f"connect with the password file {passfile} (readable by its owner only): "
        f"{commands or '(no server running)'}"
    )
