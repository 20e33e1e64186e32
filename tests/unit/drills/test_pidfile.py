"""Pid-file targets signal only the process the file belongs to: pid 1, drills and its
ancestors are refused, and a stale file (its pid free, or held by another program) is an error
naming the file. Every test that expects nothing to be signalled forbids signals outright, so
that a harness without these checks fails the test instead of signalling the host."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.checker import Overall
from drills.errors import TargetError
from drills.pidfile import StalePidFile, resolve
from drills.proctree import ancestors, identify, state
from drills.runner import RunOptions, run_drill
from drills.targets import ProcessTarget, RestartableProcess

SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")


@pytest.fixture
def no_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object) -> None:
        raise AssertionError(f"a signal was sent: {args}")

    monkeypatch.setattr(os, "kill", forbidden)
    monkeypatch.setattr(os, "killpg", forbidden)
    monkeypatch.setattr(signal, "pidfd_send_signal", forbidden)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([SLEEP, "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait(timeout=5)


def _postgres(tmp_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """A process whose program is called `postgres`, running in `cwd`, as a postmaster does."""
    binary = tmp_path / "bin" / "postgres"
    if not binary.exists():
        binary.parent.mkdir()
        shutil.copy(SLEEP, binary)
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen([str(binary), "60"], cwd=cwd, start_new_session=True)


@pytest.mark.parametrize(
    ("pid", "why"),
    [
        (lambda: 1, "pid 1 \\(init"),
        (lambda: 0, "not a process id"),
        (lambda: -1, "not a process id"),
        (lambda: os.getpid(), "drills itself"),
        (lambda: os.getppid(), "an ancestor of drills"),
        (lambda: ancestors(os.getpid())[-1], "an ancestor of drills|pid 1"),
    ],
    ids=["init", "zero", "every-process", "the-test-runner", "its-parent", "its-oldest-ancestor"],
)
def test_a_pid_file_naming_a_process_drills_must_not_signal_is_refused(
    tmp_path: Path, no_signals: None, pid: object, why: str
) -> None:
    number = pid()  # type: ignore[operator]
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{number}\n")
    refused = f"^db: refusing pid {number} named by {pid_file}: it is ({why})"
    target = RestartableProcess("db", str(pid_file), None, f"touch {tmp_path / 'started'}")
    for act in (lambda: target.send(signal.SIGCONT), lambda: target.pausing("db"), target.pid):
        with pytest.raises(TargetError, match=refused) as caught:
            act()
        assert not isinstance(caught.value, StalePidFile)
    with pytest.raises(TargetError, match=refused):
        target.restart()  # a file naming such a process is a mistake, not a stopped server
    assert not (tmp_path / "started").exists()


def test_a_stale_postmaster_pid_held_by_another_program_is_refused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], no_signals: None
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pid_file = data / "postmaster.pid"
    pid_file.write_text(f"{sleeper.pid}\n{data}\n1700000000\n5432\n")
    target = ProcessTarget("db", str(pid_file))
    stale = f"db: stale pid file {pid_file}: pid {sleeper.pid} runs {SLEEP}, not PostgreSQL"
    with pytest.raises(StalePidFile) as caught:
        target.send(signal.SIGKILL)
    assert str(caught.value) == stale
    with pytest.raises(StalePidFile):
        target.pausing("db")


def test_a_postmaster_pid_names_the_postgres_of_its_own_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    elsewhere = _postgres(tmp_path, tmp_path / "other")
    ours = _postgres(tmp_path, data)
    try:
        pid_file = data / "postmaster.pid"
        pid_file.write_text(f"{elsewhere.pid}\n{data}\n")
        with pytest.raises(StalePidFile, match=f"is the PostgreSQL of {tmp_path / 'other'}, not"):
            resolve(pid_file, "db")
        assert elsewhere.poll() is None
        pid_file.write_text(f"{ours.pid}\n{data}\n")
        assert resolve(pid_file, "db") == identify(ours.pid)
        assert (
            ProcessTarget("db", str(pid_file)).send(signal.SIGKILL) == "SIGKILL sent to 1 processes"
        )
        assert ours.wait(timeout=5) == -signal.SIGKILL
    finally:
        for proc in (elsewhere, ours):
            proc.kill()
            proc.wait(timeout=5)


def test_a_pid_file_older_than_its_process_is_stale(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], no_signals: None
) -> None:
    """The process holding the pid started after the file was written: the pid was reused."""
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    an_hour_ago = time.time() - 3600
    os.utime(pid_file, (an_hour_ago, an_hour_ago))
    with pytest.raises(
        StalePidFile,
        match=f"^db: stale pid file {pid_file}: pid {sleeper.pid} "
        "started after the file was written",
    ):
        ProcessTarget("db", str(pid_file)).send(signal.SIGKILL)


def test_a_pid_file_naming_no_running_process_is_stale(tmp_path: Path, no_signals: None) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{gone.pid}\n")
    with pytest.raises(
        StalePidFile, match=f"^db: stale pid file {pid_file}: pid {gone.pid} is not running$"
    ):
        ProcessTarget("db", str(pid_file)).send(signal.SIGKILL)


def test_restart_with_a_stale_pid_file_starts_without_signalling(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    os.utime(pid_file, (time.time() - 3600, time.time() - 3600))
    marker = tmp_path / "started"
    RestartableProcess("db", str(pid_file), None, f"touch {marker}").restart(stop_timeout_s=0.2)
    assert marker.exists()
    assert sleeper.poll() is None and state(sleeper.pid) != "T"


def test_a_live_pid_file_is_resolved_to_its_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    process = resolve(pid_file, "db")
    assert (process.pid, process.exe) == (sleeper.pid, SLEEP)
    pause = ProcessTarget("db", str(pid_file)).pausing("db")
    assert (pause.entry.pid, pause.entry.exe) == (sleeper.pid, SLEEP)  # type: ignore[attr-defined]


def test_a_drill_whose_pid_file_names_pid_1_ends_in_error_without_signalling(
    tmp_path: Path, no_signals: None
) -> None:
    pid_file = tmp_path / "app.pid"
    pid_file.write_text("1\n")
    listener = socket.create_server(("127.0.0.1", 0))
    scenario = tmp_path / "init.yaml"
    scenario.write_text(
        f"name: init\ntargets:\n  app: {{pid_file: {pid_file}}}\n"
        f"probes:\n  port: {{kind: tcp, port: {listener.getsockname()[1]}, interval: 20ms}}\n"
        "service_probe: port\nsteps:\n  - kill: app\n"
    )
    (tmp_path / "drills.yaml").write_text("version: 1\n")
    options = RunOptions(
        reports_dir=tmp_path / "runs",
        state_dir=tmp_path / "state",
        live=False,
        config=tmp_path / "drills.yaml",
    )
    try:
        result = run_drill(scenario, options)
    finally:
        listener.close()
    assert result.record.verdict is Overall.ERROR
    assert f"app: refusing pid 1 named by {pid_file}: it is pid 1" in (result.record.error or "")
