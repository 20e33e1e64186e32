"""The runner's lifecycle without servers: a local `sleep` process as the target, a TCP listener
of the test's own as the service. Whatever ends the drill (its last step, a failing step, a bug
in a step, a stop condition), what was injected is reverted, the journal is gone, the lock is
released and a record says what happened."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drills.checker import Overall, Verdict
from drills.locks import Locks
from drills.proctree import state
from drills.runner import RunOptions, RunResult, run_drill
from drills.steps.wait import Wait


@dataclass
class Setup:
    tmp: Path
    pid_file: Path
    process: subprocess.Popen[bytes]
    port: int

    def scenario(self, steps: str, extra: str = "") -> Path:
        path = self.tmp / "runner-unit.yaml"
        path.write_text(
            f"""
name: runner-unit
targets:
  app: {{pid_file: "{self.pid_file}"}}
probes:
  port: {{kind: tcp, port: {self.port}, interval: 20ms, timeout: 200ms}}
service_probe: port
{extra}
steps:
{steps}
"""
        )
        return path

    def run(self, scenario: Path) -> RunResult:
        (self.tmp / "drills.yaml").write_text("version: 1\n")  # no container may be touched
        options = RunOptions(
            reports_dir=self.tmp / "runs",
            state_dir=self.tmp / "state",
            live=False,
            config=self.tmp / "drills.yaml",
        )
        return run_drill(scenario, options)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    process = subprocess.Popen(["sleep", "60"])
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{process.pid}\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield Setup(tmp_path, pid_file, process, listener.getsockname()[1])
    finally:
        listener.close()
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()


def _nothing_left(setup: Setup, result: RunResult) -> None:
    assert state(setup.process.pid) != "T", "the paused target was not resumed"
    assert list((setup.tmp / "state" / "journal").glob("*.jsonl")) == []
    # The lock was released: the same target can be locked again at once.
    locks = Locks([f"process:{setup.pid_file.resolve()}"], "next", setup.tmp / "state")
    locks.acquire()
    locks.release()
    written = json.loads(result.record_path.read_text())
    assert written["verdict"] == result.record.verdict.value
    assert result.history_path.is_file()


def test_a_drill_that_ends_normally_reverts_and_records(setup: Setup) -> None:
    result = setup.run(setup.scenario("  - pause: app\n  - wait: 200ms\n  - resume: app"))
    assert result.record.error is None
    verdicts = {name: v.verdict for name, v in result.record.verdicts.items()}
    # No write probe: the RPO cannot be measured, which makes the run `error`, never `pass`.
    assert verdicts == {"rto": Verdict.MET, "rpo": Verdict.UNKNOWN, "availability": Verdict.MET}
    assert result.record.verdict is Overall.ERROR
    kinds = [step.kind for step in result.record.timeline]
    assert kinds == ["pause", "wait", "resume"]
    assert all(step.ok for step in result.record.timeline)
    probe = result.record.probes["port"]
    assert probe.ok > 5 and probe.fail == 0
    _nothing_left(setup, result)


def test_a_failing_step_still_reverts_the_pause(setup: Setup) -> None:
    result = setup.run(setup.scenario("  - pause: app\n  - exec: exit 3\n  - wait: 5s"))
    assert result.record.verdict is Overall.ERROR
    assert "step 2 (exec exit 3) failed: exec exited 3" in (result.record.error or "")
    assert [(s.kind, s.ok) for s in result.record.timeline] == [("pause", True), ("exec", False)]
    _nothing_left(setup, result)


def test_a_bug_in_a_step_is_an_internal_error_and_still_reverts(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Wait, ctx: object) -> str:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Wait, "run", broken)
    result = setup.run(setup.scenario("  - pause: app\n  - wait: 1s"))
    assert result.record.verdict is Overall.ERROR
    assert "internal error: ZeroDivisionError('a bug')" in (result.record.error or "")
    _nothing_left(setup, result)


def test_a_stop_condition_aborts_and_reverts(setup: Setup) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the service is down from the start
    scenario = setup.scenario(
        "  - pause: app\n  - wait: 10s", extra="abort_if:\n  - {probe: port, down_for: 200ms}"
    )
    scenario.write_text(scenario.read_text().replace(f"port: {setup.port}", f"port: {port}"))
    started = time.monotonic()
    result = setup.run(scenario)
    assert time.monotonic() - started < 8, "the stop condition did not cut the 10 s wait short"
    assert result.record.verdict is Overall.ABORTED
    assert result.aborted is not None and "port" in result.aborted
    assert result.record.aborted == result.aborted
    _nothing_left(setup, result)


def test_a_pid_file_without_a_pid_fails_its_step(setup: Setup) -> None:
    setup.pid_file.write_text("not a pid\n")
    result = setup.run(setup.scenario("  - pause: app"))
    assert result.record.verdict is Overall.ERROR
    assert "no pid in" in (result.record.error or "")
    _nothing_left(setup, result)
