"""A drill killed by SIGKILL leaves a record after all: `drills recover` writes it, verdict
`crashed`, chained and signed like any other, with the history the drill left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drills.checker import Overall
from drills.errors import DrillsError
from drills.journal import Recovery, parse, recover
from drills.records import check_chain, load_record
from drills.records.crashed import RecordOnCrash
from drills.records.signing import KEY_ENV, KEY_FILE_ENV, key_from_file
from tests.paths import REPO

SECRET = "a signing key for the crash test"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "secret" / "drills.key"
    key.parent.mkdir()
    key.write_text(SECRET)
    key.chmod(0o600)
    (tmp_path / "drills.yaml").write_text("version: 1\n")
    clean = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)}
    return {
        **clean,
        KEY_FILE_ENV: str(key),
        "DRILLS_STATE_DIR": str(tmp_path / "state"),
        "DRILLS_CONFIG": str(tmp_path / "drills.yaml"),
    }


@pytest.fixture
def service() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _drills(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drills", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def _wait_for_samples(history: Path, drill: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if history.is_file() and history.read_text().count('"probe"') >= 3:
            return
        assert drill.poll() is None, "the drill ended before it could be killed"
        time.sleep(0.05)
    raise AssertionError("the drill never sampled")


def _scenario(tmp_path: Path, port: int, wait: str) -> Path:
    scenario = tmp_path / "crash.yaml"
    scenario.write_text(
        f"""
name: crash
targets:
  app: {{pid_file: "{tmp_path / "app.pid"}"}}
probes:
  port: {{kind: tcp, port: {port}, interval: 20ms, timeout: 200ms}}
service_probe: port
steps:
  - wait: {wait}
