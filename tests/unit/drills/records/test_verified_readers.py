"""What reads records (report, `drills due`, the exporter) leaves out a record that fails
verification, and says so: a hand-written `verdict: pass` is not a done rehearsal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drills.cli import main
from drills.errors import EXIT_MISSED
from drills.metrics import RecordsCollector
from drills.quarters import Quarter
from drills.records import load_runs, write_chained
from drills.records.signing import KEY_ENV, KEY_FILE_ENV, SigningKey
from drills.report import build, html, markdown

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
KEY = SigningKey(b"the drills signing key, for tests", "test")
SCHEDULE = "version: 1\nrequired:\n  - scenario: backup-restore\n    month: 1\n"


def _record(scenario: str, started: datetime, verdict: str) -> dict[str, Any]:
    stem = f"{started:%Y%m%dT%H%M%SZ}-{scenario}"
    stamp = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "schema_version": 1,
        "run_id": stem,
        "scenario": {"name": scenario, "file": f"{scenario}.yaml", "sha256": "0" * 64},
        "started_at": stamp,
        "finished_at": stamp,
        "verdict": verdict,
        "objectives": {"rto_s": 1800.0, "rpo_s": 300.0, "availability": 0.9999},
        "check": {"service_probe": "reads", "write_probe": None, "stable": 3},
        "measurements": {"rto_s": 1.2, "downtime_s": 1.2},
        "history": f"{stem}.history.jsonl",
    }


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A genuine failed rehearsal in October, signed: the requirement is overdue."""
    for name in (KEY_ENV, KEY_FILE_ENV):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "drills.yaml"
    config.write_text("version: 1\n")
    monkeypatch.setenv("DRILLS_CONFIG", str(config))
    (tmp_path / "schedule.yaml").write_text(SCHEDULE)
    directory = tmp_path / "runs"
    directory.mkdir()
    failed = _record("backup-restore", datetime(2026, 10, 5, 2, tzinfo=UTC), "fail")
    write_chained(directory / f"{failed['run_id']}.json", failed, KEY)
    return directory


def _forge(directory: Path, chained: bool) -> Path:
    """A `verdict: pass` written by hand: plainly, or re-chained without the key."""
    forged = _record("backup-restore", datetime(2026, 10, 20, 2, tzinfo=UTC), "pass")
    path = directory / f"{forged['run_id']}.json"
    if chained:
        write_chained(path, forged)
    else:
        path.write_text(json.dumps(forged))
    return path


