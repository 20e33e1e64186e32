"""SIGINT and SIGTERM become `Interrupted` in the main thread; during cleanup they wait."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from drills.errors import Aborted, Interrupted

# SIGHUP: the terminal went away; the lab's servers run in sessions of their own and would
# outlive the harness if it died of it.
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


_abort_reason: list[str] = []


def abort(condition: str) -> None:
    """From any thread: make the main thread raise Aborted(condition) at its next bytecode."""
    if not _abort_reason:
        _abort_reason.append(condition)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)


def _raise_aborted(signum: int, frame: FrameType | None) -> None:
    for sig in HANDLED:
        signal.signal(sig, _defer)
    raise Aborted(_abort_reason[0] if _abort_reason else "stop condition")


def _raise(signum: int, frame: FrameType | None) -> None:
    # From here on a second signal must not cut the cleanup short.
    for sig in HANDLED:
        signal.signal(sig, _defer)
    raise Interrupted(signal.Signals(signum).name)


def _defer(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP, a closed pipe)
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: cleaning up (reverting faults, removing the lab); "
            "please wait\n"
        )


@contextmanager
def interruptible() -> Iterator[None]:
    _abort_reason.clear()
    previous = {sig: signal.signal(sig, _raise) for sig in HANDLED}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, _raise_aborted)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Cleanup must finish: a second Ctrl-C only says so, and a late stop condition is moot."""
    previous = {sig: signal.signal(sig, _defer) for sig in HANDLED}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def held() -> Iterator[None]:
    """An engine request that must not be cut in half: the engine finishes it even if the
    harness stops waiting, so a signal arriving meanwhile is acted on once it returns (as if
    it came just after), and the revert then sees the fault really in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    watched = (*HANDLED, signal.SIGUSR1)
    previous = {sig: signal.signal(sig, note) for sig in watched}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        handler = previous[signal.Signals(arrived[0])]
        if callable(handler):
            handler(arrived[0], None)
