"""Required rehearsals: quarters, the schedule's states, `drills due` and `drills schedule`.

Fast: synthetic run records in tmp_path, no servers. The commands are called through a parser
built with `drills.cli.schedule.add_parsers`, as `drills.cli` does.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.cli import main
from drills.cli.schedule import add_parsers
from drills.errors import EXIT_ERROR, EXIT_MISSED, EXIT_OK, ScenarioError
from drills.quarters import Quarter, parse_time
from drills.records import SCHEMA_VERSION, Run, load_runs, write_chained
from drills.schedule import Requirement, Schedule, State, load_schedule, status
from tests.paths import REPO

SHIPPED = REPO / "scenarios" / "schedule.yaml"
Q4 = Quarter(2026, 4)
DRILLS = "/srv/drills/.venv/bin/drills"


def at(text: str) -> datetime:
    return parse_time(text)


# --- synthetic run records ----------------------------------------------------------------


def record(scenario: str, started_at: str, verdict: str) -> dict[str, Any]:
    """A minimal valid run record (the keys of drills.records.build_record that matter)."""
    started = at(started_at)
    stem = f"{started:%Y%m%dT%H%M%SZ}-{scenario}"
    finished = started + timedelta(seconds=12)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": stem,
        "scenario": {
            "name": scenario,
            "file": f"scenarios/{scenario}.yaml",
            "sha256": "0" * 64,
            "description": "",
        },
        "started_at": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "finished_at": finished.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "verdict": verdict,
        "error": "lab failed" if verdict == "error" else None,
        "objectives": {"rto_s": 1800.0, "rpo_s": 300.0, "availability": 0.9999},
        "check": {"service_probe": "reads", "write_probe": "writes", "stable": 3},
        "measurements": {"rto_s": 1.2, "rpo_s": 0.0, "downtime_s": 1.2},
        "verdicts": {},
        "timeline": [],
        "probes": {},
        "history": f"{stem}.history.jsonl",
    }


def write_runs(directory: Path, runs: list[tuple[str, str, str]]) -> None:
    for scenario, started_at, verdict in runs:
        data = record(scenario, started_at, verdict)
        write_chained(directory / f"{data['run_id']}.json", data)  # as drills writes them


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="drills")
    add_parsers(top.add_subparsers(dest="command", metavar="COMMAND"))
    return top


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))  # errors map to exit statuses in main, as on the command line
    out, err = capsys.readouterr()
    return code, out, err


# --- Quarter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-Q4", Quarter(2026, 4)),
        ("2026Q1", Quarter(2026, 1)),
        ("2026-q2", Quarter(2026, 2)),
        (" 2027-Q3 \n", Quarter(2027, 3)),
    ],
)
def test_quarter_parse(text: str, expected: Quarter) -> None:
    assert Quarter.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-Q5", "2026-Q0", "26-Q1", "2026-4", "Q4-2026", "", "2026-Q4x"]
)
def test_quarter_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a quarter: write e\.g\. 2026-Q4"):
        Quarter.parse(text)


def test_quarter_bounds_and_q4_rolls_into_next_year() -> None:
    assert Q4.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert Q4.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert Q4.next() == Quarter(2027, 1)
    assert Quarter(2027, 1).previous() == Q4
    assert Quarter(2026, 2).next() == Quarter(2026, 3)
    assert Quarter(2026, 2).previous() == Quarter(2026, 1)
    assert str(Q4) == "2026-Q4"
    assert Quarter(2026, 3) < Q4 < Quarter(2027, 1)


def test_quarter_month_windows() -> None:
    assert [Q4.month_start(m) for m in (1, 2, 3)] == [
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    ]
    assert Q4.month_end(1) == Q4.month_start(2)
    assert Q4.month_end(3) == Q4.end == datetime(2027, 1, 1, tzinfo=UTC)


def test_quarter_leap_february() -> None:
    leap, common = Quarter(2028, 1), Quarter(2026, 1)
    assert leap.month_end(2) - leap.month_start(2) == timedelta(days=29)
    assert common.month_end(2) - common.month_start(2) == timedelta(days=28)
    assert leap.seconds == 91 * 86400
    assert common.seconds == 90 * 86400


def test_quarter_of_uses_utc() -> None:
    assert Quarter.of(at("2026-12-31T23:59:59.999Z")) == Q4
    assert Quarter.of(at("2027-01-01T00:00:00Z")) == Quarter(2027, 1)
    # 01:00 in UTC+2 on New Year's Day is still 2026 in UTC
    assert Quarter.of(datetime.fromisoformat("2027-01-01T01:00:00+02:00")) == Q4
    assert Q4.contains(Q4.start)
    assert not Q4.contains(Q4.end)


def test_quarter_last() -> None:
    assert Quarter(2026, 2).last(4) == [
        Quarter(2025, 3),
        Quarter(2025, 4),
        Quarter(2026, 1),
        Quarter(2026, 2),
    ]
    assert Q4.last(1) == [Q4]


# --- drills.schedule.status ---------------------------------------------------------------


def runs_of(tmp_path: Path, runs: list[tuple[str, str, str]]) -> list[Run]:
    write_runs(tmp_path, runs)
    return load_runs(tmp_path)


def need(scenario: str, month: int | None = None) -> Requirement:
    return Requirement.model_validate({"scenario": scenario, "month": month})


def one(requirement: Requirement, runs: list[Run], now: str, quarter: Quarter = Q4) -> Any:
    (found,) = status(Schedule.model_validate({"required": [requirement]}), runs, quarter, at(now))
    return found


def test_status_states_at_window_boundaries() -> None:
    november = need("x", 2)
    assert one(november, [], "2026-10-31T23:59:59Z").state is State.UPCOMING
    assert one(november, [], "2026-11-01T00:00:00Z").state is State.DUE
    assert one(november, [], "2026-11-30T23:59:59Z").state is State.DUE
    assert one(november, [], "2026-12-01T00:00:00Z").state is State.OVERDUE
    whole = need("x")
    assert one(whole, [], "2026-12-31T23:59:59Z").state is State.DUE
    assert one(whole, [], "2027-01-01T00:00:00Z").state is State.OVERDUE
    found = one(whole, [], "2026-11-15T00:00:00Z")
    assert (found.window_start, found.window_end) == (Q4.start, Q4.end)


def test_status_run_at_window_start_counts_at_window_end_does_not(tmp_path: Path) -> None:
    runs = runs_of(
        tmp_path, [("x", "2026-11-01T00:00:00Z", "pass"), ("y", "2026-12-01T00:00:00Z", "pass")]
    )
    assert one(need("x", 2), runs, "2026-12-15T00:00:00Z").state is (State.DONE)
    late = one(need("y", 2), runs, "2026-12-15T00:00:00Z")
    assert late.state is State.OVERDUE
    assert late.runs == []
    assert late.last_pass is not None and late.last_pass.scenario == "y"


def test_status_counts_failures_and_reruns(tmp_path: Path) -> None:
    runs = runs_of(
        tmp_path,
        [
            ("a", "2026-10-02T02:00:00Z", "fail"),
            ("a", "2026-10-03T02:00:00Z", "error"),
            ("a", "2026-10-04T02:00:00Z", "pass"),
            ("b", "2026-10-02T02:00:00Z", "pass"),
            ("b", "2026-10-05T02:00:00Z", "fail"),
            ("c", "2026-10-02T02:00:00Z", "fail"),
            ("c", "2026-07-02T02:00:00Z", "pass"),  # last quarter
        ],
    )
    now = "2026-11-15T00:00:00Z"
    a = one(need("a"), runs, now)
    assert (a.state, len(a.runs), a.failed_runs, a.rerun_after_failure) == (State.DONE, 3, 2, True)
    b = one(need("b"), runs, now)
    assert (b.state, b.failed_runs, b.rerun_after_failure) == (State.DONE, 1, False)
    c = one(need("c"), runs, now)
    assert (c.state, c.failed_runs, c.rerun_after_failure) == (State.DUE, 1, False)
    assert c.last_pass is not None and c.last_pass.started == at("2026-07-02T02:00:00Z")


def test_status_last_pass_ignores_runs_after_now(tmp_path: Path) -> None:
    runs = runs_of(tmp_path, [("x", "2026-07-02T02:00:00Z", "pass")])
    assert one(need("x"), runs, "2026-07-01T00:00:00Z").last_pass is None


def test_status_ignores_runs_after_now(tmp_path: Path) -> None:
    runs = runs_of(tmp_path, [("x", "2026-11-20T02:00:00Z", "pass")])
    found = one(need("x"), runs, "2026-11-01T00:00:00Z")
    assert found.state is State.DUE
    assert found.runs == []


# --- drills due ---------------------------------------------------------------------------

SCHEDULE = """\
version: 1
required:
  - scenario: missing        # no run at all; its window (October) has closed
    month: 1
  - scenario: late           # failed in October, passed only in November
    month: 1
  - scenario: completed      # passed, any time in the quarter
  - scenario: rerun          # failed, then run again and passed, in November
    month: 2
  - scenario: upcoming       # December
    month: 3
