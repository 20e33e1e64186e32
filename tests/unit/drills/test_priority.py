"""The harness's timing threads (the probe loop, the stall watch) are scheduled ahead of the
rest of the process where the system allows it, and only they are."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from drills.priority import BOOST, raise_thread_priority
from drills.reactor import Reactor
from drills.stalls import StallWatch


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def in_thread(action: Callable[[], int]) -> int:
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(action()))
    thread.start()
    thread.join(5)
    return found[0]


@pytest.fixture
def may_boost() -> int:
    """The niceness a boosted thread gets here; skips where the system refuses a boost."""

    def boosted() -> int:
        raise_thread_priority()
        return niceness()

    mine = niceness()
    if in_thread(boosted) == mine:
        pytest.skip("this process may not raise a thread's priority (no CAP_SYS_NICE)")
    return max(-20, mine - BOOST)


def test_the_probe_loop_thread_alone_is_boosted(may_boost: int) -> None:
    mine = niceness()
    reactor = Reactor()
    loop = reactor.acquire()
    seen: list[int] = []
    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (seen.append(niceness()), done.set()))
    try:
        assert done.wait(5)
    finally:
        reactor.release()
    assert seen == [may_boost]
    assert niceness() == mine


def test_the_stall_watch_is_boosted_like_the_loop(may_boost: int) -> None:
    watch = StallWatch()
    watch.acquire()
    try:
        thread = watch._thread
        assert thread is not None and thread.native_id is not None
        give_up = time.monotonic() + 2  # the thread boosts itself once it runs
        while (found := os.getpriority(os.PRIO_PROCESS, thread.native_id)) != may_boost:
            if time.monotonic() > give_up:
                break
            time.sleep(0.01)
    finally:
        watch.release()
    assert found == may_boost


def test_without_the_right_the_thread_keeps_its_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(which: int, who: int, priority: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    mine = niceness()
    assert in_thread(lambda: (raise_thread_priority(), niceness())[1]) == mine
