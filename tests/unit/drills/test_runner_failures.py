"""When the harness itself fails: a history that cannot be written (a full disk) ends the drill
with verdict `error` and no fabricated outage, an internal error exits 2, never 1; the history
is on disk before the record pins its hash, and the state directory is private (issue 15,
items 7 and 8). The target is a local `sleep`, the service a TCP listener of the test's own."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drills import cli, history, history_file, runner
from drills.checker import Overall
from drills.errors import PathError, RecordError
from drills.records import load_record
from drills.runner import RunOptions, RunResult, run_drill

ENOSPC = "No space left on device (ENOSPC)"


@dataclass
class Drill:
    tmp: Path
    port: int

    def scenario(self, steps: str) -> Path:
        path = self.tmp / "failures.yaml"
        path.write_text(
            f"""
name: failures
targets:
  app: {{pid_file: "{self.tmp / "app.pid"}"}}
probes:
  port: {{kind: tcp, port: {self.port}, interval: 20ms, timeout: 200ms, connections: 2}}
service_probe: port
steps:
{steps}
"""
        )
        (self.tmp / "drills.yaml").write_text("version: 1\n")
        return path

    def options(self) -> RunOptions:
        return RunOptions(
            reports_dir=self.tmp / "runs",
            state_dir=self.tmp / "state",
            live=False,
            config=self.tmp / "drills.yaml",
        )

    def cli(self, scenario: Path, monkeypatch: pytest.MonkeyPatch) -> int:
        monkeypatch.setenv("DRILLS_STATE_DIR", str(self.tmp / "state"))
        monkeypatch.delenv("DRILLS_PUSHGATEWAY", raising=False)
        return cli.main(
            [
                "run",
                str(scenario),
                "--reports-dir",
                str(self.tmp / "runs"),
                "--config",
                str(self.tmp / "drills.yaml"),
                "--no-live",
            ]
        )


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[Drill]:
    process = subprocess.Popen(["sleep", "60"])
    (tmp_path / "app.pid").write_text(f"{process.pid}\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield Drill(tmp_path, listener.getsockname()[1])
    finally:
        listener.close()
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()


def disk_full_after(lines: int) -> Callable[[int, bytes], None]:
    real = history.write_all
    written = [0]

    def write_all(fd: int, data: bytes) -> None:
        written[0] += 1
        if written[0] > lines:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    return write_all


def test_a_full_disk_ends_the_drill_as_error_without_a_false_outage(
    drill: Drill, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(history, "write_all", disk_full_after(20))
    started = time.monotonic()
    status = drill.cli(
        drill.scenario("  - pause: app\n  - wait: 10s\n  - resume: app"), monkeypatch
    )
    assert time.monotonic() - started < 8, "the drill went on after its history failed"
    out = capsys.readouterr().out
    assert status == 2  # could not be judged; 1 would say an objective was missed
    assert "ERROR" in out and ENOSPC in out
    [record_path] = (drill.tmp / "runs").glob("*.json")
    record = load_record(record_path)
    assert record.verdict is Overall.ERROR
    assert record.error is not None and record.error.startswith("cannot write the history")
    assert ENOSPC in record.error
    assert record.measurements.downtime_s in (None, 0)
    assert all(p.fail == 0 for p in record.probes.values())
    text = (drill.tmp / "runs" / record.history).read_text()
    assert "no free connection" not in text and '"outcome":"fail"' not in text
    assert list((drill.tmp / "state" / "journal").glob("*.jsonl")) == []  # pause reverted


def test_the_history_is_on_disk_before_the_record_pins_its_hash(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real_fsync, real_write = os.fsync, runner.write_record

    def fsync(fd: int) -> None:
        order.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        real_fsync(fd)

    def write_record(path: Path, *args: Any, **kwargs: Any) -> Any:
        order.append("record")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(runner, "write_record", write_record)
    result = run_drill(drill.scenario("  - wait: 100ms"), drill.options())
    assert f"fsync {result.history_path}" in order
    assert order.index(f"fsync {result.history_path}") < order.index("record")


def test_a_record_that_cannot_be_written_still_prints_the_verdict_and_exits_2(
    drill: Drill, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "r.json")

    monkeypatch.setattr(runner, "write_record", full)
    assert drill.cli(drill.scenario("  - wait: 100ms"), monkeypatch) == 2
    out, err = capsys.readouterr()
    assert "verdict" in out.lower() and "record:" not in out
    assert f"drills: run record not written: cannot write {drill.tmp / 'runs'}" in err
    assert ENOSPC in err


def test_a_history_that_cannot_be_read_back_is_an_error_not_a_verdict(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The samples of a drill are judged from its file (issue 14, item 5)."""

    def unreadable(path: Path, identity: tuple[int, int]) -> Any:
        raise RecordError(f"{path}: cannot read history: Input/output error")

    monkeypatch.setattr(history_file, "read_back", unreadable)
    result = run_drill(drill.scenario("  - wait: 100ms"), drill.options())
    assert result.record.verdict is Overall.ERROR
    assert result.record.error is not None
    assert "cannot read history: Input/output error" in result.record.error
    assert result.record.probes == {}  # no figure from samples that could not be read
    assert result.record.measurements.downtime_s is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_directory_is_private(drill: Drill) -> None:
    (drill.tmp / "state").mkdir(mode=0o777)
    os.chmod(drill.tmp / "state", 0o777)
    run_drill(drill.scenario("  - pause: app\n  - resume: app"), drill.options())
    assert _mode(drill.tmp / "state") == 0o700
    assert _mode(drill.tmp / "state" / "locks") == 0o700


def test_a_state_directory_that_is_a_symlink_is_refused_before_anything(drill: Drill) -> None:
    (drill.tmp / "elsewhere").mkdir()
    (drill.tmp / "state").symlink_to(drill.tmp / "elsewhere")
    with pytest.raises(PathError, match="state: a symbolic link"):
        run_drill(drill.scenario("  - pause: app"), drill.options())
    assert list((drill.tmp / "elsewhere").iterdir()) == []
    assert not (drill.tmp / "runs").exists()


def test_the_same_scenario_twice_in_a_second_gets_two_run_ids(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "utc_basic", lambda wall_ns: "20261123T200000Z")
    scenario = drill.scenario("  - wait: 10ms")
    results: list[RunResult] = [run_drill(scenario, drill.options()) for _ in range(2)]
    assert [r.record.run_id for r in results] == [
        "20261123T200000Z-failures",
        "20261123T200000Z-failures-2",
    ]
    assert all(r.history_path.is_file() and r.record_path.is_file() for r in results)
