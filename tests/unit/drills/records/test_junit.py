"""JUnit files from the records of tests/data/records, read back with a JUnit library."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, TestCase

from drills.records import load_record
from drills.records.junit import judgement, write_junit, write_junit_error
from drills.records.model import ObjectiveVerdict
from drills.verdicts import Verdict
from tests import paths

DATA = paths.DATA / "records"


def cases(record_name: str, tmp_path: Path) -> dict[str, TestCase]:
    out = tmp_path / "junit.xml"
    write_junit(load_record(DATA / record_name), out, "runs/x.json")
    [suite] = list(JUnitXml.fromfile(str(out)))
    found = {case.name: case for case in suite}
    assert suite.tests == len(found)
    return found


def test_a_passed_drill_is_one_passing_case_per_objective(tmp_path: Path) -> None:
    found = cases("20261123T200100Z-simple-pass.json", tmp_path)
    assert sorted(found) == ["availability", "rpo", "rto"]
    assert all(case.is_passed for case in found.values())


def test_a_missed_objective_is_a_failure_giving_measured_against_objective(
    tmp_path: Path,
) -> None:
    found = cases("20261123T200200Z-simple-lost.json", tmp_path)
    [failure] = found["rpo"].result
    assert isinstance(failure, Failure)
    assert failure.message.startswith("rpo: measured ")
    assert failure.message.endswith(", objective <= 0.050 s")
    assert found["rto"].is_passed and found["availability"].is_passed


def test_a_drill_that_failed_to_run_to_the_end_is_an_error_case(tmp_path: Path) -> None:
    found = cases("20261123T200300Z-simple-error.json", tmp_path)
    [error] = found["drill"].result
    assert isinstance(error, Error)
    assert error.message == "drill error: step 2 failed: kill: no such process"


def test_an_aborted_drill_says_which_condition_fired(tmp_path: Path) -> None:
    found = cases("20261123T200400Z-rich-aborted.json", tmp_path)
    [error] = found["drill"].result
    assert error.message.startswith("drill aborted: aborted: ")
    assert isinstance(found["split_brain"].result[0], Failure)


def test_an_objective_not_measured_is_an_error_not_a_pass(tmp_path: Path) -> None:
    found = cases("20261123T200500Z-quiet-error.json", tmp_path)
    [error] = found["rto"].result
    assert isinstance(error, Error)
    assert "rto: measured not measured" not in error.message
    assert error.message.startswith("rto: not measured, objective <= ")


def test_a_drill_refused_before_it_ran_leaves_one_error(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    write_junit_error(out, Path("scenarios/db-failover.yaml"), "did not run: x.yaml:3: steps: bad")
    [suite] = list(JUnitXml.fromfile(str(out)))
    [case] = list(suite)
    assert (suite.errors, case.name) == (1, "drill")
    assert case.result[0].message == "drill did not run: x.yaml:3: steps: bad"


def test_figures_are_in_each_objectives_unit() -> None:
    share = ObjectiveVerdict(verdict=Verdict.MISSED, objective=0.9999, measured=0.99)
    assert judgement("availability:shop", share) == (
        "availability:shop: measured 99.0000%, objective >= 99.9900%"
    )
    rto = ObjectiveVerdict(verdict=Verdict.MET, objective=30, measured=1.5, reason="lower bound")
    assert judgement("rto", rto) == "rto: measured 1.500 s, objective <= 30.000 s (lower bound)"


def test_characters_xml_cannot_hold_are_written_as_unicode_escapes(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    write_junit_error(out, Path("x.yaml"), "did not run: bell \x07 and \udcff from a program")
    [suite] = list(JUnitXml.fromfile(str(out)))
    [case] = list(suite)
    assert case.result[0].message == ("drill did not run: bell \\u0007 and \\udcff from a program")


def test_availability_is_said_as_the_error_budget_share_it_is_judged_by() -> None:
    why = "downtime 1.020s is 0.00% of the quarter's error budget 79488.0s"
    found = ObjectiveVerdict(verdict=Verdict.MET, objective=0.99, measured=0.25, reason=why)
    assert judgement("availability", found) == f"availability: {why} (objective >= 99.0000%)"
