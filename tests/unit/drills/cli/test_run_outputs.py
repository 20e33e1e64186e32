"""`drills run --junit/--json` when the drill never runs: a JUnit error and JSON all the same,
and never an earlier run's file left in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from drills import cli
from drills.errors import EXIT_ERROR


def test_a_refused_scenario_still_writes_junit_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, junit = tmp_path / "bad.yaml", tmp_path / "junit.xml"
    bad.write_text("version: 1\nname: bad\nsteps: []\n")
    junit.write_text("an earlier run's file")
    argv = ["run", str(bad), "--junit", str(junit), "--json", "--reports-dir", str(tmp_path)]
    assert cli.main(argv) == EXIT_ERROR
    captured = capsys.readouterr()
    outcome = json.loads(captured.out)
    assert (outcome["verdict"], outcome["exit_status"], outcome["record"]) == ("error", 2, None)
    assert outcome["error"].startswith(f"{bad}")
    [suite] = list(JUnitXml.fromfile(str(junit)))
    [case] = list(suite)
    assert case.result[0].message == f"drill did not run: {outcome['error']}"


def test_a_dry_run_refuses_junit_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "scenarios/db-failover.yaml", "--dry-run", "--junit", str(tmp_path / "j")]
    assert cli.main(argv) == EXIT_ERROR
    assert "--dry-run runs nothing: --junit and --json do not apply" in capsys.readouterr().err
    assert not (tmp_path / "j").exists()
