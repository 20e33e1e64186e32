"""One throwaway PostgreSQL server for integration tests of single-server pieces (probes,
fill, amcheck): its own directory under the system temp directory, a free port, run as the
unprivileged `postgres` OS user when the tests run as root; always stopped and removed."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from drills.labs.postgres_pair import find_bin_dir
from drills.network.ports import free_port

OS_USER = "postgres"


@dataclass
class Server:
    root: Path  # the directory holding everything; the OS user owns it
    datadir: Path
    bin: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def run(self, argv: list[str], what: str) -> None:
        """Run a program as the servers' OS user; raise with its output's tail on failure."""
        result = as_server_user(argv, self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr[-500:]}")


def as_server_user(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    user = pwd.getpwnam(OS_USER) if os.geteuid() == 0 else None
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
        cwd=cwd,
        timeout=300,
        check=False,
    )


@contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[Server]:
    """A running server with `settings` appended to postgresql.conf (values as written there);
    `{root}` in a value is the server's directory."""
    bin_dir = find_bin_dir(None)
    root = Path(tempfile.mkdtemp(prefix="drills-test-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = Server(root, root / "data", bin_dir, free_port())
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(server.datadir), "-U", "postgres"]
        server.run([*initdb, "--auth=trust", "-N", "-E", "UTF8", "--locale=C"], "initdb")
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(server.port),
            "unix_socket_directories": f"'{root}'",
            "shared_buffers": "'32MB'",
            **{key: value.replace("{root}", str(root)) for key, value in (settings or {}).items()},
        }
        with (server.datadir / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in lines.items()))
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(server.datadir)]
        server.run([*pg_ctl, "-l", str(root / "server.log"), "-w", "start"], "pg_ctl start")
        yield server
    finally:
        if (server.datadir / "postmaster.pid").exists():
            stop = ["-m", "immediate", "-w", "stop"]
            as_server_user([str(bin_dir / "pg_ctl"), "-D", str(server.datadir), *stop], root)
        shutil.rmtree(root, ignore_errors=True)
