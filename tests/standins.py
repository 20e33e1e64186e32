"""Loopback stand-ins for two data centres, for the example of docs/own-systems.md:

- dc1's Docker engine is this machine's, dc2's a second engine of the tests' own
  (tests/second_engine.py); each runs a container `shop`, an HTTP server on this host's
  network (the host's Python, mounted read-only), on a port of its own;
- HAProxy on 127.0.0.1 balances the two shops: the load balancer URL;
- dc1's database host is a network namespace with an sshd (tests/sshhost.py) running
  PostgreSQL on its service address, with an existing table `shop.orders` and a role
  `drills_clerk` that may only INSERT into and SELECT from it.

`estate()` makes them and yields the environment the example scenario reads.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import docker
import psycopg
from psycopg import sql

from drills.containers.local_image import NETUTILS_IMAGE
from drills.labs.dual_active import find_haproxy
from drills.labs.postgres_pair import find_bin_dir
from drills.network.ports import free_port
from tests.second_engine import Engine
from tests.sshhost import SshHost

OS_USER = "postgres"
LOCAL_ENGINE = "unix:///var/run/docker.sock"
SCHEMA = [
    "CREATE SCHEMA shop",
    "CREATE TABLE shop.orders (ref bigint NOT NULL, note text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE ROLE drills_clerk LOGIN PASSWORD {}",
    "GRANT USAGE ON SCHEMA shop TO drills_clerk",
    "GRANT INSERT, SELECT ON shop.orders TO drills_clerk",
]


def _wait_port(host: str, port: int, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} does not listen on {host}:{port}"
            time.sleep(0.1)


@contextmanager
def shop(client: docker.DockerClient, address: str, port: int) -> Iterator[None]:
    """The container `shop` on `client`'s engine, serving HTTP on `address`:`port` of its
    engine's host network with this host's Python (its directories mounted read-only)."""
    python = os.path.realpath(sys.executable)
    container = client.containers.run(
        NETUTILS_IMAGE,
        [f"exec {python} -m http.server {port} --bind {address} --directory /usr"],
        entrypoint=["/bin/sh", "-c"],
        name="shop",
        network_mode="host",
        volumes={path: {"bind": path, "mode": "ro"} for path in {"/usr", sys.base_prefix}},
        labels={"org.drills.test": "1"},
        detach=True,
    )
    try:
        _wait_port(address, port, "a shop")
        yield
    finally:
        container.remove(force=True)


@contextmanager
def balancer(directory: Path, shops: list[tuple[str, int]]) -> Iterator[int]:
    port = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(
        "defaults\n  mode http\n  timeout connect 300ms\n  timeout client 5s\n"
        "  timeout server 2s\n  retries 2\n  option redispatch\n"
        f"frontend shop\n  bind 127.0.0.1:{port}\n  default_backend shops\n"
        "backend shops\n  balance roundrobin\n  default-server inter 200ms fall 1 rise 2\n"
        + "".join(f"  server dc{i + 1} {a}:{p} check\n" for i, (a, p) in enumerate(shops))
    )
    proc = subprocess.Popen([find_haproxy(None), "-db", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_port("127.0.0.1", port, "HAProxy")
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _as_postgres(host: SshHost | None, argv: list[str], cwd: Path) -> None:
    command = ["runuser", "-u", OS_USER, "--", *argv]
    done = subprocess.run(host.inside(*command) if host else command, capture_output=True,
                          text=True, cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, f"{argv[0]}: {done.stderr[-500:]}"


@contextmanager
def database(host: SshHost) -> Iterator[dict[str, str]]:
    """PostgreSQL inside the host's namespace, listening on its service address."""
    bin_dir = find_bin_dir(None)
    root = Path(tempfile.mkdtemp(prefix="drills-test-pg-"))  # pytest's own is root's alone
    entry = pwd.getpwnam(OS_USER)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    data, password = root / "data", secrets.token_urlsafe(16)
    _as_postgres(None, [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-N"], root)  # fmt: skip
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '{host.service_address}'\nport = 5432\n"
                   f"unix_socket_directories = '{root}'\nshared_buffers = '32MB'\n")  # fmt: skip
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.0.0.0/8 scram-sha-256\n")
    pg_ctl = str(bin_dir / "pg_ctl")
    start = [pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "start"]
    _as_postgres(host, start, root)
    try:
        with psycopg.connect(host=str(root), user="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(host=str(root), user="postgres", dbname="shop") as conn:
            for statement in SCHEMA:  # DDL takes no parameters: the password as a literal
                conn.execute(sql.SQL(statement).format(sql.Literal(password)))
        yield {
            "DB_HOST": host.address,
            "DB_ADDR": host.service_address,
            "PGDATA": str(data),
            "DRILLS_CLERK_PASSWORD": password,
        }
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(["pkill", "-CONT", "-f", "--", f"-D {data}"], check=False)
            _as_postgres(host, [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], root)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def estate(directory: Path, host: SshHost, dc2: Engine) -> Iterator[dict[str, str]]:
    """Every stand-in, and the environment the example reads (addresses, files, password)."""
    with ExitStack() as stack:
        shops = [("127.0.0.1", free_port()), (dc2.address, free_port())]
        stack.enter_context(shop(docker.from_env(), *shops[0]))
        stack.enter_context(shop(dc2.client, *shops[1]))
        lb = stack.enter_context(balancer(directory, shops))
        env = stack.enter_context(database(host))
        allow = directory / "drills.yaml"
        allow.write_text(
            f"containers:\n  allow:\n    - name: shop\nhosts:\n  allow: [{host.address}]\n"
        )
        yield env | {
            "DC1_ENGINE": LOCAL_ENGINE,
            "DC2_ENGINE": dc2.host,
            "SHOP_URL": f"http://127.0.0.1:{lb}/",
            "SSH_KEY": str(host.key),
            "SSH_KNOWN_HOSTS": str(host.known_hosts),
            "DRILLS_CONFIG": str(allow),
        }
