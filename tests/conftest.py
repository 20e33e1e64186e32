"""Shared fixtures: a private TMPDIR per test, a drills CLI runner, and leftover checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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


def haproxy_missing() -> str | None:
    from drills.errors import LabError
    from drills.labs.dual_active import find_haproxy

    try:
        find_haproxy(None)
    except LabError as exc:
        return str(exc)
    return None


def patroni_missing() -> str | None:
    """Why the patroni lab cannot run here (Patroni, etcd, HAProxy or PostgreSQL missing)."""
    from drills.errors import LabError
    from drills.patroni.lab_config import PatroniLabConfig
    from drills.patroni.lab_setup import find_tools

    try:
        find_tools(PatroniLabConfig.model_validate({"kind": "patroni"}))
    except LabError as exc:
        return str(exc)
    return None


def pgbackrest_missing() -> str | None:
    from drills.backup.pgbackrest import find_pgbackrest
    from drills.errors import LabError

    try:
        find_pgbackrest()
    except LabError as exc:
        return str(exc)
    return None


def docker_missing() -> str | None:
    """Why no Docker engine (with the local images) can be used here, or None when it can."""
    from drills.containers.engine import EngineSpec, connect
    from drills.containers.local_image import NETUTILS_IMAGE, POSTGRES_IMAGE
    from drills.errors import DrillsError

    try:
        client = connect(EngineSpec.default())
    except DrillsError as exc:
        return str(exc)
    for image in (POSTGRES_IMAGE, NETUTILS_IMAGE):
        if not client.images.list(name=image):
            return f"image {image} is not built (run `make docker`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons = {
        "postgres": (postgres_missing, "PostgreSQL lab cannot run: {} (run `make postgres`)"),
        "docker": (docker_missing, "no Docker engine: {} (run `make docker` as root)"),
        "haproxy": (haproxy_missing, "{} (run `make test` as root to install it)"),
        "patroni": (patroni_missing, "{} (run `make test` as root to install them)"),
        "pgbackrest": (pgbackrest_missing, "{} (run `make test` as root to install it)"),
    }
    for marker, (why, text) in reasons.items():
        if not any(marker in item.keywords for item in items):
            continue
        reason = why()
        if reason is None:
            continue
        skip = pytest.mark.skip(reason=text.format(reason))
        for item in items:
            if marker in item.keywords:
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
        shutil.rmtree(f"{box}-state", ignore_errors=True)


def drills_env(sandbox: Path) -> dict[str, str]:
    """The drill's temp directory is the sandbox; its crash journals go beside it, so that a
    test's drill never sees (or is refused for) another test's journal."""
    return {
        # Container drills use the images built from this host (make docker), as make does.
        "DRILLS_POSTGRES_IMAGE": "drills/postgres:local",
        "DRILLS_HELPER_IMAGE": "drills/netutils:local",
        **os.environ,
        "TMPDIR": str(sandbox),
        "DRILLS_STATE_DIR": f"{sandbox}-state",
        "PYTHONUNBUFFERED": "1",
    }


def drills_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`drills ARGS` in a process of its own, run from the repository with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "drills", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def run_drills(
    args: list[str], sandbox: Path, reports: Path, timeout: float = 120, report: bool = False
) -> Run:
    """`drills ARGS`; a `run` without its own report unless asked (it costs about a second)."""
    if args[:1] == ["run"] and not report:
        args = [*args, "--no-report"]
    result = subprocess.run(
        [sys.executable, "-m", "drills", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=drills_env(sandbox),
        cwd=REPO,
    )
    return Run(result.returncode, result.stdout, result.stderr, reports)


def signal_drill_at(
    scenario: Path,
    sandbox: Path,
    reports: Path,
    marker: str,
    sig: signal.Signals,
    check: Callable[[], None] = lambda: None,
) -> tuple[int, str, str]:
    """Run a drill, wait until its output shows `marker` (bounded), call `check`, send `sig`,
    and return the exit status, stdout and stderr (everything the drill wrote)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drills", "run", str(scenario), "--reports-dir", str(reports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=drills_env(sandbox),
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if marker in line or not line:
                break
        assert any(marker in line for line in seen), "".join(seen)
        check()
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, "".join(seen) + err


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


def failover_bounds(record: dict[str, Any], fault: str, interval_s: float) -> tuple[float, float]:
    """Where a failover's RTO must lie, from the record's own timeline (ground truth).

    No request can succeed before the promotion begins; one must succeed soon after the
    promotion returns (pg_promote polls every 100 ms, so the server may accept writes a little
    before the step ends): two probe intervals plus reconnecting."""
    steps = {s["kind"]: s for s in record["timeline"]}
    start = steps[fault]["start_s"]
    return steps["promote"]["start_s"] - start, steps["promote"][
        "end_s"
    ] - start + 2 * interval_s + 0.5


def sigkill_drill_at(scenario: Path, env: dict[str, str], reports: Path, marker: str) -> None:
    """Run a drill until its output shows `marker` (bounded), then SIGKILL it: no cleanup can
    run, so whatever it injected stays for `drills recover`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drills", "run", str(scenario), "--reports-dir", str(reports)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if marker in line or not line:
                break
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def ssh_host_made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A host of the tests' own reached over SSH (tests/sshhost.py), shared by the session."""
    from tests.sshhost import missing, ssh_host

    why = missing()
    if why:
        pytest.skip(why)
    with ssh_host(tmp_path_factory.mktemp("sshhost")) as host:
        yield host


@pytest.fixture(scope="session")
def dc2_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second Docker engine of the tests' own (tests/second_engine.py), shared by the
    session."""
    from tests.second_engine import missing, second_engine

    why = missing()
    if why:
        pytest.skip(why)
    with second_engine(tmp_path_factory.mktemp("dc2")) as engine:
        yield engine


def assert_only_writes_acked_before_the_fault_lost(
    record_path: Path,
    record: dict[str, Any],
    probe: str,
    acked_within_s: tuple[float, float],
    db: str | None = None,
) -> None:
    """Replication is asynchronous: a write the old primary acknowledged in the last instants
    before the fault may never have reached the other site, and drills must count it. Ground
    truth from the history: every write reported lost was acknowledged (ok, by `db` when given)
    within `acked_within_s` (seconds from the run's start); RPO is zero exactly when nothing is
    lost, and at most 1 s."""
    m = record["measurements"]
    lost = set(m["lost_write_ids"])
    assert m["lost_writes"] == len(lost)
    history = [json.loads(line) for line in (record_path.parent / record["history"]).open()]
    started_ns = next(e for e in history if e["type"] == "clock")["mono_ns"]
    earliest, latest = acked_within_s
    for e in history:
        if e["type"] == "op" and e["probe"] == probe and e["seq"] in lost:
            assert e["outcome"] == "ok" and (db is None or e["tags"]["db"] == db), e
            assert earliest <= (e["complete_ns"] - started_ns) / 1e9 <= latest, e
    assert (m["rpo_s"] == 0) == (not lost) and m["rpo_s"] <= 1.0, m
