"""The crash journal without servers: entries written before changes, orphans found by their
dead owner, and `recover` dispatching each entry to the undo its kind registered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from drills.cli import main
from drills.errors import DrillsError
from drills.journal import (
    JOURNAL,
    Journal,
    JournalEntry,
    Recovery,
    orphaned,
    recover,
    refuse_if_orphaned,
)
from drills.labs.lab_process import LabDirectory, LabServer, processes_in
from drills.proctree import alive, start_time, state
from drills.targets import ProcessPause, ProcessTarget

UNDONE: list[str] = []
SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
LEFT_ALONE = "left pid {} alone: it is not the process the journal recorded"


@JOURNAL.register("test-fake")
class FakeChange(JournalEntry):
    op: Literal["test-fake"] = "test-fake"
    subject: ClassVar[str] = "name"
    name: str
    fails: bool = False

    def undo(self, recovery: Recovery) -> str | None:
        if self.fails:
            raise RuntimeError("engine unreachable")
        count = recovery.shared("count", lambda: [0])
        count[0] += 1
        UNDONE.append(self.name)
        return f"undid {self.name} (#{count[0]} in this journal)"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    UNDONE.clear()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait(timeout=5)


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory labs are made in, for this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def dead_journal(tmp_path: Path, *entries: dict[str, object]) -> Path:
    """A journal left by a harness that is gone: its pid's start time does not match."""
    folder = tmp_path / "journal"
    folder.mkdir(exist_ok=True)
    path = folder / "20260101T000000Z-dead.jsonl"
    run = {"op": "run", "run_id": "dead", "scenario": "s", "pid": 1, "start": -1}
    lines = [run | {"host": socket.gethostname(), "at": 0.0}, *entries]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def test_entries_are_written_before_and_removed_by_a_clean_close(tmp_path: Path) -> None:
    journal = Journal("run-1", "scenario", tmp_path)
    journal.append(FakeChange(name="x"))
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [line["op"] for line in lines] == ["run", "test-fake"]
    assert lines[1] == {"op": "test-fake", "name": "x", "fails": False}
    assert list(orphaned(tmp_path)) == []  # its harness (this process) is alive
    journal.close()
    assert not journal.path.exists()


def test_a_dead_harness_journal_is_orphaned_and_refuses_new_drills(tmp_path: Path) -> None:
    path = dead_journal(tmp_path)
    assert list(orphaned(tmp_path)) == [path]
    with pytest.raises(DrillsError, match="run `drills recover` first"):
        refuse_if_orphaned(tmp_path)


