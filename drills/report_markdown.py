"""The quarterly report as Markdown (`report.md`): every text that comes from a record is
escaped, so a viewer that renders HTML inside Markdown shows it as text."""

from __future__ import annotations

import html as html_text
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

if TYPE_CHECKING:
    from drills.report import Report


def markdown(report: Report, chart_dir: str) -> str:
    def table(rows: list[list[str]] | list[dict[str, str]], headers: Any) -> str:
        safe = [
            {k: _md(v) for k, v in row.items()} if isinstance(row, dict) else list(map(_md, row))
            for row in rows
        ]
        return tabulate(safe, headers=headers, tablefmt="github") if rows else "_none_"

    b = report.budget
    share = "n/a" if b.share is None else f"{b.share:.2%}"
    lines = [
        f"# Disaster-recovery drills, {report.quarter}",
        "",
        f"Generated {report.generated} from {len(report.rows)} run records.",
        "",
        *_left_out(report),
        "## Summary",
        "",
        table(report.summary, ["", "count"]),
        "",
        table(report.by_scenario, ["scenario", "runs", "passed", "failed"]),
        "",
        table(report.worst, ["", "measured", "objective", "drill"]),
        "",
        "## Drills",
        "",
        table(report.rows, "keys"),
        "",
        "## Error budget",
        "",
        f"Downtime measured in drills: {b.used_s:.3f}s, {share} of the "
        f"{b.budget_s:.1f}s that {b.objective:.4%} allows over the quarter.",
        "",
        f"![error budget]({chart_dir}/error-budget.png)",
        "",
        "## Coverage",
        "",
        _md(report.coverage_note),
        "",
        table(report.coverage, ["required", "window", "state", "runs", "note"]),
        "",
        "## RTO and RPO",
        "",
    ]
    lines += [
        f"![{_md(c.title)}]({chart_dir}/{c.name}.png)\n"
        for c in report.charts
        if c.name != "error-budget"
    ]
    lines += ["## Timelines", ""]
    if report.timelines_note:
        lines += [_md(report.timelines_note), ""]
    for section in report.drills:
        if section.chart is not None:
            title, name = _md(section.chart.title), section.chart.name
            lines.append(f"![{title}]({chart_dir}/{name}.png)\n")
        else:
            lines.append(f"{_md(section.run.record.run_id)}: {_md(section.note)}\n")
    return "\n".join(lines) + "\n"


def _md(value: Any) -> Any:
    """A value as Markdown text: what a viewer would take for HTML (`<script>`) is escaped."""
    return html_text.escape(value, quote=False) if isinstance(value, str) else value


def _left_out(report: Report) -> list[str]:
    if not report.left_out:
        return []
    head = f"**{len(report.left_out)} records left out: they fail verification (drills verify).**"
    return [head, "", *(f"- {_md(line)}" for line in report.left_out), ""]
