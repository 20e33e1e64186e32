"""Quarterly drill reports: `reports/<quarter>/report.md` and a self-contained `report.html`.

Built from the run records of the quarter (and the four quarters up to it, for trends), their
histories (for the timeline charts), and the rehearsal schedule (for coverage).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader

from drills import charts
from drills import report_timelines as timelines
from drills.checker import Overall, Verdict, error_budget_s
from drills.errors import DrillsError
from drills.quarters import Quarter
from drills.records import KeyFrom, Run, SigningKey, in_quarter, load_runs, write_atomically
from drills.records.model import Measurements, ObjectivesRecord, ObjectiveVerdict, RunRecord
from drills.report_markdown import markdown
from drills.schedule import State, Status, load_schedule, status


@dataclass
class Chart:
    name: str
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


@dataclass(frozen=True)
class Figure:
    """A measured figure judged against an objective, read from a run's record."""

    label: str
    measured: Callable[[Measurements], float | None]
    objective: Callable[[ObjectivesRecord], float]

    def of(self, run: Run) -> float | None:
        value = self.measured(run.record.measurements)
        return None if value is None else float(value)


FIGURES = (
    Figure("RTO", lambda m: m.rto_s, lambda o: o.rto_s),
    Figure("RPO", lambda m: m.rpo_s, lambda o: o.rpo_s),
)


@dataclass(frozen=True)
class Budget:
    """The quarter's downtime in drills against the error budget of the strictest objective."""

    objective: float
    budget_s: float
    used_s: float
    share: float | None
    runs: int


@dataclass
class DrillSection:
    run: Run
    row: dict[str, str]
    chart: Chart | None
    note: str = ""


@dataclass
class Report:
    quarter: Quarter
    generated: str
    summary: list[list[str]]
    by_scenario: list[list[str]]
    worst: list[list[str]]
    rows: list[dict[str, str]]
    drills: list[DrillSection]
    budget: Budget
    coverage: list[list[str]]
    coverage_note: str
    charts: list[Chart] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # records failing verification, why
    timelines_note: str = ""  # which drills have a timeline, when not all (report_timelines)


def _s(value: object, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(str(value)):.{digits}f}s"


def _pct(value: object, digits: int = 4) -> str:
    return "n/a" if value is None else f"{float(str(value)) * 100:.{digits}f}%"


def _row(run: Run) -> dict[str, str]:
    r = run.record
    m, o, v = r.measurements, r.objectives, r.verdicts
    return {
        "date": run.started.strftime("%Y-%m-%d %H:%M"),
        "scenario": run.scenario,
        "RTO": f"{_s(m.rto_s)} / {_s(o.rto_s, 0)} {r.judged('rto')}",
        "RPO": f"{_s(m.rpo_s)} / {_s(o.rpo_s, 0)} {r.judged('rpo')}",
        "downtime": _s(m.downtime_s),
        "lost writes": "n/a" if m.lost_writes is None else str(m.lost_writes),
        # The drill window's own percentage would read as a failure next to `met`: the figure
        # judged is the share of the quarter's error budget the drill's downtime used.
        "availability": f"{_pct(m.error_budget_share, 2)} of the quarter's error budget "
        f"{r.judged('availability')}",
        "split brain": _split_brain(v),
        "probe objectives": _probe_objectives(v),
        "incident level": _level(r),
        "verdict": run.verdict.value,
    }


def _probe_objectives(verdicts: dict[str, ObjectiveVerdict]) -> str:
    """The objectives of probes other than the service probe: `shop RTO 1.200s / 60s met`."""
    said = []
    for key, judged in verdicts.items():
        objective, _, probe = key.partition(":")
        if not probe:
            continue
        if objective == "rto":
            figures = f"RTO {_s(judged.measured)} / {_s(judged.objective, 0)}"
        else:
            figures = f"availability {_pct(judged.measured, 2)} / {_pct(judged.objective, 2)}"
        said.append(f"{probe} {figures} {judged.verdict.value}")
    return "; ".join(said) or "n/a"


