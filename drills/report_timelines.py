"""Which drills of a quarter the report draws a timeline for: every one when they are few; a
quarter of CI runs would otherwise be thousands of charts (a minute of drawing each hundred,
and a page nobody reads). Then: every drill that did not pass, newest first, then the newest of
each scenario, then the newest, up to `LIMIT`; the table still lists every drill."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from drills import charts
from drills.errors import RecordError
from drills.records import Run

LIMIT = 24


def drawn(runs: list[Run], limit: int = LIMIT) -> list[Run]:
    """The runs to draw, in time order (`runs` are oldest first)."""
    if len(runs) <= limit:
        return runs
    newest_first = list(reversed(runs))
    latest: dict[str, Run] = {}
    for run in newest_first:
        latest.setdefault(run.scenario, run)
    picked: dict[int, Run] = {}
    for run in [r for r in newest_first if not r.passed] + list(latest.values()) + newest_first:
        if len(picked) == limit:
            break
        picked.setdefault(id(run), run)
    return sorted(picked.values(), key=lambda run: run.started)


def note(drawn_count: int, total: int) -> str:
    if drawn_count == total:
        return ""
    return (
        f"Timelines of {drawn_count} of the quarter's {total} drills: every one that did not "
        "pass (newest first), then the newest of each scenario, then the newest. "
        "`drills show RUN` prints any run's tables; each run's own report has its timeline."
    )


def rendered(runs: list[Run]) -> dict[int, tuple[bytes | None, str]]:
    """Each run's timeline PNG (by `id(run)`), or None and why it has none. The histories are
    read here; the charts (about 0.1 s each) are drawn by a process per core."""
    out: dict[int, tuple[bytes | None, str]] = {}
    jobs: list[tuple[int, tuple[Any, ...]]] = []
    for run in runs:
        try:
            history = run.history()
        except RecordError as exc:
            out[id(run)] = (None, f"no timeline: {exc}")
            continue
        title = f"{run.scenario}, {run.started:%Y-%m-%d %H:%M} UTC: {run.verdict}"
        jobs.append((id(run), (run.record, history, title)))
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or len(jobs) < 4:
        pngs = [_draw(job) for _, job in jobs]
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            pngs = list(pool.map(_draw, [job for _, job in jobs]))
    for (key, _), png in zip(jobs, pngs, strict=True):
        out[key] = (png, "")
    return out


def _draw(job: tuple[Any, ...]) -> bytes:
    return charts.record_timeline(*job)
