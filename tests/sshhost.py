"""A "host" of the test's own for host targets: a network namespace with an sshd in it.

Two veth pairs join it to this machine: the management path (10.N.0.1 here, 10.N.0.2 there),
on which sshd listens, and the service path (10.N.1.1 here, 10.N.1.2 there), on which the
test's service listens. A partition on the host cuts the service path and leaves the harness's
SSH connection alone. Keys and known_hosts are made for the test; root logs in with its key.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


def missing() -> str | None:
    """Why a host of the test's own cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces and sshd need root"
    if not (SSHD.is_file() and os.access(SSHD, os.X_OK)):
        return f"no {SSHD} (run tools/ensure-test-packages as root: openssh-server)"
    for tool in ("ssh", "ssh-keygen", "ip", "iptables"):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (run tools/ensure-test-packages as root)"
    return None


@dataclass
class SshHost:
    netns: str
    subnet: int  # N of 10.N.*
    key: Path
    known_hosts: Path
    sshd_log: Path

    @property
    def address(self) -> str:
        return f"10.{self.subnet}.0.2"

    @property
    def service_address(self) -> str:
        return f"10.{self.subnet}.1.2"

    @property
    def client_address(self) -> str:
        """This machine's address on the service path: what a partition cuts."""
        return f"10.{self.subnet}.1.1"

    def yaml(self) -> str:
        return f"{{ssh: root@{self.address}, key: {self.key}, known_hosts: {self.known_hosts}}}"

    def inside(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, *argv: str) -> str:
        done = subprocess.run(self.inside(*argv), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def drills_rules(self) -> list[str]:
        return [r for r in self.run("iptables", "-S").splitlines() if "drills:" in r]


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def free_subnet() -> int:
    routes = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for subnet in random.sample(range(200, 250), 50):
        if f"10.{subnet}." not in routes:
            return subnet
    raise AssertionError("no free 10.N.0.0/16 for the test's host")


def veth(netns: str, here: str, subnet: int, third: int) -> None:
    """A veth pair from this machine (`here`, 10.N.third.1) into `netns` (10.N.third.2)."""
    there = f"{here}x"
    _sh("ip", "link", "add", here, "type", "veth", "peer", "name", there)
    _sh("ip", "link", "set", there, "netns", netns)
    _sh("ip", "addr", "add", f"10.{subnet}.{third}.1/24", "dev", here)
    _sh("ip", "link", "set", here, "up")
    inside = ["ip", "netns", "exec", netns, "ip"]
    _sh(*inside, "addr", "add", f"10.{subnet}.{third}.2/24", "dev", there)
    _sh(*inside, "link", "set", there, "up")


def _keys(directory: Path) -> None:
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(directory / key)],
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )


def wait_accepting(address: str, sshd: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        if sshd.poll() is not None:
            raise AssertionError(f"sshd exited with {sshd.returncode}: {log.read_text()}")
        try:
            with socket.create_connection((address, 22), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                why = f"sshd did not listen on {address}:22: {log.read_text()}"
                raise AssertionError(why) from None
            time.sleep(0.05)


def host_files(directory: Path) -> tuple[SshHost, Path]:
    """A host in a new namespace's name: its keys, known_hosts and sshd configuration."""
    netns, subnet = f"drills-{uuid.uuid4().hex[:8]}", free_subnet()
    directory.mkdir(parents=True, exist_ok=True)
    _keys(directory)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    host = SshHost(netns, subnet, directory / "client_key", directory / "known_hosts",
                   directory / "sshd.log")  # fmt: skip
    host.known_hosts.write_text(f"{host.address} {(directory / 'host_key.pub').read_text()}")
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress {host.address}\nPort 22\nHostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"PidFile {directory / 'sshd.pid'}\nStrictModes no\n"
    )
    return host, config


@contextmanager
def host_namespace(host: SshHost) -> Iterator[str]:
    """The host's namespace with its two links; yields the links' tag. Removed on the way out."""
    tag = uuid.uuid4().hex[:6]
    _sh("ip", "netns", "add", host.netns)
    try:
        _sh("ip", "netns", "exec", host.netns, "ip", "link", "set", "lo", "up")
        veth(host.netns, f"dm{tag}", host.subnet, 0)
        veth(host.netns, f"ds{tag}", host.subnet, 1)
        yield tag
    finally:
        subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)
        for link in (f"dm{tag}", f"ds{tag}"):  # gone with the namespace's end; just in case
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)


@contextmanager
def ssh_host(directory: Path) -> Iterator[SshHost]:
    """The namespace, its links and its sshd, removed on the way out whatever happened."""
    host, config = host_files(directory)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    sshd = None
    with host_namespace(host):
        try:
            with host.sshd_log.open("wb") as log:
                sshd = subprocess.Popen(
                    host.inside(str(SSHD), "-D", "-e", "-f", str(config)),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )  # fmt: skip
            wait_accepting(host.address, sshd, host.sshd_log)
            yield host
        finally:
            if sshd is not None:
                sshd.terminate()
                sshd.wait(timeout=10)


def web_service(host: SshHost, directory: Path) -> tuple[int, Path, str]:
    """An HTTP server on the host's service address: its port, pid file, and the command that
    starts it (detached, writing the pid file), run once here to start it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    pid_file = directory / "web.pid"
    # Detached: nothing of the SSH session (its output) is left open, or ssh would wait.
    start = (
        f"(cd {directory} && exec setsid {sys.executable} -m http.server {port} "
        f"--bind {host.service_address}) >/dev/null 2>&1 </dev/null & echo $! > {pid_file}"
    )
    subprocess.run(host.inside("sh", "-c", start), check=True, timeout=30)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host.service_address, port), timeout=0.5).close()
            return port, pid_file, start
        except OSError:
            assert time.monotonic() < deadline, "the web service did not start"
            time.sleep(0.05)
