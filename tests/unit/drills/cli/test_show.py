"""`drills show` on the records of tests/data/records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drills import cli
from drills.errors import EXIT_ERROR, EXIT_MISSED, EXIT_OK
from tests import paths

DATA = paths.DATA / "records"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    for name in ("20261123T200100Z-simple-pass", "20261123T200200Z-simple-lost"):
        for suffix in (".json", ".history.jsonl"):
            shutil.copy(DATA / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


def test_last_is_the_newest_record_and_the_status_is_its_own(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["show", "last", "--reports-dir", str(runs)]) == EXIT_MISSED
    out = capsys.readouterr().out
    first = "run 20261123T200200Z-simple-lost: simple-lost, 2026-11-23T20:17:00.000Z on fixture"
    assert out.startswith(first + "\n")
    assert "verdict: FAIL" in out


def test_a_run_id_or_a_record_file(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = "20261123T200100Z-simple-pass"
    assert cli.main(["show", run_id, "--reports-dir", str(runs)]) == EXIT_OK
    assert cli.main(["show", str(runs / f"{run_id}.json"), "--json"]) == EXIT_OK
    outcome = json.loads(capsys.readouterr().out.split("record: ")[-1].split("\n", 1)[1])
    assert (outcome["run_id"], outcome["verdict"], outcome["exit_status"]) == (run_id, "pass", 0)
    assert outcome["objectives"]["rto"]["text"].startswith("rto: measured ")


def test_an_unknown_run_names_the_newest(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", "nope", "--reports-dir", str(runs)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.strip() == (
        f"drills: no run 'nope' in {runs} (the newest: 20261123T200200Z-simple-lost)"
    )
