"""Identities of processes: a signal reaches a process only while it is the one identified."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from drills import proctree
from drills.errors import TargetError
from drills.proctree import (
    Identity,
    descendant_identities,
    identify,
    refusal,
    signal_pids,
    signal_process,
    signal_tree,
    state,
)

SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")


@pytest.fixture
def tree() -> Iterator[tuple[Identity, Identity]]:
    """A shell and the sleep it started: a root and its child."""
    proc = subprocess.Popen(["sh", "-c", f"{SLEEP} 60; true"], start_new_session=True)
    deadline = time.monotonic() + 5
    while not proctree.descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    root = identify(proc.pid)
    children = descendant_identities(root) if root else []
    assert root is not None and len(children) == 1
    yield root, children[0]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _stopped(pid: int) -> bool:
    deadline = time.monotonic() + 2
    while state(pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    return state(pid) == "T"


def test_an_identity_is_pid_start_and_executable(tree: tuple[Identity, Identity]) -> None:
    _, child = tree
    assert child.exe == SLEEP
    assert identify(child.pid) == child
    assert identify(-1) is None and identify(0) is None


def test_a_process_that_is_not_the_one_identified_is_not_signalled(
    tree: tuple[Identity, Identity],
) -> None:
    _, child = tree
    for other in (replace(child, start=child.start + 1), replace(child, exe="/bin/sh")):
        assert signal_process(other, signal.SIGSTOP) is False
    assert not _stopped(child.pid)
    assert signal_process(child, signal.SIGSTOP) is True
    assert _stopped(child.pid)
    os.kill(child.pid, signal.SIGCONT)


def test_a_descendant_replaced_between_scan_and_signal_is_left_alone(
    tree: tuple[Identity, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, child = tree
    replaced = replace(child, start=child.start + 1)  # what the scan saw is not there any more
    monkeypatch.setattr(proctree, "descendant_identities", lambda _: [replaced])
    assert signal_tree(root, signal.SIGSTOP) == [root.pid]
    assert _stopped(root.pid) and state(child.pid) != "T"
    os.kill(root.pid, signal.SIGCONT)


def test_a_root_that_is_not_the_one_identified_gets_nothing(
    tree: tuple[Identity, Identity],
) -> None:
    root, child = tree
    assert signal_tree(replace(root, exe="/usr/sbin/sshd"), signal.SIGSTOP) == []
    assert signal_tree(root, signal.SIGSTOP) == [root.pid, child.pid]
    assert _stopped(root.pid) and _stopped(child.pid)
    signal_tree(root, signal.SIGCONT)


def test_pid_1_drills_and_its_ancestors_are_never_signalled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[object] = []
    monkeypatch.setattr(os, "kill", lambda *args: sent.append(args))
    monkeypatch.setattr(signal, "pidfd_send_signal", lambda *args: sent.append(args))
    for pid in (1, os.getpid(), os.getppid(), 0, -1):
        assert refusal(pid) is not None
        signal_pids([pid], signal.SIGCONT)
        if pid > 0:
            with pytest.raises(TargetError, match=f"refusing to signal pid {pid}: it is"):
                signal_tree(pid, signal.SIGCONT)
    assert sent == []
    assert refusal(os.getpid() + 10_000_000) is None


def test_a_threads_id_is_not_a_process_to_signal() -> None:
    started = threading.Event()
    done = threading.Event()
    tids: list[int] = []

    def run() -> None:
        tids.append(threading.get_native_id())
        started.set()
        done.wait(5)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        started.wait(5)
        process = identify(tids[0])
        assert process is not None
        assert signal_process(process, signal.SIGCONT) is False
    finally:
        done.set()
        thread.join()
