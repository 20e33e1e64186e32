"""Quarterly reports from real and synthetic run records; the HTML rendered in Chromium."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drills.records import write_chained
from tests.chromium import count_colour, screenshot
from tests.conftest import REPO, run_drills

SCHEDULE = """
version: 1
required:
  - scenario: primary-hang
  - scenario: db-failover
    month: 1
  - scenario: network-partition
    month: 2
  - scenario: replication-lag
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real drill's record and history (primary-hang, about 12 s)."""
    from drills.errors import LabError
    from drills.labs.postgres_pair import find_bin_dir

    try:
        find_bin_dir(None)
    except LabError as exc:
        pytest.skip(f"PostgreSQL lab cannot run: {exc}")
    sandbox = Path("/tmp") / f"drills-report-{datetime.now(UTC):%H%M%S%f}"
    sandbox.mkdir(mode=0o777)
    sandbox.chmod(0o777)
    reports = tmp_path_factory.mktemp("runs")
    try:
        run = run_drills(
            ["run", "scenarios/primary-hang.yaml", "--reports-dir", str(reports), "--no-live"],
            sandbox,
            reports,
        )
        assert run.returncode == 0, run.stderr
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    return run.record_path


def _synthetic(
    base: dict[str, Any], scenario: str, when: datetime, verdict: str, rto: float, rpo: float
) -> dict[str, Any]:
    record = copy.deepcopy(base)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    record["run_id"] = f"{stamp}-{scenario}"
    record["scenario"]["name"] = scenario
    record["started_at"] = when.isoformat().replace("+00:00", "Z")
    record["finished_at"] = record["started_at"]
    record["verdict"] = verdict
    record["measurements"]["rto_s"] = rto
    record["measurements"]["rpo_s"] = rpo
    record["objectives"]["rpo_s"] = 300.0
    for name, value in (("rto", rto), ("rpo", rpo)):
        met = value <= record["objectives"][f"{name}_s"]
        record["verdicts"][name] |= {"measured": value, "verdict": "met" if met else "missed"}
    record["history"] = "missing.history.jsonl"  # no timeline for these
    return record


@pytest.fixture(scope="module")
def records(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real run plus synthetic runs spread over four quarters."""
    directory = tmp_path_factory.mktemp("records")
    for path in real_run.parent.iterdir():
        shutil.copy(path, directory / path.name)
    base = json.loads(real_run.read_text())
    runs = [
        ("db-failover", datetime(2026, 1, 20, tzinfo=UTC), "pass", 1.4, 0.0),
        ("db-failover", datetime(2026, 4, 15, tzinfo=UTC), "pass", 1.2, 0.0),
        ("db-failover", datetime(2026, 7, 9, tzinfo=UTC), "pass", 1.3, 0.2),
        ("db-failover", datetime(2026, 10, 5, 9, tzinfo=UTC), "fail", 2400.0, 0.0),
        ("db-failover", datetime(2026, 10, 6, 9, tzinfo=UTC), "pass", 1.1, 0.0),
        ("network-partition", datetime(2026, 8, 3, tzinfo=UTC), "pass", 0.1, 3.1),
        ("network-partition", datetime(2026, 11, 2, tzinfo=UTC), "fail", 0.1, 400.0),
    ]
    for scenario, when, verdict, rto, rpo in runs:
        record = _synthetic(base, scenario, when, verdict, rto, rpo)
        for key in ("chain", "self_sha256", "signature"):  # chained anew, as drills writes it
            record.pop(key, None)
        write_chained(directory / f"{record['run_id']}.json", record)
    (directory / "schedule.yaml").write_text(SCHEDULE)
    return directory


def _report(records: Path, out: Path, quarter: str = "2026-Q4") -> tuple[str, str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "drills",
            "report",
            "--quarter",
            quarter,
            "--reports-dir",
            str(records),
            "--schedule",
            str(records / "schedule.yaml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    folder = out / quarter
    return (folder / "report.md").read_text(), (folder / "report.html").read_text()


@pytest.mark.postgres
def test_quarterly_report_contents(records: Path, tmp_path: Path) -> None:
    md, html = _report(records, tmp_path / "reports")
    assert "# Disaster-recovery drills, 2026-Q4" in md
    # Q4 holds the real primary-hang run and three synthetic ones.
    assert "| drills run            |       4 |" in md
    assert md.count("| 2026-1") >= 4
    assert "| worst RTO | 2400.000s  | 30s (8000.00%)" in md  # the failed db-failover drill
    assert "2400.000s / 30s missed" in md and "400.000s / 300s missed" in md
    # Coverage on this quarter so far: db-failover failed, was run again and passed in its
    # month; network-partition failed and its month is still open; replication-lag never ran.
    assert "| db-failover       | 2026-10-01 to 2026-10-31 | done" in md
    assert "failed 1x, run again and passed" in md
    assert "failed 1x, not passed yet" in md
    assert "| replication-lag   | 2026-10-01 to 2026-12-31 |" in md
    assert "Error budget" in md and "794.9s" in md
    for name in ("rto-runs", "rto-trend", "rpo-runs", "rpo-trend", "error-budget"):
        assert (tmp_path / "reports" / "2026-Q4" / "charts" / f"{name}.png").stat().st_size > 1000
    assert "no timeline" in md  # synthetic runs have no history
    # The HTML stands alone: every image is embedded, nothing is fetched.
    assert 'src="data:image/png;base64,' in html
    assert "http://" not in html and "https://" not in html
    assert html.count("<img") >= 6


@pytest.mark.postgres
def test_past_quarter_shows_overdue_and_the_trend(records: Path, tmp_path: Path) -> None:
    md, _ = _report(records, tmp_path / "reports", "2026-Q3")
    assert "| drills run            |       2 |" in md
    assert "| db-failover       | 2026-07-01 to 2026-07-31 | done" in md
    assert "| network-partition | 2026-08-01 to 2026-08-31 | done" in md
    assert "| primary-hang      | 2026-07-01 to 2026-09-30 | overdue" in md
    assert "| replication-lag   | 2026-07-01 to 2026-09-30 | overdue" in md
    assert "2 of 4 required drills passed (as of 2026-10-01)" in md


@pytest.mark.postgres
@pytest.mark.browser
def test_html_report_renders_its_charts_in_chromium(records: Path, tmp_path: Path) -> None:
    _, _ = _report(records, tmp_path / "reports")
    pixels = screenshot(tmp_path / "reports" / "2026-Q4" / "report.html", tmp_path)
    not_white = (pixels.sum(axis=2) < 2.9).mean()
    assert not_white > 0.03, f"the page looks blank ({not_white:.2%} non-white)"
    # The timeline chart's green 'up' samples (#2e9d4f) are on screen: the charts rendered.
    green = count_colour(pixels, (0x2E, 0x9D, 0x4F))
    assert green > 500, f"no chart colours on the page ({green} green pixels)"
