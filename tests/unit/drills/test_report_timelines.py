"""Which drills a quarterly report draws a timeline for when the quarter has many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from drills.report_timelines import drawn, note


def run(n: int, scenario: str, passed: bool = True) -> Any:
    started = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=n)
    return SimpleNamespace(path=Path(f"r{n}"), scenario=scenario, passed=passed, started=started)


def test_every_timeline_when_few() -> None:
    runs = [run(n, "a") for n in range(5)]
    assert drawn(runs, limit=5) == runs
    assert note(5, 5) == ""


def test_failures_first_then_the_newest_of_each_scenario_then_the_newest() -> None:
    runs = [run(n, "ab"[n % 2], passed=n not in (3, 7)) for n in range(20)]
    runs.append(run(20, "c"))
    runs += [run(n, "a") for n in range(21, 30)]
    picked = drawn(runs, limit=5)
    assert [r.path.name for r in picked] == ["r3", "r7", "r19", "r20", "r29"]
    assert picked == sorted(picked, key=lambda r: r.started)
    assert note(5, 30).startswith("Timelines of 5 of the quarter's 30 drills")
