"""The typed run record against records written before it existed.

tests/data/records/ holds six records and their histories written and chained by the dict-based
record code of main at 999986c (see its README): a new record built from the same history must
be the same JSON text, and the old files must load, verify and re-check as before.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from drills import cli
from drills.checker import Overall, Verdict, check
from drills.errors import RecordError
from drills.history_file import load_history
from drills.records import (
    RunInfo,
    RunRecord,
    build_record,
    load_record,
    load_runs,
    read_runs,
    record_text,
    self_digest,
    verify_chain,
    write_record,
)
from drills.records import build as build_module
from drills.records.model import Host, SplitBrainRecord
from drills.secrets import Redactor
from tests import paths

DATA = paths.DATA / "records"
FIXTURES = sorted(DATA.glob("*.json"))
FIXTURE_HOST = Host(
    hostname="fixture", platform="Linux-fixture", python="3.11.2", cpus=2, drills_version="0.1.0"
)
PHASES = {"setup": 3.04567, "drill": 0.4, "teardown": 0.1}  # as given to the old build_record


def raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def fixture(stem: str) -> Path:
    [path] = [p for p in FIXTURES if p.stem.endswith(stem)]
    return path


def rebuilt(path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRecord:
    """The record the new code builds from the fixture's history and run facts."""
    monkeypatch.setattr(build_module, "host_facts", lambda: FIXTURE_HOST)
    old = load_record(path)
    history = load_history(path.parent / old.history)
    config = old.check_config()
    info = RunInfo(
        run_id=old.run_id,
        scenario_name=old.scenario.name,
        scenario_file=old.scenario.file,
        scenario_sha256=old.scenario.sha256,
        description=old.scenario.description,
        started_wall_ns=0,
        finished_wall_ns=0,
        phases_s=PHASES,
        lab=old.lab,
        targets=old.targets,
        error=old.error,
        aborted=old.aborted,
    )
    record = build_record(info, history, config, check(history, config), old.history)
    return record.model_copy(update={"started_at": old.started_at, "finished_at": old.finished_at})


