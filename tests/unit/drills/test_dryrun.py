"""`drills run --dry-run` describes the drill and touches nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


def _dry_run(scenario: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    sandbox = tmp_path / "tmp"
    sandbox.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(sandbox),
        "DRILLS_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "drills",
            "run",
            str(scenario),
            "--dry-run",
            "--reports-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert list(sandbox.iterdir()) == []
    assert not (tmp_path / "state").exists() and not (tmp_path / "runs").exists()
    return result


def test_dry_run_of_a_lab_scenario(tmp_path: Path) -> None:
    result = _dry_run(REPO / "scenarios" / "network-partition.yaml", tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "nothing is started or touched" in out
    assert "| site-a   | lab node a |" in out
    assert "partition a <-> b" in out and "kill site-a (SIGKILL)" in out
    assert out.count("RTO clock starts") == 1  # at the kill: the partition does not start it


def test_dry_run_of_your_own_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "svc.pid"
    pid_file.write_text("4242\n")
    scenario = tmp_path / "own.yaml"
    scenario.write_text(
        "version: 1\nname: own\n"
        f"targets: {{svc: {{pid_file: {pid_file}}}}}\n"
        "probes: {port: {kind: tcp, port: 5432}}\nservice_probe: port\n"
        "steps:\n  - wait: 1s\n  - pause: svc\n  - wait: 2s\n  - resume: svc\n"
    )
    result = _dry_run(scenario, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pid 4242" in result.stdout
    assert f"locks it would take: process:{pid_file}" in result.stdout
    assert "|      4 | >= 3.0s | resume svc" in result.stdout
