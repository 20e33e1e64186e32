"""Locks on targets: a second drill on the same targets is refused, naming the holder."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drills.locks import Locked, Locks
from tests.paths import REPO


def test_second_holder_is_refused_and_named(tmp_path: Path) -> None:
    first = Locks(["process:/srv/pg/postmaster.pid"], "db-failover", tmp_path)
    first.acquire()
    second = Locks(["process:/srv/pg/postmaster.pid", "upstream:x:1"], "other", tmp_path)
    with pytest.raises(Locked) as caught:
        second.acquire()
    message = str(caught.value)
    assert "process:/srv/pg/postmaster.pid is in use by another drill" in message
    assert "scenario 'db-failover'" in message and f"on {socket.gethostname()}" in message
    assert second.held == []  # nothing half-taken
    first.release()
    second.acquire()
    second.release()
    assert list((tmp_path / "locks").iterdir()) == []


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    locks = Locks(["process:/x"], "mine", tmp_path)
    (tmp_path / "locks").mkdir(parents=True)
    holder = {
        "pid": int(dead.stdout),
        "start": 1,
        "host": socket.gethostname(),
        "scenario": "gone",
        "since": "2026-11-23T00:00:00Z",
    }
    locks._path("process:/x").write_text(json.dumps(holder))
    locks.acquire()
    assert json.loads(locks._path("process:/x").read_text())["scenario"] == "mine"
    locks.release()


SCENARIO = """
version: 1
name: own-process-{n}
targets: {{svc: {{pid_file: {pid_file}}}}}
probes:
  port: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 50ms}}
service_probe: port
steps:
  - wait: 3s
"""


def test_concurrent_drills_on_the_same_process(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    server = socket.create_server(("127.0.0.1", 0))
    try:
        pid_file = tmp_path / "svc.pid"
        pid_file.write_text(f"{target.pid}\n")
        port = server.getsockname()[1]
        env = {"DRILLS_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
        commands = []
        for n in (1, 2):
            scenario = tmp_path / f"s{n}.yaml"
            scenario.write_text(SCENARIO.format(n=n, pid_file=pid_file, port=port))
            commands.append(
                [
                    sys.executable,
                    "-m",
                    "drills",
                    "run",
                    str(scenario),
                    "--reports-dir",
                    str(tmp_path / "runs"),
                    "--no-live",
                ]
            )
        first = subprocess.Popen(
            commands[0],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        second = subprocess.run(
            commands[1], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        first.communicate(timeout=60)
        assert second.returncode == 2
        assert "is in use by another drill: scenario 'own-process-1'" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        # Once the first is done, the target is free again.
        third = subprocess.run(
            commands[1], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert "in use" not in third.stderr
    finally:
        target.kill()
        target.wait()
        server.close()


def test_the_lock_directory_is_private(tmp_path: Path) -> None:
    locks = Locks(["process:/srv/pg/postmaster.pid"], "db-failover", tmp_path / "state")
    locks.acquire()
    locks.release()
    assert stat.S_IMODE((tmp_path / "state" / "locks").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_symlink_planted_at_the_lock_temp_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks = Locks(["process:/srv/pg/postmaster.pid"], "db-failover", tmp_path / "state")
    [key] = locks.keys
    (tmp_path / "state" / "locks").mkdir(parents=True)
    planted = locks._path(key).with_name(f"{locks._path(key).name}.{os.getpid()}.tmp")
    planted.symlink_to(victim)
    locks.acquire()
    locks.release()
    assert victim.read_text() == "precious\n"