def _level(record: RunRecord) -> str:
    """`level 1: response 41.200s / 900s met; recovery 3.100s / 3600s met`."""
    if record.check.level is None:
        return "n/a"
    said = [
        f"{name} {_s(found.measured)} / {_s(found.objective, 0)} {found.verdict.value}"
        for name in ("response", "recovery")
        if (found := record.verdicts.get(name)) is not None
    ]
    return f"level {record.check.level.level}: " + "; ".join(said)


def _split_brain(verdicts: dict[str, ObjectiveVerdict]) -> str:
    judged = verdicts.get("split_brain")
    if judged is None:
        return "n/a"
    if judged.verdict is Verdict.MET:
        return "none"
    return f"{judged.measured} writes, missed"


def _timeline_chart(run: Run, drawn: tuple[bytes | None, str]) -> tuple[Chart | None, str]:
    png, note = drawn
    if png is None:
        return None, note
    return Chart(f"timeline-{run.record.run_id}", f"Timeline of {run.record.run_id}", png), ""


def _summary(runs: list[Run]) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    passed = sum(r.passed for r in runs)
    failed = sum(r.verdict is Overall.FAIL for r in runs)
    errors = len(runs) - passed - failed
    summary = [
        ["drills run", str(len(runs))],
        ["passed", str(passed)],
        ["failed", str(failed)],
        ["could not run / judge", str(errors)],
    ]
    by_scenario = []
    for scenario in sorted({r.scenario for r in runs}):
        mine = [r for r in runs if r.scenario == scenario]
        by_scenario.append(
            [
                scenario,
                str(len(mine)),
                str(sum(r.passed for r in mine)),
                str(sum(r.verdict is Overall.FAIL for r in mine)),
            ]
        )
    return summary, by_scenario, [_worst(runs, figure) for figure in FIGURES]


def _worst(runs: list[Run], figure: Figure) -> list[str]:
    measured = [(value, r) for r in runs if (value := figure.of(r)) is not None]
    if not measured:
        return [f"worst {figure.label}", "n/a", "", ""]
    value, top = max(measured, key=lambda pair: pair[0])
    objective = float(figure.objective(top.record.objectives))
    return [
        f"worst {figure.label}",
        f"{value:.3f}s",
        f"{objective:g}s" + (f" ({value / objective:.2%})" if objective else ""),
        f"{top.scenario}, {top.started:%Y-%m-%d}",
    ]


