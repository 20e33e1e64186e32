"""Every HTML output escapes what it shows (issue 15 item 9): a record field holding `<script>`
renders as text in report.html, stays text in report.md, and charts draw record text as it is
(matplotlib would otherwise read `$...$` as mathtext)."""

from __future__ import annotations

import pytest

from drills import charts, report
from drills.quarters import Quarter

SCRIPT = "<script>alert('x')</script>"


def hostile_report() -> report.Report:
    return report.Report(
        quarter=Quarter(2026, 4),
        generated="2026-12-02 20:00 UTC",
        summary=[[SCRIPT, "1"]],
        by_scenario=[[SCRIPT, "1", "1", "0"]],
        worst=[["RTO", "1s", "30s", SCRIPT]],
        rows=[{"scenario": SCRIPT, "verdict": 'pass" onmouseover="alert(1)'}],
        drills=[],
        budget=report.Budget(objective=0.9999, budget_s=794.88, used_s=1.0, share=0.001, runs=1),
        coverage=[[SCRIPT, "month 1", "done", "1", SCRIPT]],
        coverage_note=f"<img src=x onerror=alert(1)> {SCRIPT}",
        charts=[report.Chart("rto", f"RTO {SCRIPT}", b"\x89PNG")],
    )


def test_a_script_in_a_record_field_renders_as_text_in_the_html_report() -> None:
    page = report.html(hostile_report())
    assert "<script" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert 'class="pass&#34; onmouseover=&#34;alert(1)"' in page  # attributes escaped too


def test_a_script_in_a_record_field_stays_text_in_the_markdown_report() -> None:
    text = report.markdown(hostile_report(), "charts")
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text


@pytest.mark.parametrize("text", ["$\\undefinedcommand$", "exec echo \"$A\" '$B'", "a $x^$ b"])
def test_charts_draw_record_text_as_it_is(text: str) -> None:
    samples = [charts.Samples(text, [0.0, 0.5, 1.0], [True, False, True])]
    faults = [charts.Interval(0.2, 0.6, text)]
    png = charts.drill_timeline(samples, faults, None, None, title=text)
    assert png.startswith(b"\x89PNG")
    png = charts.against_objective({text: [(text, 1.0)]}, {text: 2.0}, "RTO")
    assert png.startswith(b"\x89PNG")
    assert charts.plain(text).count("\\$") == text.count("$")