"""
    )
    return scenario


def test_a_drill_signs_its_record_and_refuses_a_key_open_to_others(
    tmp_path: Path, env: dict[str, str], service: int
) -> None:
    (tmp_path / "app.pid").write_text(f"{os.getpid()}\n")
    scenario = _scenario(tmp_path, service, "100ms")
    runs = tmp_path / "runs"
    Path(env[KEY_FILE_ENV]).chmod(0o644)
    refused = _drills(env, "run", str(scenario), "--reports-dir", str(runs))
    assert refused.returncode == 2 and "open to its group or others" in refused.stderr
    assert refused.stderr.count("\n") == 1 and not runs.exists()
    Path(env[KEY_FILE_ENV]).chmod(0o600)
    _drills(env, "run", str(scenario), "--reports-dir", str(runs))  # nothing disrupted: no RTO
    [path] = runs.glob("*.json")
    assert load_record(path).signature is not None
    assert _drills(env, "verify", "--reports-dir", str(runs)).returncode == 0
    assert list((tmp_path / "state" / "journal").glob("*.jsonl")) == []


def test_sigkill_then_recover_leaves_a_crashed_record_that_verifies(
    tmp_path: Path, env: dict[str, str], service: int
) -> None:
    sleeper = subprocess.Popen(["sleep", "120"])
    (tmp_path / "app.pid").write_text(f"{sleeper.pid}\n")
    scenario = _scenario(tmp_path, service, "60s")
    runs = tmp_path / "runs"
    argv = ["run", str(scenario), "--reports-dir", str(runs)]
    drill = subprocess.Popen([sys.executable, "-m", "drills", *argv], cwd=REPO, env=env)
    try:
        _wait_for_samples(next(iter(_histories(runs))), drill)
        drill.send_signal(signal.SIGKILL)
        drill.wait(timeout=30)
    finally:
        drill.kill()
        sleeper.kill()
        sleeper.wait()
    assert list(runs.glob("*.json")) == [], "a killed drill wrote no record of its own"

    recovered = _drills(env, "recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    [path] = runs.glob("*.json")
    assert f"wrote {path} (verdict crashed, signed)" in recovered.stdout
    record = load_record(path)
    assert record.verdict is Overall.CRASHED
    assert record.scenario.name == "crash" and record.run_id == path.stem
    assert record.history == f"{path.stem}.history.jsonl"
    assert record.chain is not None and record.chain.history_sha256 is not None
    assert record.signature is not None
    assert record.error and "drills recover" in record.error
    verified = _drills(env, "verify", "--reports-dir", str(runs))
    assert verified.returncode == 0, verified.stderr
    assert "every record signed" in verified.stdout
    assert _drills(env, "recover").stdout == "nothing to recover\n"


def _histories(runs: Path) -> Iterator[Path]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = sorted(runs.glob("*.history.jsonl")) if runs.is_dir() else []
        if found:
            yield found[0]
            return
        time.sleep(0.05)
    raise AssertionError("no history appeared")


def _entry(runs: Path, key_id: str | None = None) -> RecordOnCrash:
    raw = {
        "op": "run-record",
        "run_id": "20261123T200000Z-crash",
        "records_dir": str(runs),
        "history": "20261123T200000Z-crash.history.jsonl",
        "scenario": {"name": "crash", "file": "crash.yaml", "sha256": "0" * 64},
        "started_at": "2026-11-23T20:00:00.000Z",
        "objectives": {"rto_s": 30, "rpo_s": 0, "availability": 0.999},
        "check": {"service_probe": "port", "write_probe": None, "stable": 3},
        "key_id": key_id,
    }
    entry = parse(json.loads(json.dumps(raw)))  # as `drills recover` reads it
    assert isinstance(entry, RecordOnCrash)
    return entry


def test_the_record_is_written_once_and_never_over_the_runs_own(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    entry = _entry(runs)
    assert entry.undo(Recovery()) == f"wrote {runs / entry.run_id}.json (verdict crashed, unsigned)"
    assert entry.undo(Recovery()) is None  # `drills recover` run again: left as it is
    assert check_chain(runs).problems == []
    assert load_record(runs / f"{entry.run_id}.json").history == ""  # no history was left


def test_a_signed_run_needs_its_key_to_write_the_crashed_record(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    key = key_from_file(Path(env[KEY_FILE_ENV]), runs)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    entry = _entry(runs, key.key_id)
    with pytest.raises(DrillsError, match=f"signed its records with key {key.key_id}"):
        entry.undo(Recovery())
    assert list(runs.iterdir()) == []
    monkeypatch.setenv(KEY_FILE_ENV, env[KEY_FILE_ENV])
    assert "signed" in (entry.undo(Recovery()) or "")
    assert check_chain(runs, key).problems == []


@pytest.mark.parametrize(
    ("key", "value"), [("run_id", "../escape"), ("history", "a/b"), ("records_dir", "rel")]
)
def test_a_malformed_entry_is_refused(tmp_path: Path, key: str, value: str) -> None:
    raw = _entry(tmp_path).model_dump(mode="json")
    raw[key] = value
    with pytest.raises(DrillsError, match=key):
        parse(raw)


def test_a_sound_entry_has_no_problem(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o755)
    entry = _entry(runs)
    assert entry.problem() is None
    (runs / f"{entry.run_id}.json").write_text("{}")  # the run wrote its own record
    assert entry.problem() is None


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda runs: None, "does not exist"),
        (lambda runs: runs.write_text(""), "not a directory"),
        (lambda runs: runs.symlink_to(runs.parent), "a symbolic link"),
        (
            lambda runs: (runs.mkdir(), runs.chmod(0o777)),
            "writable by its group or others (mode 777)",
        ),
        (lambda runs: (runs.mkdir(), runs.chmod(0o1777)), "writable by its group or others"),
        (lambda runs: (runs.mkdir(), runs.chmod(0o775)), "writable by its group or others"),
    ],
)
def test_recover_writes_only_into_a_directory_others_cannot_write(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    runs = tmp_path / "runs"
    make(runs)
    assert f"records directory {runs}: {problem}" in (_entry(runs).problem() or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files away")
def test_a_records_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o755)
    os.chown(runs, 65534, 65534)
    assert "owned by uid 65534, not by uid 0" in (_entry(runs).problem() or "")


def test_the_history_must_be_the_runs_own(tmp_path: Path) -> None:
    raw = _entry(tmp_path).model_dump(mode="json") | {"history": "other.history.jsonl"}
    entry = parse(raw)
    assert "history 'other.history.jsonl' is not the run's" in (entry.problem() or "")


def test_a_symlink_at_the_records_name_is_refused(tmp_path: Path) -> None:
    entry = _entry(tmp_path)
    (tmp_path / f"{entry.run_id}.json").symlink_to("/etc/passwd")
    assert "a symbolic link where the run's record would be" in (entry.problem() or "")


def test_recover_keeps_the_journal_of_a_refused_record(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o777)
    journal = tmp_path / "journal" / "20261123T200000Z-crash.jsonl"
    journal.parent.mkdir()
    run = {"op": "run", "run_id": "x", "scenario": "s", "pid": 1, "start": -1, "at": 0.0}
    lines = [run | {"host": socket.gethostname()}, _entry(runs).model_dump(mode="json")]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = recover(journal)
    assert done[0].startswith("refused run-record entry of 20261123T200000Z-crash: records")
    assert journal.exists() and list(runs.iterdir()) == []
