"""The process agent as a host runs it (`python3 -` reading the agent on its standard input),
run here against processes of the test's own: the same checks and tree walk as for a local
pid file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drills.hosts.agent import agent_program, agent_source
from drills.proctree import state

PYTHON3 = shutil.which("python3") or sys.executable


def agent(op: str, **args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON3, "-"],
        input=agent_program(op, args),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A shell with a child, its pid in a pid file written after it started."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
    time.sleep(0.2)
    pid_file = tmp_path / "tree.pid"
    pid_file.write_text(f"{proc.pid}\n")
    yield proc.pid, pid_file
    proc.kill()
    subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)
    proc.wait(timeout=10)


def test_the_agent_is_one_script_without_drills_imports() -> None:
    source = agent_source()
    compile(source, "agent", "exec")
    assert "from drills" not in source and "import drills" not in source
    assert source.count("from __future__") == 1


def test_resolve_pause_and_resume_a_tree(tree: tuple[int, Path]) -> None:
    pid, pid_file = tree
    [found_pid, start, exe] = agent("resolve", pid_file=str(pid_file), name="t")["process"]
    assert found_pid == pid and exe.endswith("sh")
    stopped = agent("signal", root=[pid, start, exe], signal_name="SIGSTOP")["signalled"]
    assert len(stopped) == 2 and all(state(p[0]) == "T" for p in stopped)
    assert agent("resume-tree", root=[pid, start, exe]) == {"resumed": 2}
    assert all(state(p[0]) != "T" for p in stopped)


def test_a_stale_pid_file_is_said_so(tmp_path: Path) -> None:
    pid_file = tmp_path / "gone.pid"
    pid_file.write_text("999999999\n")
    answer = agent("resolve", pid_file=str(pid_file), name="gone")
    assert answer["stale"] is True
    assert answer["error"] == f"gone: stale pid file {pid_file}: pid 999999999 is not running"


def test_a_process_other_than_the_one_recorded_is_left_alone(tree: tuple[int, Path]) -> None:
    pid, _ = tree
    assert agent("resume-tree", root=[pid, 1, "/bin/sh"]) == {"resumed": None}
    assert agent("wait-exit", root=[pid, 1, "/bin/sh"], wait_s=0.1) == {"exited": True}


def test_the_agent_refuses_pid_1() -> None:
    answer = agent("signal", root=[1, 0, "/sbin/init"], signal_name="SIGCONT")
    assert (
        answer["error"]
        == "refusing to signal pid 1: it is pid 1 (init: signalling it takes the host down)"
    )
