"""Helpers for tests against a real Docker engine: containers the test creates, and checks
that drills left nothing behind (paused containers, helpers, labs, iptables rules)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import psycopg

from drills.containers.local_image import NETUTILS_IMAGE, POSTGRES_IMAGE

TEST_LABEL = "org.drills.test"
PRIMARY = """set -e
if [ ! -s /tmp/pgdata/PG_VERSION ]; then
  initdb -D /tmp/pgdata -U postgres --auth=trust --no-locale -E UTF8 -N >/dev/null
  printf 'host all all all trust\\n' >> /tmp/pgdata/pg_hba.conf
fi
exec postgres -D /tmp/pgdata -c listen_addresses='*' -c unix_socket_directories=/tmp
"""


def client() -> docker.DockerClient:
    return docker.from_env()


@contextmanager
def postgres_container(
    labels: dict[str, str] | None = None, network: str | None = None
) -> Iterator[tuple[docker.models.containers.Container, int]]:
    """A PostgreSQL container the test owns, published on 127.0.0.1; removed afterwards."""
    engine = client()
    name = f"drills-test-{uuid.uuid4().hex[:8]}"
    container = engine.containers.run(
        POSTGRES_IMAGE,
        [PRIMARY],
        entrypoint=["/bin/sh", "-c"],
        user="postgres",
        name=name,
        labels={TEST_LABEL: "1", **(labels or {})},
        ports={"5432/tcp": ("127.0.0.1", None)},
        network=network,
        detach=True,
    )
    try:
        container.reload()
        port = int(container.ports["5432/tcp"][0]["HostPort"])
        wait_ready(port)
        yield container, port
    finally:
        container.remove(force=True)


def wait_ready(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", connect_timeout=2):
                return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def answers(port: int, timeout_s: float = 1.0) -> bool:
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres", connect_timeout=max(1, int(timeout_s))
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def iptables_rules(container_id: str) -> list[str]:
    """The filter rules in the container's network namespace (read with the helper image)."""
    output = client().containers.run(
        NETUTILS_IMAGE,
        ["iptables -S"],
        entrypoint=["/bin/sh", "-c"],
        network_mode=f"container:{container_id}",
        cap_add=["NET_ADMIN"],
        remove=True,
    )
    return [line for line in output.decode().splitlines() if line.startswith("-A")]


def drills_leftovers() -> list[str]:
    """Containers and networks drills created (labs, helpers) and paused containers."""
    engine = client()
    found = []
    for label in ("org.drills.lab", "org.drills.helper"):
        for container in engine.containers.list(all=True, filters={"label": label}):
            found.append(f"container {container.name} ({label})")
        for network in engine.networks.list(filters={"label": label}):
            found.append(f"network {network.name} ({label})")
    for container in engine.containers.list(filters={"status": "paused"}):
        found.append(f"paused container {container.name}")
    return found


def allow_all(directory: Path) -> Path:
    """A drills.yaml letting faults touch the test's own containers."""
    path = directory / "drills.yaml"
    path.write_text(
        f"containers:\n  allow:\n    - labels: {{{TEST_LABEL}: '1'}}\n", encoding="utf-8"
    )
    return path