"""

RUNS = [
    ("late", "2026-10-05T02:00:00Z", "fail"),
    ("late", "2026-11-02T02:00:00Z", "pass"),
    ("completed", "2026-07-01T02:00:00Z", "pass"),  # last quarter: does not count for Q4
    ("completed", "2026-11-10T02:00:00Z", "pass"),
    ("rerun", "2026-11-01T02:00:00Z", "fail"),
    ("rerun", "2026-11-01T03:30:00Z", "pass"),
    ("upcoming", "2026-09-01T02:00:00Z", "pass"),
    ("not-required", "2026-10-10T02:00:00Z", "fail"),
]


@pytest.fixture
def drills_dir(tmp_path: Path) -> Path:
    write(tmp_path / "schedule.yaml", SCHEDULE)
    write_runs(tmp_path / "runs", RUNS)
    return tmp_path


def due_args(root: Path, *more: str) -> list[str]:
    return [
        "due",
        "--schedule",
        str(root / "schedule.yaml"),
        "--reports-dir",
        str(root / "runs"),
        *more,
    ]


def table_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def test_due_table_and_overdue_exit_1(drills_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, *due_args(drills_dir, "--now", "2026-11-15T12:00:00Z"))
    assert code == EXIT_MISSED
    lines = out.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "required",
        "window",
        "state",
        "runs",
        "failed",
        "last passed (UTC)",
        "note",
    ]
    assert set(lines[1]) == {"|", "-"}
    rows = table_rows(out)
    #                  required, window, state, runs, failed, last passed, note
    assert rows["missing"][1:] == [
        "2026-10-01 to 2026-10-31",
        "overdue",
        "0",
        "0",
        "never",
        "window closed without a pass",
    ]
    assert rows["late"][2:] == [
        "overdue",
        "1",
        "1",
        "2026-11-02 02:00",
        "window closed without a pass; failed 1x, not passed yet",
    ]
    assert rows["completed"][1:] == [
        "2026-10-01 to 2026-12-31",
        "done",
        "1",
        "0",
        "2026-11-10 02:00",
        "",
    ]
    assert rows["rerun"][1:] == [
        "2026-11-01 to 2026-11-30",
        "done",
        "2",
        "1",
        "2026-11-01 03:30",
        "failed 1x, run again and passed",
    ]
    assert rows["upcoming"][1:] == [
        "2026-12-01 to 2026-12-31",
        "upcoming",
        "0",
        "0",
        "2026-09-01 02:00",
        "opens in 15 days",
    ]
    assert "not-required" not in rows
    assert lines[-1] == (
        "2026-Q4, as of 2026-11-15 12:00 UTC: 5 required, 2 done, 1 upcoming, 0 due, "
        "2 overdue; OVERDUE: missing, late"
    )
    assert err == (
        "drills: 2 required drills overdue: missing (window closed 2026-10-31), "
        "late (window closed 2026-10-31)\n"
    )


def test_due_nothing_overdue_exit_0(drills_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # As of 20 October: October's windows are still open, and November's runs have not happened.
    code, out, err = call(capsys, *due_args(drills_dir, "--now", "2026-10-20"))
    assert code == EXIT_OK
    assert err == ""
    states = {name: row[2] for name, row in table_rows(out).items()}
    assert states == {
        "missing": "due",
        "late": "due",
        "completed": "due",
        "rerun": "upcoming",
        "upcoming": "upcoming",
    }
    assert table_rows(out)["late"][6] == "12 days left; failed 1x, not passed yet"
    assert table_rows(out)["completed"][5] == "2026-07-01 02:00"  # November's is in the future
    assert out.splitlines()[-1].endswith("0 done, 2 upcoming, 3 due, 0 overdue")


def test_due_default_quarter_is_that_of_now(
    drills_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Midnight on 1 February in UTC+1 is still January in UTC: January's windows are open.
    code, out, _ = call(capsys, *due_args(drills_dir, "--now", "2027-02-01T00:00:00+01:00"))
    assert out.splitlines()[-1].startswith("2027-Q1, as of 2027-01-31 23:00 UTC: ")
    assert table_rows(out)["missing"][1:3] == ["2027-01-01 to 2027-01-31", "due"]
    assert table_rows(out)["missing"][6] == "less than a day left"
    assert code == EXIT_OK
    code, out, _ = call(capsys, *due_args(drills_dir, "--now", "2027-02-01T00:00:00Z"))
    assert table_rows(out)["missing"][2] == "overdue"
    assert code == EXIT_MISSED


def test_due_past_quarter(drills_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(
        capsys, *due_args(drills_dir, "--quarter", "2026-Q4", "--now", "2027-03-01")
    )
    assert code == EXIT_MISSED
    states = {name: row[2] for name, row in table_rows(out).items()}
    assert states["upcoming"] == "overdue"
    assert err.startswith("drills: 3 required drills overdue: missing (")
    assert "upcoming (window closed 2026-12-31)" in err


def test_due_json(drills_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, *due_args(drills_dir, "--now", "2026-11-15T12:00:00Z", "--json"))
    assert code == EXIT_MISSED
    assert err.startswith("drills: 2 required drills overdue: missing")
    data = json.loads(out)
    assert data["quarter"] == "2026-Q4"
    assert data["now"] == "2026-11-15T12:00:00Z"
    assert data["counts"] == {"done": 2, "upcoming": 1, "due": 0, "overdue": 2}
    assert data["overdue"] == ["missing", "late"]
    by_name = {r["scenario"]: r for r in data["required"]}
    rerun = by_name["rerun"]
    assert rerun["state"] == "done"
    assert rerun["month"] == 2
    assert rerun["file"] == "scenarios/rerun.yaml"
    assert (rerun["window_start"], rerun["window_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert [(r["verdict"], r["run_id"]) for r in rerun["runs"]] == [
        ("fail", "20261101T020000Z-rerun"),
        ("pass", "20261101T033000Z-rerun"),
    ]
    assert (rerun["run_count"], rerun["failed_runs"], rerun["rerun_after_failure"]) == (2, 1, True)
    assert rerun["last_pass"]["started_at"] == "2026-11-01T03:30:00Z"
    assert by_name["missing"]["last_pass"] is None
    assert by_name["missing"]["runs"] == []


def test_due_without_reports_dir_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "schedule.yaml", "version: 1\nrequired:\n  - scenario: x\n")
    code, out, err = call(capsys, *due_args(tmp_path, "--now", "2026-11-01"))
    assert code == EXIT_OK
    assert err == f"drills: no run records: {tmp_path / 'runs'} is not a directory\n"
    assert table_rows(out)["x"][2] == "due"


def test_due_schedule_errors_one_located_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "schedule.yaml",
        "version: 1\n"
        "required:\n"
        "  - scenario: db-failover\n"
        "    month: 4\n"
        "  - scenario: primary-hang\n"
        "    when: monthly\n",
    )
    code, out, err = call(capsys, *due_args(tmp_path))
    assert code == EXIT_ERROR
    assert out == ""
    assert err.splitlines() == [
        f"{path}:4: required.0.month: Input should be less than or equal to 3",
        f"{path}:6: required.1.when: unknown key 'when' (expected one of: cadence, file, month, "
        "scenario)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nrequired:\n  - [db-failover\n", ":3: invalid YAML: "),
        ("version: 1\nrequired: []\n", ":2: required: List should have at least 1 item"),
        ("version: 2\nrequired:\n  - scenario: x\n", ":1: version: Input should be 1"),
        ("version: 1\nrequired:\n  - month: 1\n", ":3: required.0.scenario: missing (required)"),
        ("version: 1\nrequired:\n  - {scenario: x, cadence: weekly}\n", ":3: required.0.cadence"),
    ],
)
def test_due_schedule_error_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = write(tmp_path / "schedule.yaml", text)
    code, _, err = call(capsys, *due_args(tmp_path))
    assert code == EXIT_ERROR
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{path}{expected}")


def test_due_unreadable_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, *due_args(tmp_path))
    assert code == EXIT_ERROR
    assert err == f"{tmp_path / 'schedule.yaml'}: cannot read: No such file or directory\n"
    (tmp_path / "schedule.yaml").write_bytes(b"\xff\xfeversion: 1\n")
    code, _, err = call(capsys, *due_args(tmp_path))
    assert code == EXIT_ERROR
    assert err == f"{tmp_path / 'schedule.yaml'}: not UTF-8 text\n"


def test_load_schedule_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_bytes(b"\xff\xfeversion: 1\n")
    with pytest.raises(ScenarioError):
        load_schedule(path)


def test_load_schedule_duplicate_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "schedule.yaml",
        "version: 1\nrequired:\n  - scenario: x\n    month: 2\n    month: 1\n",
    )
    with pytest.raises(ScenarioError, match="duplicate key"):
        load_schedule(path)


def test_due_bad_record(drills_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(drills_dir / "runs" / "20261101T000000Z-broken.json", '{"schema_version": 1}\n')
    code, out, err = call(capsys, *due_args(drills_dir))
    assert (code, out) == (EXIT_ERROR, "")
    assert err == f"drills: {bad}: record lacks 'scenario'\n"
    write(bad, "{not json")
    code, _, err = call(capsys, *due_args(drills_dir))
    assert code == EXIT_ERROR
    assert err.startswith(f"drills: {bad}:1: not JSON: ")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--quarter", "2026-Q5", "drills: --quarter: '2026-Q5' is not a quarter: write e.g. "),
        ("--quarter", "0000-Q1", "drills: --quarter: '0000-Q1' is not a quarter"),
        ("--now", "yesterday", "drills: --now 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_due_bad_options(
    drills_dir: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    code, out, err = call(capsys, *due_args(drills_dir, option, value))
    assert (code, out) == (EXIT_ERROR, "")
    assert err.startswith(message)
    assert len(err.splitlines()) == 1


# --- drills schedule ----------------------------------------------------------------------


def schedule_out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = call(capsys, "schedule", "--schedule", str(SHIPPED), *argv)
    assert (code, err) == (EXIT_OK, "")
    return out


def test_schedule_needs_exactly_one_format(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["schedule"], ["schedule", "--cron", "--systemd"]):
        with pytest.raises(SystemExit) as exc:
            parser().parse_args(argv)
        assert exc.value.code == 2
    assert "one of the arguments --cron --systemd --kubernetes" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["--cron", "--systemd"])
def test_schedule_warns_about_a_relative_command(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(
        capsys, "schedule", kind, "--schedule", str(SHIPPED), "--workdir", str(REPO)
    )
    assert code == EXIT_OK
    assert "drills run scenarios/db-failover.yaml --no-live\n" in out
    assert err == (
        f"drills: warning: 'drills' is looked up in {kind[2:]}'s own PATH, which may not have "
        "it: consider --drills-command /path/to/drills\n"
    )


SHIPPED_NAMES = (
    "db-failover",
    "network-partition",
    "primary-hang",
    "replication-lag",
    "operator-error",
    "config-loss",
    "ransomware",
    "data-loss",
    "intrusion",
)


def test_schedule_cron(capsys: pytest.CaptureFixture[str]) -> None:
    out = schedule_out(capsys, "--cron", "--workdir", str(REPO), "--drills-command", DRILLS)
    entries = [line for line in out.splitlines() if line and not line.startswith("#")]
    run = f"cd {REPO} && {DRILLS} run scenarios"
    assert entries == [
        "CRON_TZ=UTC",
        f"0 2 1 1,4,7,10 * {run}/db-failover.yaml --no-live",
        f"0 2 1 2,5,8,11 * {run}/network-partition.yaml --no-live",
        f"0 2 1 3,6,9,12 * {run}/primary-hang.yaml --no-live",
        f"0 2 1 1,4,7,10 * {run}/replication-lag.yaml --no-live",
        f"0 2 1 1,4,7,10 * {run}/operator-error.yaml --no-live",
        f"0 2 1 2,5,8,11 * {run}/config-loss.yaml --no-live",
        f"0 2 1 2,5,8,11 * {run}/ransomware.yaml --no-live",
        f"0 2 1 3,6,9,12 * {run}/data-loss.yaml --no-live",
        f"0 2 1 3,6,9,12 * {run}/intrusion.yaml --no-live",
    ]
    lines = out.splitlines()
    for name in ("db-failover", "network-partition", "primary-hang", "replication-lag"):
        comment = next(i for i, line in enumerate(lines) if line.startswith(f"# {name}: "))
        assert f"scenarios/{name}.yaml" in lines[comment + 1]


def test_schedule_cron_quotes_and_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write(
        tmp_path / "schedule.yaml",
        "version: 1\nrequired:\n  - scenario: x\n    file: my drills/x 100%.yaml\n",
    )
    argv = ["schedule", "--cron", "--schedule", str(schedule), "--workdir", "/srv/dr drills"]
    code, out, err = call(capsys, *argv, "--drills-command", "/opt/venv/bin/python -m drills")
    assert code == EXIT_OK
    assert out.splitlines()[-1] == (
        "0 2 1 1,4,7,10 * cd '/srv/dr drills' && /opt/venv/bin/python -m drills run "
        "'my drills/x 100\\%.yaml' --no-live"
    )
    assert err == ""  # WORKDIR is not on this machine: its files cannot be checked here


def test_schedule_warns_about_missing_scenario_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write(tmp_path / "schedule.yaml", "version: 1\nrequired:\n  - scenario: x\n")
    argv = ["schedule", "--systemd", "--schedule", str(schedule), "--workdir", str(tmp_path)]
    code, out, err = call(capsys, *argv, "--drills-command", DRILLS)
    assert code == EXIT_OK
    assert f"WorkingDirectory={tmp_path}\n" in out
    assert err == f"drills: warning: x: no scenario file {tmp_path}/scenarios/x.yaml\n"
    (tmp_path / "scenarios").mkdir()
    write(tmp_path / "scenarios" / "x.yaml", "name: x\n")
    assert call(capsys, *argv, "--drills-command", DRILLS)[2] == ""


def test_schedule_systemd(capsys: pytest.CaptureFixture[str]) -> None:
    out = schedule_out(capsys, "--systemd", "--workdir", str(REPO), "--drills-command", DRILLS)
    files: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("# file: "):
            current = files.setdefault(line.removeprefix("# file: "), [])
        elif line:
            current.append(line)
    assert sorted(files) == sorted(
        f"drills-{name}.{kind}"
        for name in SHIPPED_NAMES
        for kind in ("service", "timer")
    )
    assert files["drills-primary-hang.service"] == [
        "[Unit]",
        "Description=drills: required drill primary-hang",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={REPO}",
        f"ExecStart={DRILLS} run scenarios/primary-hang.yaml --no-live",
    ]
    calendars = {
        name: [line for line in lines if line.startswith("OnCalendar=")]
        for name, lines in files.items()
        if name.endswith(".timer")
    }
    assert calendars == {
        "drills-db-failover.timer": ["OnCalendar=*-01,04,07,10-01 02:00:00 UTC"],
        "drills-network-partition.timer": ["OnCalendar=*-02,05,08,11-01 02:00:00 UTC"],
        "drills-primary-hang.timer": ["OnCalendar=*-03,06,09,12-01 02:00:00 UTC"],
        "drills-replication-lag.timer": ["OnCalendar=*-01,04,07,10-01 02:00:00 UTC"],
        "drills-operator-error.timer": ["OnCalendar=*-01,04,07,10-01 02:00:00 UTC"],
        "drills-config-loss.timer": ["OnCalendar=*-02,05,08,11-01 02:00:00 UTC"],
        "drills-ransomware.timer": ["OnCalendar=*-02,05,08,11-01 02:00:00 UTC"],
        "drills-data-loss.timer": ["OnCalendar=*-03,06,09,12-01 02:00:00 UTC"],
        "drills-intrusion.timer": ["OnCalendar=*-03,06,09,12-01 02:00:00 UTC"],
    }
    for name, lines in files.items():
        if name.endswith(".timer"):
            assert "Persistent=true" in lines
            assert f"Unit={name.removesuffix('.timer')}.service" in lines
            assert "WantedBy=timers.target" in lines


def test_schedule_systemd_escapes_specifiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write(
        tmp_path / "schedule.yaml",
        "version: 1\nrequired:\n  - {scenario: x, file: x 100%.yaml}\n"
        "  - {scenario: x, month: 2}\n",
    )
    code, out, _ = call(
        capsys, "schedule", "--systemd", "--schedule", str(schedule), "--workdir", "/srv/%d"
    )
    assert code == EXIT_OK
    assert "# file: drills-x-1.service" in out
    assert "# file: drills-x-2.timer" in out
    assert "WorkingDirectory=/srv/%%d\n" in out
    assert 'ExecStart=drills run "x 100%%.yaml" --no-live\n' in out


def test_schedule_kubernetes(capsys: pytest.CaptureFixture[str]) -> None:
    out = schedule_out(capsys, "--kubernetes")
    assert out.count("\n---\n") == 8
    jobs = [doc for doc in yaml.safe_load_all(out) if doc is not None]
    assert [(j["apiVersion"], j["kind"]) for j in jobs] == [("batch/v1", "CronJob")] * 9
    assert {j["metadata"]["name"]: j["spec"]["schedule"] for j in jobs} == {
        "drills-db-failover": "0 2 1 1,4,7,10 *",
        "drills-network-partition": "0 2 1 2,5,8,11 *",
        "drills-primary-hang": "0 2 1 3,6,9,12 *",
        "drills-replication-lag": "0 2 1 1,4,7,10 *",
        "drills-operator-error": "0 2 1 1,4,7,10 *",
        "drills-config-loss": "0 2 1 2,5,8,11 *",
        "drills-ransomware": "0 2 1 2,5,8,11 *",
        "drills-data-loss": "0 2 1 3,6,9,12 *",
        "drills-intrusion": "0 2 1 3,6,9,12 *",
    }
    for job in jobs:
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "Etc/UTC"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (container,) = pod["containers"]
        scenario = job["metadata"]["name"].removeprefix("drills-")
        assert container["image"] == "drills:latest"
        assert container["command"] == ["drills", "run", f"scenarios/{scenario}.yaml", "--no-live"]
        assert "workingDir" not in container


def test_schedule_kubernetes_image_and_workdir(capsys: pytest.CaptureFixture[str]) -> None:
    out = schedule_out(
        capsys,
        "--kubernetes",
        "--image",
        "registry.example.com/drills:1.0",
        "--workdir",
        "/drills",
        "--drills-command",
        "python -m drills",
    )
    job = next(yaml.safe_load_all(out))
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/drills:1.0"
    assert container["workingDir"] == "/drills"
    assert container["command"][:4] == ["python", "-m", "drills", "run"]


def test_schedule_kubernetes_names_are_dns_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write(
        tmp_path / "schedule.yaml",
        "version: 1\nrequired:\n  - scenario: site_a.failover\n  - scenario: " + "x" * 80 + "\n",
    )
    code, out, _ = call(capsys, "schedule", "--kubernetes", "--schedule", str(schedule))
    assert code == EXIT_OK
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(out)]
    assert names[0] == "drills-site-a-failover"
    assert len(names[1]) <= 52
    assert all(n.replace("-", "").isalnum() and n == n.lower() for n in names)


def test_schedule_bad_schedule_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "schedule.yaml", "version: 1\nrequired:\n  - scenario: x\n    month: 0\n"
    )
    code, out, err = call(capsys, "schedule", "--cron", "--schedule", str(path))
    assert (code, out) == (EXIT_ERROR, "")
    assert err == f"{path}:4: required.0.month: Input should be greater than or equal to 1\n"


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (["--drills-command", ""], "drills: --drills-command is empty\n"),
        (
            ["--drills-command", '"drills'],
            "drills: --drills-command '\"drills': No closing quotation\n",
        ),
        (
            ["--workdir", "/srv/a\nb"],
            "drills: a line break in a name, path or command cannot go into an entry\n",
        ),
    ],
)
def test_schedule_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], more: list[str], message: str
) -> None:
    code, out, err = call(capsys, "schedule", "--cron", "--schedule", str(SHIPPED), *more)
    assert (code, out, err) == (EXIT_ERROR, "", message)
