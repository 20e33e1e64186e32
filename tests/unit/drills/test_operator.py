"""How a manual step gets its acknowledgement: auto, `drills ack`, Enter on a terminal."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TextIO

from drills.acks import acknowledge, waiting_runs
from drills.operator import Operator, who


def operator(
    tmp_path: Path, auto: float | None = None, terminal: TextIO | None = None
) -> tuple[Operator, list[str]]:
    shown: list[str] = []
    return Operator("run-1", tmp_path, shown.append, auto, terminal), shown


def test_auto_ack_after_the_given_time_is_recorded_as_automatic(tmp_path: Path) -> None:
    op, shown = operator(tmp_path, auto=0.2)
    before = time.monotonic_ns()
    ack = op.wait(1, "promote B", "dba", None)
    assert ack is not None and (ack.by, ack.via) == ("auto", "auto")
    assert ack.at_ns - before >= 0.2e9
    assert "automatically after 0.2s" in shown[0]
    assert waiting_runs(tmp_path) == []  # withdrawn


def test_drills_ack_from_elsewhere_is_timed_by_its_own_clock(tmp_path: Path) -> None:
    op, shown = operator(tmp_path)
    delay = 0.3

    def later() -> None:
        time.sleep(delay)
        acknowledge(tmp_path, "run-1", "ana", "failover done")

    threading.Thread(target=later).start()
    started = time.monotonic_ns()
    ack = op.wait(1, "promote B", "dba", 5)
    assert ack is not None and (ack.by, ack.via, ack.note) == ("ana", "drills ack", "failover done")
    assert abs((ack.at_ns - started) / 1e9 - delay) < 0.05
    assert shown == ["MANUAL (dba): promote B -- acknowledge: `drills ack --run run-1`"]


def test_unacknowledged_within_the_timeout_is_none(tmp_path: Path) -> None:
    assert operator(tmp_path)[0].wait(1, "x", "", 0.1) is None
    assert waiting_runs(tmp_path) == []


def test_enter_on_the_terminal_acknowledges_with_the_line_as_note(tmp_path: Path) -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "r") as terminal:
        op, shown = operator(tmp_path, terminal=terminal)
        threading.Timer(0.1, lambda: os.write(primary, b"B promoted\n")).start()
        ack = op.wait(1, "promote B", "dba", 5)
    os.close(primary)
    assert ack is not None and (ack.by, ack.via, ack.note) == (who(), "terminal", "B promoted")
    assert shown[0].startswith("MANUAL (dba): promote B -- acknowledge: Enter here")


def test_enter_pressed_before_the_step_asked_does_not_acknowledge_it(tmp_path: Path) -> None:
    primary, secondary = os.openpty()
    os.write(primary, b"\n\n")  # typed during an earlier step
    time.sleep(0.05)
    with os.fdopen(secondary, "r") as terminal:
        assert operator(tmp_path, terminal=terminal)[0].wait(1, "x", "", 0.3) is None
    os.close(primary)


def test_end_of_input_is_not_an_acknowledgement(tmp_path: Path) -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "r") as terminal:
        op = operator(tmp_path, terminal=terminal)[0]
        threading.Timer(0.1, lambda: os.write(primary, b"\x04")).start()  # Ctrl-D
        assert op.wait(1, "x", "", 0.5) is None
    os.close(primary)


def test_the_instruction_is_written_for_drills_ack_with_secrets_masked(tmp_path: Path) -> None:
    op, _ = operator(tmp_path)
    op.redact = lambda text: text.replace("hunter2", "***")
    seen: list[str] = []

    def look() -> None:
        time.sleep(0.1)
        seen.extend(w.instruction for w in waiting_runs(tmp_path))
        acknowledge(tmp_path, "run-1", "ana", "")

    threading.Thread(target=look).start()
    assert op.wait(1, "log in with hunter2", "", 5) is not None
    assert seen == ["log in with ***"]
