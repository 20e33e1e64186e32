"""Shared fixtures: a private TMPDIR per test, a drills CLI runner, and leftover checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def postgres_missing() -> str | None:
    """Why the PostgreSQL lab cannot run here, or None when it can."""
    from drills.errors import LabError
    from drills.labs.postgres_pair import find_bin_dir

    try:
        find_bin_dir(None)
    except LabError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = postgres_missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"PostgreSQL lab cannot run: {reason} (run `make postgres`)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    reports: Path

    def record(self) -> dict[str, Any]:
        records = sorted(p for p in self.reports.glob("*.json"))
        assert len(records) == 1, f"expected one record in {self.reports}: {records}"
        data: dict[str, Any] = json.loads(records[0].read_text())
        return data

    @property
    def record_path(self) -> Path:
        return sorted(self.reports.glob("*.json"))[0]


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """A directory used as TMPDIR by the drill under test; it must be empty afterwards.

    It lives directly in the system temp directory (pytest's own is private to root, and the
    servers run as an unprivileged user when the tests run as root).
    """
    box = Path(tempfile.mkdtemp(prefix="drills-test-"))
    box.chmod(0o777)
    try:
        yield box
        assert leftover_processes(box) == [], "processes of the lab are still running"
        assert list(box.iterdir()) == [], f"the lab left files behind: {list(box.iterdir())}"
    finally:
        shutil.rmtree(box, ignore_errors=True)


def drills_env(sandbox: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(sandbox), "PYTHONUNBUFFERED": "1"}


def run_drills(args: list[str], sandbox: Path, reports: Path, timeout: float = 120) -> Run:
    result = subprocess.run(
        [sys.executable, "-m", "drills", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=drills_env(sandbox),
        cwd=REPO,
    )
    return Run(result.returncode, result.stdout, result.stderr, reports)


def leftover_processes(root: Path) -> list[str]:
    """Processes whose working directory or command line lies under `root`."""
    found = []
    prefix = str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmdline = ""
        if cwd.startswith(prefix) or prefix in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()} (cwd {cwd})")
    return found


def stopped_postgres() -> list[int]:
    """Stopped (SIGSTOP) processes named postgres anywhere on the machine."""
    stopped = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        state = stat[stat.rfind(")") + 2 :].split()[0]
        if name.startswith("postgres") and state == "T":
            stopped.append(int(entry.name))
    return stopped