def _series(
    runs: list[Run], figure: Figure
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
    series: dict[str, list[tuple[str, float]]] = {}
    objectives: dict[str, float] = {}
    for run in runs:
        value = figure.of(run)
        if value is None:
            continue
        series.setdefault(run.scenario, []).append((f"{run.started:%m-%d %H:%M}", value))
        objectives[run.scenario] = float(figure.objective(run.record.objectives))
    return series, objectives


def _trend(
    runs: list[Run], quarters: list[Quarter], figure: Figure
) -> dict[str, list[tuple[str, float]]]:
    """Worst value per scenario per quarter."""
    series: dict[str, list[tuple[str, float]]] = {}
    for quarter in quarters:
        for scenario in sorted({r.scenario for r in runs}):
            values = [
                value
                for r in in_quarter(runs, quarter)
                if r.scenario == scenario and (value := figure.of(r)) is not None
            ]
            if values:
                series.setdefault(scenario, []).append((str(quarter), max(values)))
    return series


def _budget(runs: list[Run], quarter: Quarter) -> Budget:
    downtime = sum(float(r.record.measurements.downtime_s or 0) for r in runs)
    objectives = [float(r.record.objectives.availability) for r in runs]
    objective = max(objectives) if objectives else 0.9999
    budget = error_budget_s(objective, quarter)
    return Budget(objective, budget, downtime, downtime / budget if budget > 0 else None, len(runs))


def _coverage(statuses: list[Status]) -> list[list[str]]:
    rows = []
    for s in statuses:
        last_day = s.window_end - timedelta(days=1)
        window = f"{s.window_start:%Y-%m-%d} to {last_day:%Y-%m-%d}"
        note = []
        if s.rerun_after_failure:
            note.append(f"failed {s.failed_runs}x, run again and passed")
        elif s.failed_runs and s.state is not State.DONE:
            note.append(f"failed {s.failed_runs}x, not passed yet")
        rows.append(
            [s.requirement.scenario, window, s.state.value, str(len(s.runs)), "; ".join(note)]
        )
    return rows


def build(
    quarter: Quarter,
    reports_dir: Path,
    schedule_path: Path | None,
    now: datetime,
    left_out: list[str] | None = None,
    key: SigningKey | KeyFrom | None = KeyFrom.ENVIRONMENT,
    runs: list[Run] | None = None,
) -> Report:
    """The quarter's report from the records of `reports_dir`, or from `runs` (a store's)."""
    left_out = [] if left_out is None else left_out
    all_runs = load_runs(reports_dir, left_out, key) if runs is None else runs
    runs = in_quarter(all_runs, quarter)  # one failing verification was left out
    summary, by_scenario, worst = _summary(runs)
    drawn = timelines.rendered(timelines.drawn(runs))
    to_draw = set(drawn)
    sections = []
    for run in runs:
        chart, note = _timeline_chart(run, drawn[id(run)]) if id(run) in to_draw else (None, "")
        sections.append(DrillSection(run, _row(run), chart, note))
    report_charts: list[Chart] = []
    for figure in FIGURES:
        what = figure.label
        series, objectives = _series(runs, figure)
        if series:
            report_charts.append(
                Chart(
                    f"{what.lower()}-runs",
                    f"{what} per drill this quarter",
                    charts.against_objective(series, objectives, what),
                )
            )
        trend = _trend(all_runs, quarter.last(4), figure)
        if trend:
            report_charts.append(
                Chart(
                    f"{what.lower()}-trend",
                    f"Worst {what} per quarter, last four",
                    charts.against_objective(trend, objectives, f"worst {what}"),
                )
            )
    budget = _budget(runs, quarter)
    report_charts.append(
        Chart(
            "error-budget",
            "Error budget",
            charts.error_budget(
                budget.used_s,
                budget.budget_s,
                f"{budget.used_s:.1f}s of downtime in drills against the "
                f"{budget.budget_s:.1f}s budget of {budget.objective:.4%} over {quarter}",
            ),
        )
    )
    coverage: list[list[str]] = []
    coverage_note = "no schedule given"
    if schedule_path is not None:
        schedule = load_schedule(schedule_path)
        as_of = min(now, quarter.end)
        statuses = status(schedule, all_runs, quarter, as_of)
        coverage = _coverage(statuses)
        done = sum(s.state is State.DONE for s in statuses)
        coverage_note = f"{done} of {len(statuses)} required drills passed (as of {as_of:%Y-%m-%d})"
    return Report(
        quarter=quarter,
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary,
        by_scenario=by_scenario,
        worst=worst,
        rows=[s.row for s in sections],
        drills=[s for s in sections if id(s.run) in to_draw],
        budget=budget,
        coverage=coverage,
        coverage_note=coverage_note,
        charts=report_charts,
        left_out=left_out,
        timelines_note=timelines.note(len(to_draw), len(runs)),
    )


def html(report: Report) -> str:
    # Always escaped: select_autoescape() goes by the template's extension, and `.j2` is not one
    # it escapes, so a record's `<script>` would have run in the reader's browser.
    env = Environment(loader=PackageLoader("drills", "templates"), autoescape=True)
    return env.get_template("report.html.j2").render(report=report)


def write(report: Report, out_dir: Path) -> tuple[Path, Path]:
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    for chart in [*report.charts, *(s.chart for s in report.drills if s.chart)]:
        (charts_dir / f"{chart.name}.png").write_bytes(chart.png)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_atomically(md_path, markdown(report, "charts"))
    write_atomically(html_path, html(report))
    return md_path, html_path


def run_report(
    quarter_text: str | None,
    reports_dir: Path,
    schedule: Path | None,
    out: Path,
    left_out: list[str] | None = None,
    key: SigningKey | KeyFrom | None = KeyFrom.ENVIRONMENT,
    runs: list[Run] | None = None,
) -> tuple[Path, Path]:
    try:
        quarter = Quarter.parse(quarter_text) if quarter_text else Quarter.current()
    except ValueError as exc:
        raise DrillsError(str(exc)) from exc
    report = build(quarter, reports_dir, schedule, datetime.now(UTC), left_out, key, runs)
    return write(report, out / str(quarter))
