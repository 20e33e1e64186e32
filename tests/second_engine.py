"""A second Docker engine of the test's own, beside the machine's: its own socket, data root,
exec root and containerd namespace, and a network namespace of its own, so that nothing it
does to networks (a dockerd without a bridge removes `docker0`) reaches the machine's engine.
It stands for the other data centre's engine. A veth pair joins its namespace to this machine
(10.N.0.1 here, 10.N.0.2 there): its containers on the host network listen on 10.N.0.2, ports
it publishes on 10.N.0.2 are reached there, and its containers on a network of their own reach
this machine at 10.N.0.1 through NAT, as a real engine's do. The local netutils image is built
into it from this host's binaries."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from drills.containers.local_image import NETUTILS_IMAGE, build, netutils_tree
from tests.sshhost import free_subnet, veth


def missing() -> str | None:
    if shutil.which("dockerd") is None:
        return "no dockerd (make docker installs docker.io)"
    try:
        docker.from_env().ping()
    except docker.errors.DockerException as exc:
        return f"the machine's Docker engine does not answer: {exc}"
    return None


@dataclass
class Engine:
    host: str  # unix:///.../docker.sock
    client: docker.DockerClient
    log: Path
    address: str  # this engine's host network, as this machine reaches it
    here: str  # this machine, as that engine's containers reach it


@contextmanager
def second_engine(directory: Path) -> Iterator[Engine]:
    tag = uuid.uuid4().hex[:8]
    directory.mkdir(parents=True, exist_ok=True)
    # A short socket path: a unix socket's path is limited to about 100 bytes.
    run_dir = Path(f"/run/drills-test-engine-{tag}")
    run_dir.mkdir(mode=0o700)
    host = f"unix://{run_dir}/docker.sock"
    log = directory / "dockerd.log"
    netns, subnet = f"drills-engine-{tag}", free_subnet()
    argv = [
        # nsenter, not `ip netns exec`: that also remounts /sys, hiding the cgroups dockerd needs
        "nsenter", f"--net=/run/netns/{netns}",
        "dockerd", "--host", host, "--data-root", str(directory / "data"),
        "--exec-root", str(run_dir / "exec"), "--pidfile", str(run_dir / "docker.pid"),
        "--storage-driver", "vfs", "--bridge", "none", "--iptables=false", "--ip6tables=false",
        "--containerd-namespace", f"drills-{tag}", "--containerd-plugins-namespace",
        f"drills-{tag}-plugins",
    ]  # fmt: skip
    dockerd = client = None
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"],
                       check=True, timeout=30)  # fmt: skip
        veth(netns, f"de{tag}", subnet, 0)
        inside = ["ip", "netns", "exec", netns]
        subprocess.run([*inside, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=30)
        masquerade = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", f"de{tag}x"]
        subprocess.run([*inside, *masquerade, "-j", "MASQUERADE"], check=True, timeout=30)
        with log.open("wb") as out:
            dockerd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while True:
            assert dockerd.poll() is None, f"dockerd exited: {log.read_text()[-2000:]}"
            try:
                client = docker.DockerClient(base_url=host, timeout=60)
                client.ping()
                break
            except docker.errors.DockerException:
                assert time.monotonic() < deadline, f"dockerd did not answer: {log.read_text()}"
                time.sleep(0.2)
        build(client, NETUTILS_IMAGE, netutils_tree(), "/usr/sbin:/usr/bin")
        yield Engine(host, client, log, f"10.{subnet}.0.2", f"10.{subnet}.0.1")
    finally:
        if client is not None:
            for container in client.containers.list(all=True):
                container.remove(force=True)
            client.close()
        if dockerd is not None:
            dockerd.terminate()
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait(timeout=10)
        # dockerd leaves its handle on the namespace mounted under its exec root: unmounted,
        # or the namespace (and the veth) outlive the test.
        for mount in reversed(_mounts_under(run_dir)):
            subprocess.run(["umount", mount], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", f"de{tag}"], capture_output=True, timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(directory / "data", ignore_errors=True)


def _mounts_under(directory: Path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p.startswith(f"{directory}/")]


def sleeper(client: docker.DockerClient, name: str) -> docker.models.containers.Container:
    """A container that only sleeps, with no network: something to pause and stop."""
    return client.containers.run(
        NETUTILS_IMAGE, ["sleep 3600"], entrypoint=["/bin/sh", "-c"], name=name,
        network_mode="none", labels={"org.drills.test": "1"}, detach=True,
    )  # fmt: skip
