"""The harness's timing threads (the probe loop, the stall watch) are scheduled ahead of the
rest of the process where the system allows it (ten niceness points; the real-time policy
SCHED_RR with DRILLS_PRIORITY=realtime), and only they are."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from drills.priority import BOOST, REALTIME_PRIORITY, raise_thread_priority
from drills.reactor import Reactor
from drills.stalls import StallWatch

T = TypeVar("T")


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def policy(thread: int = 0) -> int:
    return os.sched_getscheduler(thread or threading.get_native_id()) & ~os.SCHED_RESET_ON_FORK


def in_thread(action: Callable[[], T]) -> T:
    found: list[T] = []
    thread = threading.Thread(target=lambda: found.append(action()))
    thread.start()
    thread.join(5)
    return found[0]


@pytest.fixture
def realtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRILLS_PRIORITY=realtime; skips where the system refuses the real-time policy (no
    CAP_SYS_NICE, RLIMIT_RTPRIO)."""
    monkeypatch.setenv("DRILLS_PRIORITY", "realtime")
    if in_thread(raise_thread_priority) != "realtime":
        pytest.skip("this process may not use SCHED_RR (no CAP_SYS_NICE or RLIMIT_RTPRIO)")


def test_the_probe_loop_thread_alone_runs_real_time(realtime: None) -> None:
    reactor = Reactor()
    loop = reactor.acquire()
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def look() -> None:
        seen.append((policy(), os.sched_getparam(0).sched_priority))
        done.set()

    loop.call_soon_threadsafe(look)
    try:
        assert done.wait(5)
    finally:
        reactor.release()
    assert seen == [(os.SCHED_RR, REALTIME_PRIORITY)]
    assert policy() == os.SCHED_OTHER


def test_the_stall_watch_runs_like_the_loop(realtime: None) -> None:
    watch = StallWatch()
    watch.acquire()
    try:
        thread = watch._thread
        assert thread is not None and thread.native_id is not None
        give_up = time.monotonic() + 2  # the thread raises itself once it runs
        while (found := policy(thread.native_id)) != os.SCHED_RR:
            if time.monotonic() > give_up:
                break
            time.sleep(0.01)
    finally:
        watch.release()
    assert found == os.SCHED_RR


def test_threads_a_real_time_thread_starts_are_normal_again(realtime: None) -> None:
    def starts_one() -> int:
        raise_thread_priority()
        return in_thread(policy)

    assert in_thread(starts_one) == os.SCHED_OTHER


def test_by_default_the_thread_lowers_its_niceness_and_stays_normal() -> None:
    mine = niceness()
    got, nice, found = in_thread(lambda: (raise_thread_priority(), niceness(), policy()))
    if got == "":
        pytest.skip("this process may not raise a thread's priority (no CAP_SYS_NICE)")
    assert (got, nice, found) == ("nice", max(-20, mine - BOOST), os.SCHED_OTHER)


def test_refused_real_time_the_thread_lowers_its_niceness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILLS_PRIORITY", "realtime")

    def refused(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refused)
    mine = niceness()
    got, nice = in_thread(lambda: (raise_thread_priority(), niceness()))
    if got == "":
        pytest.skip("this process may not raise a thread's priority (no CAP_SYS_NICE)")
    assert (got, nice) == ("nice", max(-20, mine - BOOST))


def test_drills_priority_nice_asks_for_the_niceness_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILLS_PRIORITY", "nice")
    got, found = in_thread(lambda: (raise_thread_priority(), policy()))
    assert got in ("nice", "") and found == os.SCHED_OTHER


def test_without_any_right_the_thread_keeps_its_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refused)
    monkeypatch.setattr(os, "setpriority", refused)
    mine = niceness()
    assert in_thread(lambda: (raise_thread_priority(), niceness())) == ("", mine)
    monkeypatch.setenv("DRILLS_PRIORITY", "none")
    monkeypatch.undo()
    monkeypatch.setenv("DRILLS_PRIORITY", "none")
    assert in_thread(lambda: (raise_thread_priority(), policy())) == ("", os.SCHED_OTHER)