def test_another_hosts_journal_is_not_ours_to_undo(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    folder.mkdir()
    run = {"op": "run", "pid": 1, "start": -1, "host": "elsewhere.example"}
    (folder / "other.jsonl").write_text(json.dumps(run) + "\n")
    assert list(orphaned(tmp_path)) == []


def test_recover_undoes_newest_first_through_the_registry(tmp_path: Path) -> None:
    path = dead_journal(
        tmp_path, {"op": "test-fake", "name": "first"}, {"op": "test-fake", "name": "second"}
    )
    with path.open("a") as file:
        file.write('{"op": "test-fake", "na')  # cut short by the crash
    done = recover(path)
    assert UNDONE == ["second", "first"]
    assert done == ["undid second (#1 in this journal)", "undid first (#2 in this journal)"]
    assert not path.exists()


def test_a_failed_undo_keeps_the_journal_and_the_rest_is_still_undone(tmp_path: Path) -> None:
    path = dead_journal(
        tmp_path,
        {"op": "test-fake", "name": "ok"},
        {"op": "test-fake", "name": "db", "fails": True},
    )
    done = recover(path)
    assert done[0] == "could not undo test-fake of db: engine unreachable"
    assert done[1] == "undid ok (#1 in this journal)"
    assert done[2].startswith("journal kept")
    assert path.exists()


def test_an_unknown_kind_keeps_the_journal(tmp_path: Path) -> None:
    path = dead_journal(tmp_path, {"op": "from-a-plugin", "x": 1})
    done = recover(path)
    assert "unknown journal entry 'from-a-plugin'" in done[0]
    assert path.exists()


def test_every_kind_a_drill_writes_is_registered() -> None:
    for op in ["run", "pause", "process", "lab-dir", "toxiproxy-link", "docker-lab"]:
        assert op in JOURNAL, op
    for op in ["container-pause", "container-stop", "disconnect", "iptables"]:
        assert op in JOURNAL, op


def test_recover_resumes_a_process_paused_by_a_dead_drill(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "sleep.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    pause = ProcessTarget("sleeper", str(pid_file)).pausing("site-a")
    assert pause.entry == ProcessPause(
        target="site-a", pid=sleeper.pid, start=start_time(sleeper.pid), exe=SLEEP
    )
    pause.make()
    deadline = time.monotonic() + 5  # SIGSTOP takes effect asynchronously
    while state(sleeper.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(sleeper.pid) == "T"
    path = dead_journal(tmp_path, pause.entry.model_dump())
    assert recover(path) == ["resumed site-a (1 processes)"]
    assert state(sleeper.pid) != "T"


def test_recover_leaves_a_reused_pid_alone(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    entry = {"op": "process", "pid": sleeper.pid, "start": -5, "exe": SLEEP}
    path = dead_journal(tmp_path, entry)
    assert recover(path) == [LEFT_ALONE.format(sleeper.pid)]
    assert alive(sleeper.pid)
    assert not path.exists()  # the process recorded is gone: nothing is left to undo


@pytest.mark.parametrize("op", ["process", "pause"])
def test_recover_leaves_alone_a_process_that_runs_another_program(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], op: str
) -> None:
    """Same pid, same start time, another executable: not the process the journal recorded."""
    os.kill(sleeper.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5  # SIGSTOP takes effect asynchronously
    while state(sleeper.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    entry = {"op": op, "pid": sleeper.pid, "start": start_time(sleeper.pid), "exe": "/bin/sh"}
    assert recover(dead_journal(tmp_path, entry)) == [LEFT_ALONE.format(sleeper.pid)]
    assert state(sleeper.pid) == "T"  # neither killed nor resumed
    os.kill(sleeper.pid, signal.SIGCONT)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        # Start times that match nothing: a harness without these checks must not act either.
        ({"pid": 1, "start": -1, "exe": "/sbin/init"}, "pid 1 is pid 1 (init"),
        ({"pid": os.getpid(), "start": -1, "exe": "/x"}, "is drills itself"),
        ({"pid": os.getppid(), "start": -1, "exe": "/x"}, "is an ancestor of drills"),
        ({"pid": 0, "start": -1, "exe": "/x"}, "is not a process id"),
        ({"pid": 4242}, "recorded without its start time and executable"),
        ({"pid": 4242, "start": 7}, "recorded without its start time and executable"),
    ],
)
@pytest.mark.parametrize("op", ["process", "pause"])
def test_recover_refuses_and_keeps_a_process_entry_it_must_not_act_on(
    tmp_path: Path, entry: dict[str, object], problem: str, op: str
) -> None:
    path = dead_journal(tmp_path, {"op": op, **entry})
    done = recover(path)
    assert done[0].startswith(f"refused {op} entry of ")
    assert problem in done[0] and done[0].endswith("; not acted on")
    assert done[1].startswith("journal kept")
    assert path.exists()


def _started(pid: int) -> LabServer:
    entry = LabServer.started(pid)
    assert entry is not None
    return entry


def test_a_server_gone_before_it_is_journalled_leaves_no_entry() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=5)
    assert LabServer.started(gone.pid) is None


def test_a_docker_labs_directory_is_removed_without_killing_what_runs_in_it(temp: Path) -> None:
    lab = temp / "drills-lab-drills-1234abcd"
    lab.mkdir()
    shell = subprocess.Popen(["sleep", "60"], cwd=lab, start_new_session=True)
    try:
        done = recover(
            dead_journal(temp, LabDirectory(path=str(lab), processes=False).model_dump())
        )
        assert done == [f"removed lab {lab}"]
        assert shell.poll() is None  # an operator's shell in the kept lab, say
    finally:
        shell.kill()
        shell.wait(timeout=5)


def test_recover_kills_lab_servers_and_removes_the_lab(temp: Path) -> None:
    lab = temp / "drills-lab-x"
    lab.mkdir()
    server = subprocess.Popen(["sleep", "60"], cwd=lab, start_new_session=True)
    try:
        entries = [
            LabDirectory(path=str(lab)).model_dump(),
            _started(server.pid).model_dump(),
        ]
        done = recover(dead_journal(temp, *entries))
        assert done == [f"killed lab server {server.pid} (1 processes)", f"removed lab {lab}"]
        assert server.wait(timeout=5) == -signal.SIGKILL
        assert not lab.exists()
    finally:
        server.kill()
        server.wait(timeout=5)


def test_recover_kills_a_named_programs_orphans_in_the_lab_and_nothing_else(
    tmp_path: Path,
) -> None:
    """A pgBackRest restore's workers outlive their killed parent: the lab directory's entry
    names the program, so they die with the lab; a shell in the lab is left alone."""
    lab = tmp_path / "drills-lab-y"
    lab.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sleep = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
    # The parent exits at once: its child is an orphan, in no journalled tree.
    subprocess.run(["sh", "-c", f"{sleep} 60 &"], cwd=lab, check=True)
    other = subprocess.Popen(["sh", "-c", "read x"], cwd=lab, stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5  # the orphan execs sleep after its parent has exited
        while not (orphans := processes_in(str(lab), str(bin_dir), (sleep,))):
            assert time.monotonic() < deadline, "the orphan never ran sleep"
            time.sleep(0.01)
        assert len(orphans) == 1 and other.pid not in orphans
        entry = LabDirectory(path=str(lab), bin=str(bin_dir), programs=(sleep,))
        assert entry.undo(Recovery()) == f"removed lab {lab}"
        assert not alive(orphans[0])
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(timeout=5)


def test_the_recover_command_exits_2_while_a_journal_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dead_journal(tmp_path, {"op": "from-a-plugin-not-installed", "target": "x"})
    monkeypatch.setenv("DRILLS_STATE_DIR", str(tmp_path))
    assert main(["recover"]) == 2
    out = capsys.readouterr().out
    assert "unknown journal entry 'from-a-plugin-not-installed'" in out
    assert f"journal kept ({path})" in out and "delete the file" in out
    path.unlink()  # undone by hand
    assert main(["recover"]) == 0
    assert capsys.readouterr().out == "nothing to recover\n"


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files away")


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("{tmp}/etc", "not a directory directly in"),  # /etc, as far as this test dares
        ("{temp}/../etc", "not a directory directly in"),
        ("{temp}/drills-lab-a/nested", "not a directory directly in"),
        ("{temp}/other-lab", "its name does not start with drills-lab-"),
        ("{temp}/drills-lab-", "its name does not start with drills-lab-"),
        ("{temp}/drills-lab-link", "not a directory (a symbolic link"),
        ("{temp}/drills-lab-file", "not a directory (a symbolic link"),
        pytest.param(
            "{temp}/drills-lab-theirs",
            "owned by uid 65534, neither root, drills' user nor",
            marks=ROOT_ONLY,
        ),
    ],
)
def test_recover_refuses_a_lab_directory_drills_did_not_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, problem: str
) -> None:
    temp = tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    victim = tmp_path / "etc"
    for folder in (temp / "drills-lab-a", temp / "other-lab", temp / "drills-lab-theirs", victim):
        folder.mkdir(parents=True)
        (folder / "precious").write_text("keep me")
    (temp / "drills-lab-link").symlink_to(victim)
    (temp / "drills-lab-file").write_text("")
    if os.geteuid() == 0:
        os.chown(temp / "drills-lab-theirs", 65534, 65534)
    path = dead_journal(
        tmp_path, LabDirectory(path=where.format(tmp=tmp_path, temp=temp)).model_dump()
    )
    done = recover(path)
    assert done[0].startswith("refused lab-dir entry of ") and problem in done[0], done
    assert done[1].startswith("journal kept") and path.exists()
    assert all(p.read_text() == "keep me" for p in tmp_path.glob("**/precious"))
    assert len(list(tmp_path.glob("**/precious"))) == 4


