"""The probe loop: timers in order, one-shot socket waits that time out, a thread that lives
exactly as long as someone uses it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from drills.probe import READ
from drills.reactor import EventLoop, Reactor

MS = 1_000_000


def on_loop(loop: EventLoop, action: Callable[[], None]) -> None:
    done = threading.Event()

    def run() -> None:
        action()
        done.set()

    loop.call_soon_threadsafe(run)
    assert done.wait(5)


def test_timers_run_in_time_order_and_not_before_they_are_due() -> None:
    reactor = Reactor()
    loop = reactor.acquire()
    fired: list[tuple[str, int]] = []
    done = threading.Event()
    start = time.monotonic_ns()

    def schedule() -> None:
        for name, delay in (("c", 30), ("a", 10), ("b", 20)):
            due = start + delay * MS
            loop.call_at(due, lambda n=name, d=due: fired.append((n, time.monotonic_ns() - d)))
        loop.call_at(start + 40 * MS, done.set)

    try:
        loop.call_soon_threadsafe(schedule)
        assert done.wait(5)
    finally:
        reactor.release()
    assert [name for name, _ in fired] == ["a", "b", "c"]
    assert all(late >= 0 for _, late in fired)


def test_a_wait_fires_once_when_the_socket_is_ready_and_is_then_forgotten() -> None:
    reactor = Reactor()
    loop = reactor.acquire()
    ours, theirs = socket.socketpair()
    calls: list[bool] = []
    woke = threading.Event()

    def ready(timed_out: bool) -> None:
        calls.append(timed_out)
        woke.set()

    try:
        on_loop(
            loop, lambda: loop.wait(ours.fileno(), READ, ready, time.monotonic_ns() + 5 * 10**9)
        )
        theirs.send(b"x")
        assert woke.wait(5)
        theirs.send(b"y")  # still readable: no second call, since the wait was one-shot
        time.sleep(0.05)
    finally:
        reactor.release()
        ours.close()
        theirs.close()
    assert calls == [False]


def test_a_wait_that_is_not_ready_by_its_time_is_told_it_timed_out() -> None:
    reactor = Reactor()
    loop = reactor.acquire()
    ours, theirs = socket.socketpair()
    calls: list[tuple[bool, int]] = []
    woke = threading.Event()
    until = time.monotonic_ns() + 30 * MS

    def ready(timed_out: bool) -> None:
        calls.append((timed_out, time.monotonic_ns()))
        woke.set()

    try:
        on_loop(loop, lambda: loop.wait(ours.fileno(), READ, ready, until))
        assert woke.wait(5)
        on_loop(loop, lambda: loop.wait(ours.fileno(), READ, ready))  # the fd can be watched again
        on_loop(loop, lambda: loop.forget(ours.fileno()))
    finally:
        reactor.release()
        ours.close()
        theirs.close()
    assert len(calls) == 1 and calls[0][0] is True and calls[0][1] >= until


def test_the_loop_thread_runs_from_the_first_user_to_the_last() -> None:
    reactor = Reactor()
    first = reactor.acquire()
    second = reactor.acquire()
    assert first is second and first.thread.is_alive()
    reactor.release()
    assert first.thread.is_alive()
    reactor.release()
    assert not first.thread.is_alive()
    again = reactor.acquire()  # a new loop, not the stopped one
    try:
        assert again is not first and again.thread.is_alive()
    finally:
        reactor.release()


def test_a_callback_that_raises_is_reported_and_the_loop_lives_on(capsys: object) -> None:
    reactor = Reactor()
    loop = reactor.acquire()
    try:

        def broken() -> None:
            raise RuntimeError("boom")

        loop.call_soon_threadsafe(broken)
        on_loop(loop, lambda: None)
    finally:
        reactor.release()
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "internal error in the probe loop" in err and "boom" in err
