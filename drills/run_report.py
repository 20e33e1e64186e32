"""The report of one run, written beside its record after every drill: `<run>.html`
(self-contained: the timeline chart embedded) and `<run>.md` (the chart as `<run>.png`).

Both hold the end-of-drill tables (objectives, findings such as lost writes and manual steps
with who acknowledged and when, probes) and the timeline: every probe's samples, each fault
shaded from its step until what ended it and each action over its own step (docs/reports.md).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from drills.charts import record_timeline
from drills.files import open_nofollow, write_atomically
from drills.history import History
from drills.records.model import RunRecord
from drills.summary import render

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; }
.pass { color: #2e7d32; } .fail { color: #c62828; } .error, .aborted, .crashed { color: #8a5a00; }
"""


def _title(record: RunRecord) -> str:
    return f"{record.scenario.name}: {record.verdict.value.upper()} ({record.run_id})"


def run_report_html(record: RunRecord, chart: bytes) -> str:
    picture = base64.b64encode(chart).decode("ascii")
    description = record.scenario.description.strip()
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(_title(record))}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(record.scenario.name)}: "
            f'<span class="{record.verdict.value}">{record.verdict.value.upper()}</span></h1>',
            f"<p>run {html.escape(record.run_id)}, {html.escape(record.started_at)} to "
            f"{html.escape(record.finished_at)}; scenario {html.escape(record.scenario.file)}</p>",
            f"<p>{html.escape(description)}</p>" if description else "",
            '<h2>Timeline</h2><img alt="timeline: probe samples, faults and actions shaded" '
            f'src="data:image/png;base64,{picture}">',
            f"<h2>Objectives and findings</h2><pre>{html.escape(render(record))}</pre>",
            "</body></html>",
        ]
    )


def run_report_markdown(record: RunRecord, chart_name: str) -> str:
    """Text from the record (names, notes, step details) escaped or fenced: a Markdown viewer
    renders HTML."""
    description = html.escape(record.scenario.description.strip())
    return "\n\n".join(
        [
            f"# {html.escape(_title(record))}",
            f"{record.started_at} to {record.finished_at}; scenario "
            f"{html.escape(record.scenario.file)}",
            *([description] if description else []),
            f"![timeline: probe samples, faults and actions shaded]({chart_name})",
            "````\n" + render(record).replace("````", "` ` ` `") + "\n````",
        ]
    )


def write_run_report(record: RunRecord, history: History, directory: Path) -> Path:
    """Write `<run>.html`, `<run>.md` and `<run>.png` into `directory`; return the HTML's path."""
    chart = record_timeline(record, history, _title(record))
    png = directory / f"{record.run_id}.png"
    with open_nofollow(png, "wb") as out:
        out.write(chart)
    write_atomically(
        directory / f"{record.run_id}.md", run_report_markdown(record, png.name) + "\n"
    )
    page = directory / f"{record.run_id}.html"
    write_atomically(page, run_report_html(record, chart) + "\n")
    return page
