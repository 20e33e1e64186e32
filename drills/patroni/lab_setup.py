"""What the `patroni` lab checks and prepares before it starts a server: its programs, the OS
user the members run as, their environment; and the sweep that leaves nothing behind."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from drills.childenv import child_environ
from drills.errors import LabError
from drills.labs.dual_active import find_haproxy
from drills.labs.lab_process import LabUser, processes_in
from drills.labs.postgres_pair import find_bin_dir
from drills.patroni.lab_config import PatroniLabConfig
from drills.proctree import alive, signal_pids

LAB_PREFIX = "drills-lab-"
INSTALL_HINT = (
    "{} not found: install Patroni, etcd and HAProxy (Debian/Ubuntu: apt-get install patroni "
    "etcd-server haproxy), or set lab.{}"
)
# Variables that would reconfigure the servers behind the lab's back.
FOREIGN_ENV = ("PG", "PATRONI_", "ETCD", "PYTHONPATH", "PYTHONHOME", "HAPROXY")


@dataclass(frozen=True)
class Tools:
    patroni: str
    etcd: str
    haproxy: str
    bin_dir: Path  # PostgreSQL's


def _program(configured: str | None, name: str, key: str) -> str:
    for candidate in (configured, shutil.which(name), f"/usr/bin/{name}", f"/usr/sbin/{name}"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
        if configured:
            break
    raise LabError(INSTALL_HINT.format(name.capitalize() if name != "etcd" else "etcd", key))


def find_tools(cfg: PatroniLabConfig) -> Tools:
    patroni = _program(cfg.patroni, "patroni", "patroni")
    etcd = _program(cfg.etcd, "etcd", "etcd")
    try:
        haproxy = find_haproxy(cfg.haproxy)
    except LabError:
        raise LabError(INSTALL_HINT.format("HAProxy", "haproxy")) from None
    return Tools(patroni, etcd, haproxy, find_bin_dir(cfg.bin_dir))


def lab_user(name: str) -> LabUser | None:
    """The unprivileged user the members run as when the harness is root (initdb refuses
    root); None otherwise (they run as the harness does)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise LabError(
            f"running as root, the Patroni members need an unprivileged OS user and {name!r} "
            "does not exist (create it, or set lab.os_user)"
        ) from None
    return LabUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def lab_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in child_environ().items() if not k.startswith(FOREIGN_ENV)}
    # Patroni's temporary files (initdb's password file) stay inside the lab; its log lines
    # reach the log file as they are written.
    return env | {"TMPDIR": str(root), "PYTHONUNBUFFERED": "1"}


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=20, check=False, env=child_environ()
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def versions(tools: Tools) -> dict[str, str]:
    return {
        "patroni": _version([tools.patroni, "--version"]),
        "etcd": _version([tools.etcd, "--version"]),
        "postgres": _version([str(tools.bin_dir / "postgres"), "--version"]),
        "haproxy": _version([tools.haproxy, "-v"]),
    }


def kill_leftovers(root: Path, bin_dir: Path) -> None:
    """SIGKILL every PostgreSQL process still working inside the lab's directory: a
    postmaster that Patroni was starting when it was killed is nobody's child."""
    for _ in range(2):
        pids = processes_in(str(root), os.path.realpath(bin_dir))
        if not pids:
            return
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
