"""PgBouncer (Debian `pgbouncer`) in transaction mode in front of a test server, on loopback:
its own directory inside the server's, run as the servers' OS user, always stopped."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drills.network.ports import free_port
from tests.postgres_server import OS_USER, Server

BINARY = "/usr/sbin/pgbouncer"
CONFIG = """[databases]
postgres = host=127.0.0.1 port={upstream} dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/users.txt
pool_mode = transaction
default_pool_size = {pool}
max_client_conn = 200
logfile = {root}/pgbouncer.log
"""


def pgbouncer_missing() -> str | None:
    if not Path(BINARY).is_file():
        return "PgBouncer not installed (run `make test`, or apt-get install pgbouncer)"
    return None


@contextmanager
def pgbouncer(server: Server, users: list[str], pool: int = 2) -> Iterator[str]:
    """PgBouncer with `pool` server connections per user; yields a DSN through it (user
    postgres: replace it for another of `users`)."""
    root = server.root / "pgbouncer"
    root.mkdir()
    port = free_port()
    (root / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    (root / "pgbouncer.ini").write_text(
        CONFIG.format(upstream=server.port, port=port, root=root, pool=pool)
    )
    owner = pwd.getpwnam(OS_USER) if os.geteuid() == 0 else None
    if owner is not None:
        shutil.chown(root, owner.pw_uid, owner.pw_gid)
    process = subprocess.Popen(
        [BINARY, str(root / "pgbouncer.ini")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
        extra_groups=[] if owner else None,
        cwd=root,
    )
    try:
        _wait_for(port, process, root)
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes], root: Path) -> None:
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        if process.poll() is not None:
            log = (root / "pgbouncer.log").read_text() if (root / "pgbouncer.log").exists() else ""
            raise RuntimeError(f"pgbouncer exited {process.returncode}: {log[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 10 s")
