"""The state of the required drills as `drills due` shows it: a table, a summary line, JSON."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from tabulate import tabulate

from drills.quarters import Quarter
from drills.records import Run
from drills.schedule.model import State, Status


def last_day(end: datetime) -> str:
    """The last day inside a window whose end is the first instant after it."""
    return f"{end - timedelta(days=1):%Y-%m-%d}"


def _window(s: Status) -> str:
    return f"{s.window_start:%Y-%m-%d} to {last_day(s.window_end)}"


def _days(delta: timedelta) -> str:
    if delta.days < 1:
        return "less than a day"
    return f"{delta.days} day{'s' * (delta.days != 1)}"


def _note(s: Status, now: datetime) -> str:
    notes = []
    if s.state is State.UPCOMING:
        notes.append(f"opens in {_days(s.window_start - now)}")
    elif s.state is State.DUE:
        notes.append(f"{_days(s.window_end - now)} left")
    elif s.state is State.OVERDUE:
        notes.append("window closed without a pass")
    if s.rerun_after_failure:
        notes.append(f"failed {s.failed_runs}x, run again and passed")
    elif s.failed_runs and s.state is not State.DONE:
        notes.append(f"failed {s.failed_runs}x, not passed yet")
    elif s.failed_runs:
        notes.append(f"failed {s.failed_runs}x after passing")
    return "; ".join(notes)


def _when(run: Run | None) -> str:
    return "never" if run is None else f"{run.started:%Y-%m-%d %H:%M}"


def due_table(statuses: list[Status], now: datetime) -> str:
    rows = [
        [
            s.requirement.scenario,
            _window(s),
            s.state.value,
            len(s.runs),
            s.failed_runs,
            _when(s.last_pass),
            _note(s, now),
        ]
        for s in statuses
    ]
    headers = ["required", "window", "state", "runs", "failed", "last passed (UTC)", "note"]
    return tabulate(rows, headers=headers, tablefmt="github")


def due_summary(
    statuses: list[Status], quarter: Quarter, now: datetime, left_out: list[str] | None = None
) -> str:
    counts = Counter(s.state for s in statuses)
    parts = ", ".join(f"{counts[state]} {state.value}" for state in State)
    text = f"{quarter}, as of {now:%Y-%m-%d %H:%M} UTC: {len(statuses)} required, {parts}"
    if left_out:
        text += f"; {len(left_out)} records left out (they fail verification)"
    overdue = [s.requirement.scenario for s in statuses if s.state is State.OVERDUE]
    return f"{text}; OVERDUE: {', '.join(overdue)}" if overdue else text


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.record.run_id,
        "started_at": _iso(run.started),
        "verdict": run.verdict.value,
        "record": str(run.path),
    }


def due_json(
    statuses: list[Status], quarter: Quarter, now: datetime, left_out: list[str] | None = None
) -> dict[str, Any]:
    counts = Counter(s.state for s in statuses)
    return {
        "quarter": str(quarter),
        "now": _iso(now),
        "counts": {state.value: counts[state] for state in State},
        "left_out": list(left_out or []),  # "path: why", records that fail verification
        "overdue": [s.requirement.scenario for s in statuses if s.state is State.OVERDUE],
        "required": [
            {
                "scenario": s.requirement.scenario,
                "cadence": s.requirement.cadence,
                "month": s.requirement.month,
                "file": s.requirement.path,
                "state": s.state.value,
                "window_start": _iso(s.window_start),
                "window_end": _iso(s.window_end),  # the first instant after the window
                "runs": [_run_json(r) for r in s.runs],
                "run_count": len(s.runs),
                "failed_runs": s.failed_runs,
                "rerun_after_failure": s.rerun_after_failure,
                "last_pass": None if s.last_pass is None else _run_json(s.last_pass),
            }
            for s in statuses
        ],
    }
