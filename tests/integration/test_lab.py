"""The postgres-pair lab on its own: roles, replication, removal, and running unprivileged."""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from tests.conftest import REPO, drills_env, leftover_processes

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("synchronous", [False, True])
def test_lab_starts_a_replicating_pair_and_removes_it(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, synchronous: bool
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    messages: list[str] = []
    config = PostgresPairConfig(kind="postgres-pair", synchronous=synchronous)
    lab = PostgresPairLab(config, messages.append)
    handle = lab.start()
    try:
        root = Path(handle.variables["dir"])
        assert root.parent == sandbox
        with psycopg.connect(handle.variables["a.dsn"]) as a:
            assert a.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            sync = a.execute("SELECT sync_state FROM pg_stat_replication").fetchone()
            assert sync == (("sync",) if synchronous else ("async",))
        with psycopg.connect(handle.variables["b.dsn"]) as b:
            assert b.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        # The multi-host DSN reaches whichever node accepts writes.
        with psycopg.connect(handle.variables["dsn"]) as conn:
            port = conn.execute("SELECT current_setting('port')").fetchone()
            assert port == (handle.variables["a.port"],)
        assert leftover_processes(root)
    finally:
        lab.stop()
    assert leftover_processes(sandbox) == []
    assert not root.exists()
    lab.stop()  # idempotent


def _unprivileged_python() -> tuple[list[str], str] | str:
    """A command prefix that runs this test's Python code as the `postgres` OS user."""
    if os.geteuid() != 0:
        return [sys.executable], ""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' OS user to run as"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "setpriv (util-linux) not found"
    prefix = [setpriv, "--reuid=postgres", "--regid=postgres", "--clear-groups"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, shutil.which(version) or "", f"/usr/bin/{version}"):
        if python and subprocess.run([*prefix, python, "-c", "pass"], check=False).returncode == 0:
            return [*prefix, python], os.pathsep.join([*site.getsitepackages(), str(REPO)])
    return f"no {version} that the postgres OS user may execute"


def test_drill_as_an_ordinary_user(sandbox: Path) -> None:
    found = _unprivileged_python()
    if isinstance(found, str):
        pytest.skip(f"cannot run as an ordinary user here: {found}")
    command, pythonpath = found
    reports = sandbox / "runs"
    # The user's own home, apart from the sandbox: the run's report leaves the chart library's
    # font cache there (~/.cache/matplotlib), as it would in any user's home.
    home = Path(tempfile.mkdtemp(prefix="drills-home-"))
    home.chmod(0o777)
    env = drills_env(sandbox) | {"HOME": str(home)}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    try:
        result = _run_as_user(command, reports, env)
    finally:
        shutil.rmtree(home)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "verdict: PASS" in result.stdout
    assert f"report: {reports}" in result.stdout
    shutil.rmtree(reports)


def _run_as_user(
    command: list[str], reports: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *command,
            "-m",
            "drills",
            "run",
            "scenarios/db-failover.yaml",
            "--reports-dir",
            str(reports),
            "--no-live",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
