"""Which drills of a quarter the report draws a timeline for: every one when they are few; a
quarter of CI runs would otherwise be thousands of charts (a minute of drawing each hundred,
and a page nobody reads). Then: every drill that did not pass, newest first, then the newest of
each scenario, then the newest, up to `LIMIT`; the table still lists every drill."""

from __future__ import annotations

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