def test_a_lab_directory_entry_for_etc_is_refused() -> None:
    assert (
        LabDirectory(path="/etc").problem()
        == f"not a directory directly in {tempfile.gettempdir()}"
    )
    assert "does not start with" in str(LabDirectory(path=f"{tempfile.gettempdir()}/etc").problem())


@ROOT_ONLY
def test_recover_removes_a_lab_directory_owned_by_the_labs_user(temp: Path) -> None:
    lab = temp / "drills-lab-ours"
    lab.mkdir()
    os.chown(lab, 65534, 65534)  # the servers' OS user, as a root drill makes it
    path = dead_journal(temp, LabDirectory(path=str(lab), owner=65534).model_dump())
    assert recover(path) == [f"removed lab {lab}"]
    assert not lab.exists()


@pytest.mark.parametrize(
    ("path", "copy", "problem"),
    [
        ("{tmp}/etc/passwd", "{lab}/copy", "{tmp}/etc/passwd is not inside a lab directory"),
        ("{lab}/a/pg_hba.conf", "{tmp}/etc/shadow", "{tmp}/etc/shadow is not inside a lab"),
        ("{temp}/drills-lab-/passwd", "{lab}/copy", "is not inside a lab directory"),
        ("{lab}/../../etc/passwd", "{lab}/copy", "is not inside a lab directory"),
        ("{lab}/link/passwd", "{lab}/copy", "{lab}/link/passwd is reached through a symbolic"),
    ],
)
def test_recover_writes_configuration_files_back_only_inside_a_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, copy: str, problem: str
) -> None:
    temp = tmp_path / "tmp"
    lab = temp / "drills-lab-q"
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (lab / "a").mkdir(parents=True)
    (lab / "copy").write_text("from the lab")
    (tmp_path / "etc").mkdir()
    for name in ("passwd", "shadow"):
        (tmp_path / "etc" / name).write_text("precious")
    (lab / "link").symlink_to(tmp_path / "etc")
    names = {"tmp": tmp_path, "temp": temp, "lab": lab}
    entry = {"op": "config-file", "path": path.format(**names), "copy_path": copy.format(**names)}
    done = recover(dead_journal(tmp_path, entry))
    assert (
        done[0].startswith("refused config-file entry of ") and problem.format(**names) in done[0]
    )
    assert done[1].startswith("journal kept")
    assert [p.read_text() for p in (tmp_path / "etc").iterdir()] == ["precious", "precious"]
    good = {
        "op": "config-file",
        "path": str(lab / "a" / "pg_hba.conf"),
        "copy_path": str(lab / "copy"),
    }
    assert recover(dead_journal(tmp_path, good)) == [f"put back {lab / 'a' / 'pg_hba.conf'}"]


def test_recover_resumes_a_patroni_members_trees_only_if_they_are_the_ones_recorded(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5  # SIGSTOP takes effect asynchronously
    while state(sleeper.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    root = [sleeper.pid, start_time(sleeper.pid)]
    refused = [
        ({"roots": [root]}, "roots recorded without their start time and executable"),
        ({"roots": [[1, -1]], "exes": ["/sbin/init"]}, "pid 1 is pid 1 (init"),
    ]
    for fields, problem in refused:
        done = recover(dead_journal(tmp_path, {"op": "pause-trees", "target": "a1", **fields}))
        assert problem in done[0] and done[1].startswith("journal kept")
    other = {"op": "pause-trees", "target": "a1", "roots": [root], "exes": ["/bin/sh"]}
    assert recover(dead_journal(tmp_path, other)) == []
    assert state(sleeper.pid) == "T"
    ours = other | {"exes": [SLEEP]}
    assert recover(dead_journal(tmp_path, ours)) == ["resumed a1 (1 processes)"]
    assert state(sleeper.pid) != "T"
