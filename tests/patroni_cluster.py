"""A two-member Patroni cluster with one etcd, started by a test itself (not through the lab
code), standing for a cluster a user already runs. Everything listens on free loopback ports and
lives in one temporary directory; the servers run as `postgres` when the tests run as root."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PATRONI = "/usr/bin/patroni"
BIN_DIR = Path("/usr/lib/postgresql/15/bin")
USERNAME = "drills"
PASSWORD = "s3cret-patroni-pw"  # the REST API's; tests check it never shows in an output


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    for program in (PATRONI, shutil.which("etcd") or "etcd", str(BIN_DIR / "initdb")):
        if not Path(program).exists():
            return f"{program} is not installed (make test installs patroni and etcd as root)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no `postgres` OS user to run the servers as"
    return None


def lab_members(sandbox: Path) -> dict[str, str]:
    """The members of a patroni lab running in `sandbox`, read from the configuration files
    the lab wrote: member name -> REST URL (a file still being written is skipped)."""
    found = {}
    for path in sandbox.glob("drills-lab-*/*/patroni.yml"):
        try:
            config = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(config, dict) and "restapi" in config:
            found[config["name"]] = "http://" + config["restapi"]["listen"]
    return found


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Member:
    name: str
    rest_port: int
    pg_port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "patroni.pid"


@dataclass
class PatroniCluster:
    root: Path
    etcd_port: int
    members: list[Member]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    @property
    def dsn(self) -> str:
        hosts = ",".join("127.0.0.1" for _ in self.members)
        ports = ",".join(str(m.pg_port) for m in self.members)
        return (
            f"host={hosts} port={ports} dbname=postgres user=postgres "
            "target_session_attrs=read-write connect_timeout=2"
        )

    def cluster(self) -> dict[str, Any]:
        """GET /cluster from the first member that answers (the test's own view)."""
        for url in self.urls:
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(f"{url}/cluster", timeout=2) as response,
            ):
                data: dict[str, Any] = json.loads(response.read())
                return data
        raise AssertionError("no Patroni member answered")

    def leader(self) -> str | None:
        for member in self.cluster().get("members", []):
            if member.get("role") == "leader" and member.get("state") == "running":
                return str(member["name"])
        return None

    def paused(self) -> bool:
        return bool(self.cluster().get("pause", False))

    def wait_healthy(self, timeout_s: float = 60) -> str:
        """Wait until there is a running leader and every other member streams; the leader."""
        deadline = time.monotonic() + timeout_s
        seen: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):
                seen = self.cluster()
                members = seen.get("members", [])
                leader = self.leader()
                streaming = [m for m in members if m.get("state") in ("streaming", "running")]
                if leader and len(streaming) == len(self.members) and not seen.get("pause"):
                    return leader
            time.sleep(0.2)
        raise AssertionError(f"cluster not healthy within {timeout_s}s: {seen}")


def _as_postgres() -> dict[str, Any]:
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def member_config(cluster: PatroniCluster, member: Member, scope: str) -> dict[str, Any]:
    superuser = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    return {
        "scope": scope,
        "name": member.name,
        "restapi": {
            "listen": f"127.0.0.1:{member.rest_port}",
            "connect_address": f"127.0.0.1:{member.rest_port}",
            "authentication": {"username": USERNAME, "password": PASSWORD},
        },
        "etcd3": {"host": f"127.0.0.1:{cluster.etcd_port}"},
        "bootstrap": {
            "dcs": {
                "ttl": 10,
                "loop_wait": 2,
                "retry_timeout": 5,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"wal_retrieve_retry_interval": "500ms", "wal_log_hints": "on"},
                },
            },
            "initdb": [{"encoding": "UTF8"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{member.pg_port}",
            "connect_address": f"127.0.0.1:{member.pg_port}",
            "data_dir": str(member.dir / "data"),
            "bin_dir": str(BIN_DIR),
            "pgpass": str(member.dir / "pgpass"),
            "authentication": {
                "superuser": {"username": superuser, "password": "pg"},
                "replication": {"username": "replicator", "password": "rep"},
                "rewind": {"username": superuser, "password": "pg"},
            },
            "parameters": {"unix_socket_directories": str(member.dir)},
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
            ],
        },
    }


def _start(cluster: PatroniCluster, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cluster.root,
            start_new_session=True,
            **_as_postgres(),
        )
    cluster.processes.append(proc)
    return proc


def start(cluster: PatroniCluster) -> None:
    etcd_peer = free_ports(1)[0]
    peer = f"http://127.0.0.1:{etcd_peer}"
    client = f"http://127.0.0.1:{cluster.etcd_port}"
    etcd = shutil.which("etcd") or "etcd"
    _start(
        cluster,
        [etcd, "--name", "e", "--data-dir", str(cluster.root / "etcd"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"e={peer}"],
        cluster.root / "etcd.log",
    )  # fmt: skip
    scope = f"drills-test-{os.getpid()}"
    for index, member in enumerate(cluster.members):
        member.dir.mkdir(mode=0o700)
        _chown(member.dir)
        config = member.dir / "patroni.yml"
        config.write_text(yaml.safe_dump(member_config(cluster, member, scope)))
        _chown(config)
        proc = _start(cluster, [PATRONI, str(config)], member.dir / "patroni.log")
        member.pid_file.write_text(f"{proc.pid}\n")
        if index == 0:  # the first member bootstraps alone: it is the first leader
            _wait_for_leader(cluster, member)


def _wait_for_leader(cluster: PatroniCluster, member: Member, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(AssertionError):
            if cluster.leader() == member.name:
                return
        time.sleep(0.2)
    raise AssertionError(f"{member.name} did not bootstrap: {_tail(member.dir / 'patroni.log')}")


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").splitlines()[-8:])
    return ""


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def stop(cluster: PatroniCluster) -> None:
    """Patroni first (it stops PostgreSQL), then etcd; whatever is left is killed."""
    for proc in reversed(cluster.processes):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # PostgreSQL runs in Patroni's group
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


@contextlib.contextmanager
def running_cluster() -> Iterator[PatroniCluster]:
    root = Path(tempfile.mkdtemp(prefix="drills-patroni-"))
    _chown(root)
    etcd_port, *ports = free_ports(5)
    members = [
        Member(f"pg{i + 1}", ports[2 * i], ports[2 * i + 1], root / f"pg{i + 1}")
        for i in range(2)
    ]
    cluster = PatroniCluster(root, etcd_port, members)
    try:
        start(cluster)
        cluster.wait_healthy()
        yield cluster
    finally:
        stop(cluster)
        shutil.rmtree(root, ignore_errors=True)
