"""The run's own report from a record and its history (tests/data/records)."""

from __future__ import annotations

from pathlib import Path

from drills.history_file import load_history
from drills.records import load_record
from drills.run_report import write_run_report
from tests import paths

DATA = paths.DATA / "records"


def test_html_md_and_chart_beside_the_record(tmp_path: Path) -> None:
    record = load_record(DATA / "20261123T200200Z-simple-lost.json")
    history = load_history(DATA / record.history)
    page = write_run_report(record, history, tmp_path)
    run = record.run_id
    assert page == tmp_path / f"{run}.html"
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    assert 'simple-lost: <span class="fail">FAIL</span>' in html
    assert "lost writes: ids" in html  # the lost-write detail of the tables
    markdown = (tmp_path / f"{run}.md").read_text()
    assert f"![timeline: probe samples, faults and actions shaded]({run}.png)" in markdown
    assert (tmp_path / f"{run}.png").read_bytes().startswith(b"\x89PNG")


def test_text_from_the_record_is_escaped(tmp_path: Path) -> None:
    record = load_record(DATA / "20261123T200100Z-simple-pass.json")
    record = record.model_copy(
        update={"scenario": record.scenario.model_copy(update={"description": "<script>x"})}
    )
    page = write_run_report(record, load_history(DATA / record.history), tmp_path)
    assert "<script>" not in page.read_text() and "&lt;script&gt;x" in page.read_text()