def test_the_fixtures_cover_every_verdict_and_the_newer_keys() -> None:
    records = [load_record(p) for p in FIXTURES]
    # `crashed` is not built from a history: `drills recover` writes it (test_crashed.py).
    assert {r.verdict for r in records} == set(Overall) - {Overall.CRASHED}
    assert any(r.split_brain and r.split_brain.detected for r in records)
    assert any(len(r.disruptions) > 1 for r in records)
    assert any(r.events and r.targets for r in records)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_new_record_is_the_same_json_as_the_old_code_wrote(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = {k: v for k, v in raw(path).items() if k not in ("chain", "self_sha256")}
    assert record_text(rebuilt(path, monkeypatch).data()) == record_text(written)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_an_old_record_loads_and_dumps_back_unchanged(path: Path) -> None:
    record = load_record(path)
    assert record.data() == raw(path)
    assert record_text(record.data()) == path.read_text(encoding="utf-8")
    assert record.chain is not None and record.self_sha256 == self_digest(raw(path))


def test_figures_keep_their_json_type() -> None:
    quiet = load_record(fixture("quiet-error"))
    assert type(quiet.measurements.downtime_s) is int  # sum() of no outages: written as 0
    assert type(quiet.measurements.availability) is float
    rich = load_record(fixture("rich-fail"))
    assert type(rich.verdicts["split_brain"].objective) is int
    assert rich.probes["lag"].peaks == {"lag_bytes": 11264, "lag_s": 0.11}
    assert type(rich.probes["lag"].peaks["lag_bytes"]) is int


def test_the_old_chain_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "runs"
    shutil.copytree(DATA, directory)
    assert verify_chain(directory) == (len(FIXTURES), [])
    assert cli.main(["verify", "--reports-dir", str(directory)]) == 0
    out = capsys.readouterr().out
    n = len(FIXTURES)
    unsigned = f"{n} unsigned: not authenticated (no signing key given)"
    assert out.endswith(f"{n} records checked: chain intact; {unsigned}\n")
    victim = directory / fixture("simple-pass").name
    victim.write_text(victim.read_text().replace('"rto_s": 30.0', '"rto_s": 31.0', 1))
    _, problems = verify_chain(directory)
    assert f"{victim}: content changed after it was written (self_sha256)" in problems


def test_the_old_records_read_as_runs() -> None:
    runs = load_runs(DATA)
    assert [r.path for r in runs] == FIXTURES  # started a minute apart, in name order
    assert [r.scenario for r in runs][:2] == ["rich-fail", "simple-pass"]
    assert runs[1].passed and runs[1].verdict is Overall.PASS
    aborted = load_record(fixture("rich-aborted"))
    assert aborted.verdict is Overall.ABORTED
    assert aborted.aborted == "--max-downtime: svc down over 0.1s"
    assert aborted.verdicts["rto"].verdict is Verdict.MET


@pytest.mark.parametrize(
    ("stem", "status"), [("simple-pass", 0), ("simple-lost", 1), ("rich-aborted", 2)]
)
def test_drills_check_recomputes_an_old_record(
    stem: str, status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(DATA, tmp_path / "runs")
    path = tmp_path / "runs" / fixture(stem).name
    assert cli.main(["check", str(path), "--json"]) == status
    again = json.loads(capsys.readouterr().out)
    old = raw(path)
    for key in ("measurements", "verdicts", "probes", "timeline", "split_brain", "disruptions"):
        assert again[key] == old[key], key
    assert (again["started_at"], again["host"]) == (old["started_at"], old["host"])


def legacy(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as the first records were written: without the keys added since."""
    for key in ("split_brain", "disruptions", "targets", "events", "aborted", "chain"):
        data.pop(key, None)
    data.pop("self_sha256", None)
    for key in ("replication_lag_peak_bytes", "replication_lag_peak_s"):
        data["measurements"].pop(key)
    for probe in data["probes"].values():
        for key in ("served_by", "skipped", "crashed", "peaks"):
            probe.pop(key)
    return data


def test_a_record_without_the_newer_keys_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / fixture("rich-fail").name
    path.write_text(record_text(legacy(raw(fixture("rich-fail")))), encoding="utf-8")
    record = load_record(path)
    assert record.split_brain is None
    assert (record.disruptions, record.events, record.targets) == ([], [], {})
    assert record.aborted is None and record.chain is None and record.self_sha256 is None
    assert record.measurements.replication_lag_peak_bytes is None
    svc = record.probes["svc"]
    assert (svc.served_by, svc.skipped, svc.crashed, svc.peaks) == ({}, 0, 0, {})
    assert record.measurements.rto_s == 0.227
    assert [r.scenario for r in load_runs(tmp_path)] == ["rich-fail"]


def test_an_aborted_run_is_written_through_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    record = rebuilt(fixture("rich-aborted"), monkeypatch)
    assert record.verdict is Overall.ABORTED
    keys = list(record.data())
    assert keys[keys.index("history") + 1] == "aborted"
    passing = rebuilt(fixture("simple-pass"), monkeypatch)
    assert "aborted" not in passing.data() and "chain" not in passing.data()


def test_split_brain_not_detected_is_one_key() -> None:
    assert SplitBrainRecord(detected=False).model_dump(mode="json") == {"detected": False}


def test_write_record_redacts_chains_and_returns_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = rebuilt(fixture("rich-fail"), monkeypatch)
    record = record.model_copy(
        update={"error": "login failed for s3cr3t-pw", "lab": {"dsn": "password=s3cr3t-pw"}}
    )
    directory = tmp_path / "runs"
    directory.mkdir()
    shutil.copy(DATA / record.history, directory)
    path = directory / f"{record.run_id}.json"
    written = write_record(path, record, Redactor({"s3cr3t-pw"}).deep)
    text = path.read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in text
    assert written.error == "login failed for ***"
    assert written.lab == {"dsn": "password=***"}
    assert written.chain is not None and written.chain.seq == 1
    assert written.chain.history_sha256 is not None
    assert load_record(path) == written
    assert verify_chain(directory) == (1, [])


def test_one_reader_strict_and_tolerant(tmp_path: Path) -> None:
    shutil.copy(fixture("simple-pass"), tmp_path)
    broken = tmp_path / "20261101T000000Z-broken.json"
    broken.write_text("{not json", encoding="utf-8")
    lacking = tmp_path / "20261102T000000Z-lacking.json"
    data = raw(fixture("simple-lost"))
    del data["started_at"]
    lacking.write_text(json.dumps(data), encoding="utf-8")
    runs, problems = read_runs(tmp_path)
    assert [r.scenario for r in runs] == ["simple-pass"]
    assert [str(p) for p in problems] == [
        f"{broken}:1: not JSON: Expecting property name enclosed in double quotes",
        f"{lacking}: record lacks 'started_at'",
    ]
    with pytest.raises(RecordError, match=r"broken\.json:1: not JSON"):
        load_runs(tmp_path)
    assert read_runs(tmp_path / "absent") == ([], [])


def test_a_malformed_value_names_its_key(tmp_path: Path) -> None:
    data = raw(fixture("simple-pass"))
    data["verdicts"]["rto"]["verdict"] = "maybe"
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        RecordError, match=r"x\.json: not a valid run record: verdicts\.rto\.verdict"
    ):
        load_record(path)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_the_summary_reads_as_before(path: Path) -> None:
    """tests/data/summaries/ holds what `summary.render` printed for these records at 999986c,
    with the probe table's service/writes marks and its legend added since (issue 16)."""
    from drills.summary import render

    expected = DATA.parent / "summaries" / f"{path.stem}.txt"
    assert render(load_record(path)) + "\n" == expected.read_text(encoding="utf-8")


def test_a_run_that_never_started_says_only_why() -> None:
    from drills.summary import render

    record = load_record(fixture("simple-error")).model_copy(update={"probes": {}})
    assert render(record) == "verdict: ERROR: step 2 failed: kill: no such process"
