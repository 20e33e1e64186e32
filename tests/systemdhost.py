"""A "host" run by systemd, of the test's own, for unit targets: tests/sshhost.py's network
namespace and links, with a systemd of its own as pid 1 of a new PID namespace in it, and the
host's sshd a unit of that systemd, so that `systemctl` in an SSH session there talks to it.

That systemd is kept off this machine: a mount namespace with its own /run (its control
socket) and a cgroup namespace rooted in a cgroup made for it, with the unified hierarchy
mounted there, so the cgroups it makes stay under that one; it reads units only from the
test's directory (SYSTEMD_UNIT_PATH), and every unit has DefaultDependencies=no, so it starts
nothing of this machine's. Killing it ends every process of the namespace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.sshhost import SSHD, SshHost, host_files, host_namespace, wait_accepting

SYSTEMD = Path("/lib/systemd/systemd")
TARGET = "drills-test.target"


def missing() -> str | None:
    """Why a systemd host of the test's own cannot be made here (None: it can)."""
    if not SYSTEMD.is_file() or shutil.which("systemctl") is None:
        return f"no {SYSTEMD} or systemctl (apt-get install systemd)"
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "no unshare/nsenter (util-linux)"
    if _unified() is None:
        return "no cgroup2 hierarchy mounted (systemd in a namespace needs one to root it in)"
    return None


def _unified() -> Path | None:
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    return None


@dataclass
class SystemdHost(SshHost):
    units: Path = Path()
    cgroup: Path = Path()

    def systemctl(self, *args: str) -> str:
        """systemctl inside the host, run the way a drill's SSH session runs it."""
        return self.ssh("systemctl", *args)

    def ssh(self, *argv: str) -> str:
        done = subprocess.run(
            ["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "BatchMode=yes", f"root@{self.address}", "--", *argv],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.systemctl("show", f"--property={','.join(properties)}", "--", unit)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit(service: str) -> str:
    return f"[Unit]\nDefaultDependencies=no\n\n[Service]\n{service.strip()}\n"


@contextmanager
def systemd_host(
    directory: Path, units: Callable[[SshHost], dict[str, str]]
) -> Iterator[SystemdHost]:
    """The host with its sshd and `units` (name -> [Service] section, made knowing the host's
    addresses) started at boot. sshd runs without PAM: sessions stay in its unit's cgroup."""
    plain, config = host_files(directory)
    host = SystemdHost(**vars(plain), units=directory / "units")
    host.units.mkdir()
    wanted = {"ssh-test.service": f"ExecStart={SSHD} -D -e -f {config}\nRuntimeDirectory=sshd"}
    wanted |= units(host)
    for name, service in wanted.items():
        (host.units / name).write_text(unit(service))
    (host.units / TARGET).write_text(f"[Unit]\nWants={' '.join(wanted)}\n")
    unified = _unified()
    assert unified is not None
    host.cgroup = unified / f"drills-test-{uuid.uuid4().hex[:8]}"
    boot = directory / "boot.sh"
    boot.write_text(
        "set -e\nmount -t tmpfs tmpfs /run\nmount -t cgroup2 cgroup2 /sys/fs/cgroup\n"
        f"exec env SYSTEMD_UNIT_PATH={host.units} container=drills-test {SYSTEMD} "
        f"--unit={TARGET} --log-target=console --show-status=no\n"
    )
    with host_namespace(host):
        host.cgroup.mkdir()
        systemd = None
        try:
            with host.sshd_log.open("wb") as log:
                systemd = subprocess.Popen(
                    ["sh", "-c", f"echo $$ > {host.cgroup}/cgroup.procs && exec nsenter "
                     f"--net=/run/netns/{host.netns} unshare --cgroup --pid --fork --mount "
                     f"--mount-proc --propagation private sh {boot}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )  # fmt: skip
            wait_accepting(host.address, systemd, host.sshd_log)
            yield host
        finally:
            if systemd is not None:
                _end(host.cgroup, systemd)
            _remove_cgroups(host.cgroup)


def _end(cgroup: Path, launcher: subprocess.Popen[bytes]) -> None:
    """SIGKILL to every process under the host's cgroup, again until none is left (the PID
    namespace ends with its systemd), then wait for the launcher."""
    for _ in range(50):
        pids = [int(p) for f in cgroup.rglob("cgroup.procs") for p in f.read_text().split()]
        if not pids:
            break
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    try:
        launcher.wait(timeout=10)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait(timeout=10)


def _remove_cgroups(cgroup: Path) -> None:
    if not cgroup.exists():
        return
    for directory in sorted(
        (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
    ):
        directory.rmdir()
    cgroup.rmdir()
