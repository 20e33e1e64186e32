"""`drills run --junit` and `--json` on a real drill whose RTO objective the test makes it miss:
the primary is frozen for 1 s against an RTO objective of 300 ms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from tests.conftest import run_drills

pytestmark = pytest.mark.postgres

FROZEN_S = 1.0
SCENARIO = f"""
version: 1
name: missed-rto
lab: {{kind: postgres-pair}}
objectives: {{rto: 300ms, rpo: 5s, availability: 99%}}
targets:
  site-a: {{lab: a}}
probes:
  reads: {{kind: postgres-read, dsn: "${{lab.a.dsn}}", interval: 20ms}}
  writes: {{kind: postgres-write, dsn: "${{lab.a.dsn}}", interval: 50ms}}
service_probe: reads
write_probe: writes
steps:
  - wait: 300ms
  - pause: site-a
  - wait: {FROZEN_S}s
  - resume: site-a
  - wait-until: reads
"""


def test_a_missed_rto_is_a_junit_failure_and_json_on_stdout(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "missed.yaml"
    scenario.write_text(SCENARIO)
    reports, junit = tmp_path / "runs", tmp_path / "out" / "junit.xml"
    run = run_drills(
        ["run", str(scenario), "--reports-dir", str(reports), "--junit", str(junit), "--json"],
        sandbox,
        reports,
    )
    assert run.returncode == 1, run.stderr
    outcome = json.loads(run.stdout)  # nothing but the JSON on standard output
    assert "verdict: FAIL" in run.stderr
    record = json.loads(Path(outcome["record"]).read_text())
    rto = record["measurements"]["rto_s"]
    assert FROZEN_S <= rto < FROZEN_S + 0.5  # the freeze the test made, and the pause step
    assert (outcome["verdict"], outcome["exit_status"]) == ("fail", 1)
    assert outcome["objectives"]["rto"]["verdict"] == "missed"
    assert outcome["objectives"]["rto"]["measured"] == rto
    [suite] = list(JUnitXml.fromfile(str(junit)))
    found = {case.name: case for case in suite}
    assert sorted(found) == ["availability", "rpo", "rto", "split_brain"]
    assert (suite.tests, suite.failures, suite.errors) == (4, 1, 0)
    [failure] = found["rto"].result
    assert isinstance(failure, Failure)
    assert failure.message.startswith(f"rto: measured {rto:.3f} s, objective <= 0.300 s")
    assert all(found[name].is_passed for name in ("rpo", "availability", "split_brain"))


def test_a_scenario_that_cannot_run_leaves_a_junit_error(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(SCENARIO.replace("pause: site-a", "pause: site-z"))
    reports, junit = tmp_path / "runs", tmp_path / "junit.xml"
    run = run_drills(
        ["run", str(scenario), "--reports-dir", str(reports), "--junit", str(junit)],
        sandbox,
        reports,
    )
    assert run.returncode == 2
    [suite] = list(JUnitXml.fromfile(str(junit)))
    [case] = list(suite)
    [error] = case.result
    assert isinstance(error, Error)
    assert error.message.startswith("drill did not run: ")
    assert "site-z" in error.message and str(scenario) in error.message