def _due(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    schedule = directory.parent / "schedule.yaml"
    argv = ["due", "--schedule", str(schedule), "--reports-dir", str(directory)]
    code = main([*argv, "--now", NOW.isoformat()])
    out, err = capsys.readouterr()
    return code, out, err


def test_due_leaves_out_a_hand_written_pass(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forged = _forge(runs, chained=False)
    code, out, err = _due(runs, capsys)
    assert code == EXIT_MISSED, "the forged pass counted as a done rehearsal"
    assert f"drills: {forged}: left out, fails verification: not chained" in err
    assert "1 records left out (they fail verification)" in out


def test_due_with_the_key_leaves_out_a_pass_rechained_without_it(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = _forge(runs, chained=True)
    code, _, _ = _due(runs, capsys)
    assert code == 0, "without the key, a well re-chained record cannot be told apart"
    monkeypatch.setenv(KEY_ENV, KEY.secret.decode())
    code, _, err = _due(runs, capsys)
    assert code == EXIT_MISSED
    assert f"{forged}: left out, fails verification: unsigned" in err
    main(["due", "--json", "--schedule", str(runs.parent / "schedule.yaml"), "--reports-dir",
          str(runs), "--now", NOW.isoformat()])  # fmt: skip
    due = json.loads(capsys.readouterr().out)
    assert due["required"][0]["state"] == "overdue"
    assert [line.split(":")[0] for line in due["left_out"]] == [str(forged)]


def test_the_report_leaves_out_a_forged_record_and_says_so(runs: Path) -> None:
    forged = _forge(runs, chained=False)
    left_out: list[str] = []
    report = build(Quarter(2026, 4), runs, runs.parent / "schedule.yaml", NOW, left_out)
    assert [row["verdict"] for row in report.rows] == ["fail"]
    assert report.left_out == left_out and str(forged) in left_out[0]
    assert "**1 records left out: they fail verification (drills verify).**" in markdown(
        report, "charts"
    )
    assert f"<li>{forged}: left out, fails verification: not chained" in html(report)
    assert "0 of 1 required drills passed" in report.coverage_note


def test_the_exporter_leaves_out_a_forged_record_and_counts_it(runs: Path) -> None:
    _forge(runs, chained=True)
    registry = CollectorRegistry()
    schedule = runs.parent / "schedule.yaml"
    registry.register(RecordsCollector(runs, schedule, now=lambda: NOW, key=KEY))
    text = generate_latest(registry).decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    verdict = (("scenario", "backup-restore"), ("verdict", "pass"))
    assert found[("drills_verdict", verdict)] == 0.0
    assert found[("drills_records_left_out", ())] == 1.0
    assert found[("drills_exporter_scrape_error", ())] == 1.0
    assert found[("drills_chain_head_sequence", ())] == 1.0, "the forged #2 is not the head"
    state = (("scenario", "backup-restore"), ("state", "overdue"))
    assert found[("drills_requirement_state", state)] == 1.0


def test_readers_that_do_not_ask_still_read_every_record(runs: Path) -> None:
    _forge(runs, chained=False)
    assert len(load_runs(runs)) == 2  # `drills check` and the like: verification is opt-in
    left_out: list[str] = []
    assert len(load_runs(runs, left_out)) == 1 and len(left_out) == 1


def test_drills_metrics_takes_the_newest_record_that_passes(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = _forge(runs, chained=False)
    textfile = runs.parent / "drills.prom"
    code = main(["metrics", "--reports-dir", str(runs), "--textfile", str(textfile)])
    _, err = capsys.readouterr()
    assert code == 0
    assert f"drills: {forged}: left out, fails verification: not chained" in err
    text = textfile.read_text()
    assert 'run_id="20261005T020000Z-backup-restore"' in text
    assert "drills_last_success_timestamp_seconds" not in text


def _key_config(directory: Path, key_file: Path) -> Path:
    config = directory / "signing.yaml"
    config.write_text(f"version: 1\nsigning_key_file: {key_file}\n")
    return config


def test_due_with_config_checks_with_its_signing_key_file(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = _forge(runs, chained=True)
    key_file = runs.parent / "signing.key"
    key_file.write_bytes(KEY.secret)
    key_file.chmod(0o600)
    config = _key_config(runs.parent, key_file)
    assert _due(runs, capsys)[0] == 0, "$DRILLS_CONFIG has no key: the forgery passes"
    schedule = runs.parent / "schedule.yaml"
    argv = ["due", "--schedule", str(schedule), "--reports-dir", str(runs), "--config"]
    code = main([*argv, str(config), "--now", NOW.isoformat()])
    assert code == EXIT_MISSED
    assert f"{forged}: left out, fails verification: unsigned" in capsys.readouterr().err


def test_report_and_metrics_take_config(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _key_config(runs.parent, runs.parent / "missing.key")
    for argv in (
        ["report", "--out", str(runs.parent / "out")],
        ["metrics", "--textfile", str(runs.parent / "drills.prom")],
    ):
        assert main([*argv, "--reports-dir", str(runs), "--config", str(config)]) == 2
        assert "missing.key: cannot read the signing key" in capsys.readouterr().err


def test_the_exporter_reads_its_key_once_at_start(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _key_config(runs.parent, runs.parent / "missing.key")
    argv = ["exporter", "--port", "0", "--reports-dir", str(runs), "--config", str(config)]
    assert main(argv) == 2  # before serving: not an error at every scrape
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"drills: {runs.parent / 'missing.key'}: cannot read the signing key: "
        "No such file or directory"
    ]
