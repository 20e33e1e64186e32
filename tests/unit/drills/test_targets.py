"""Process targets against real processes: signalling a tree, restart with a pid file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.errors import TargetError
from drills.proctree import alive, descendants, signal_tree, state
from drills.targets import RestartableProcess

# A parent that forks a child, and exits 0.3 s after SIGTERM (like a server shutting down).
SERVER = """
import os, signal, sys, time
pid_file = sys.argv[1]
child = os.fork()
if child == 0:
    time.sleep(60); os._exit(0)
def stop(*_):
    time.sleep(0.3); os.kill(child, signal.SIGKILL); os._exit(0)
signal.signal(signal.SIGTERM, stop)
open(pid_file, "w").write(f"{os.getpid()}\\n")
while True:
    time.sleep(0.05)
"""


def _wait(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    pid_file = tmp_path / "server.pid"
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(pid_file)], start_new_session=True)
    _wait(lambda: pid_file.exists() and pid_file.read_text() and len(descendants(proc.pid)) == 1)
    yield proc, pid_file
    for pid in [proc.pid, *descendants(proc.pid)]:
        signal_tree(pid, signal.SIGKILL)
    proc.wait(timeout=5)


def test_signal_tree_stops_and_resumes_parent_and_children(
    server: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, _ = server
    child = descendants(proc.pid)[0]
    sent = signal_tree(proc.pid, signal.SIGSTOP)
    assert set(sent) == {proc.pid, child}
    _wait(lambda: state(proc.pid) == "T" and state(child) == "T")
    signal_tree(proc.pid, signal.SIGCONT)
    _wait(lambda: state(proc.pid) != "T" and state(child) != "T")


def test_restart_waits_for_the_old_process_to_exit(
    server: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    proc, pid_file = server
    marker = tmp_path / "old-alive-at-start"
    # Still running = present and not a zombie (the test, its parent, reaps it later).
    status = f"/proc/{proc.pid}/status"
    start = f"if [ -e {status} ] && ! grep -q 'State:.Z' {status}; then touch {marker}; fi"
    target = RestartableProcess("srv", str(pid_file), None, start, signal.SIGTERM)
    target.signal(signal.SIGSTOP)  # a paused process is resumed before it is stopped
    began = time.monotonic()
    target.restart()
    assert time.monotonic() - began >= 0.25  # the server takes 0.3 s to exit
    proc.wait(timeout=5)
    assert not marker.exists(), "start ran while the old process was still alive"


def test_restart_kills_a_process_that_ignores_its_stop_signal(
    server: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, pid_file = server
    # SIGWINCH is ignored by default: the process stays, and restart must SIGKILL it.
    target = RestartableProcess("srv", str(pid_file), None, "true", signal.SIGWINCH)
    began = time.monotonic()
    target.restart(stop_timeout_s=0.2)
    assert time.monotonic() - began >= 0.2
    proc.wait(timeout=5)
    assert not alive(proc.pid)


def test_start_failures_are_target_errors(tmp_path: Path) -> None:
    pid_file = tmp_path / "gone.pid"
    failing = RestartableProcess("srv", str(pid_file), None, "echo no disk >&2; exit 4")
    with pytest.raises(TargetError, match="exited 4: no disk"):
        failing.restart()
    hanging = RestartableProcess("srv", str(pid_file), None, "sleep 5")
    with pytest.raises(TargetError, match="still running after"):
        hanging.restart(start_timeout_s=0.2)
    with pytest.raises(TargetError, match="no pid"):
        failing.signal(signal.SIGSTOP)


def test_a_start_command_never_sees_the_harness_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_SIGNING_KEY", "signing-key-value")
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", "proxy-token-value")
    seen = tmp_path / "seen"
    start = f"echo ${{DRILLS_SIGNING_KEY-none}} ${{DRILLS_PROXY_TOKEN-none}} > {seen}"
    RestartableProcess("srv", str(tmp_path / "gone.pid"), None, start).restart()
    assert seen.read_text() == "none none\n"
