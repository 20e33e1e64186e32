"""History files (JSON Lines), run records (the contract keys) and `drills check RECORD`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drills.checker import CheckConfig, Objectives, check
from drills.errors import RecordError
from drills.history import (
    Clock,
    FinalRead,
    History,
    HistoryLog,
    Op,
    Outcome,
    ProbeInfo,
    StepEvent,
    _op_entry,
)
from drills.history_file import load_history
from drills.records import (
    SCHEMA_VERSION,
    RunInfo,
    build_record,
    load_record,
    record_text,
    write_atomically,
)
from tests.paths import REPO

MS = 1_000_000
START = 50_000 * MS
WALL = int(datetime(2026, 11, 23, 20, 15, tzinfo=UTC).timestamp()) * 1_000_000_000
CLOCK = Clock(mono_ns=START - 200 * MS, wall_ns=WALL)
STOP = START + 400 * MS
HISTORY_NAME = "20261123T201500Z-db-failover.history.jsonl"
RECORD_NAME = "20261123T201500Z-db-failover.json"


def service_ops() -> list[Op]:
    """Every 20 ms: five ok, five refused, ten ok."""
    ops = []
    for seq in range(20):
        due = START + seq * 20 * MS
        outcome = Outcome.FAIL if 5 <= seq < 10 else Outcome.OK
        detail = "connection refused" if outcome is Outcome.FAIL else ""
        ops.append(Op("svc", seq, due, due + 2 * MS, outcome, CLOCK.wall_ns_at(due), detail))
    return ops


def write_ops() -> list[Op]:
    """Writes 1..10 every 10 ms; 6 timed out."""
    ops = []
    for seq in range(1, 11):
        due = START + seq * 10 * MS
        outcome, latency = (Outcome.UNKNOWN, 100) if seq == 6 else (Outcome.OK, 1)
        ops.append(Op("writes", seq, due, due + latency * MS, outcome, CLOCK.wall_ns_at(due)))
    return ops


def fill(log: HistoryLog, lost: tuple[int, ...] = ()) -> None:
    """A drill history: the kill at 95 ms, every write present except `lost`."""
    log.add_probe(ProbeInfo("svc", "tcp", 0.02, 0.1, 0.05, START, STOP))
    log.add_probe(ProbeInfo("writes", "postgres-write", 0.01, 0.1, 0.05, START, STOP))
    log.add_step(StepEvent(0, "wait", "settle 50ms", START, START + 50 * MS, disruptive=False))
    log.add_step(
        StepEvent(1, "kill", "SIGKILL the primary", START + 95 * MS, START + 97 * MS, True)
    )
    for op in [*service_ops(), *write_ops()]:
        log.add_op(op)
    counts = {seq: 0 if seq in lost else 1 for seq in range(1, 11)}
    counts[6] = 2  # the timed-out write committed twice
    log.add_final_read(FinalRead("writes", STOP + 50 * MS, True, counts, "read on node b"))


CONFIG = CheckConfig(Objectives(rto_s=30.0, rpo_s=0.05, availability=0.9999), "svc", "writes")


def run_info(error: str | None = None) -> RunInfo:
    return RunInfo(
        run_id="20261123T201500Z-db-failover",
        scenario_name="db-failover",
        scenario_file="scenarios/db-failover.yaml",
        scenario_sha256="ab" * 32,
        description="Kill the primary, promote the standby.",
        started_wall_ns=WALL,
        finished_wall_ns=WALL + 3_500 * MS,
        phases_s={"setup": 3.0, "drill": 0.4, "teardown": 0.1},
        lab={"kind": "postgres-pair"},
        error=error,
    )


def make_record(history: History, error: str | None = None) -> dict[str, Any]:
    """The record as written: its JSON data."""
    record = build_record(run_info(error), history, CONFIG, check(history, CONFIG), HISTORY_NAME)
    return record.data()


def save_run(directory: Path, lost: tuple[int, ...] = ()) -> tuple[Path, dict[str, Any]]:
    log = HistoryLog(CLOCK, directory / HISTORY_NAME)
    try:
        fill(log, lost)
    finally:
        log.close()
    record = make_record(log.history)
    path = directory / RECORD_NAME
    write_atomically(path, record_text(record))
    return path, record


def drills_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drills", "check", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- history files -----------------------------------------------------------------------------


def test_history_log_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "run.history.jsonl"
    log = HistoryLog(CLOCK, path)
    fill(log)
    log.close()
    loaded = load_history(path)
    assert loaded == log.history
    assert loaded.clock == CLOCK
    assert loaded.ops == [*service_ops(), *write_ops()]
    assert all(isinstance(op.outcome, Outcome) for op in loaded.ops)
    assert [s.disruptive for s in loaded.steps] == [False, True]
    [final] = loaded.final_reads
    assert final.counts[6] == 2
    assert all(type(k) is int for k in final.counts)
    assert final.detail == "read on node b"
    assert [p.name for p in loaded.probes] == ["svc", "writes"]


def test_history_file_is_one_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "run.history.jsonl"
    log = HistoryLog(CLOCK, path)
    fill(log)
    log.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries[0] == {"type": "clock", "mono_ns": CLOCK.mono_ns, "wall_ns": CLOCK.wall_ns}
    types = [e["type"] for e in entries]
    assert types.count("op") == 30
    assert types.count("step") == 2
    assert types.count("probe") == 2
    assert types.count("final-read") == 1
    op = next(e for e in entries if e["type"] == "op")
    assert op["outcome"] == "ok"
    assert isinstance(op["invoke_ns"], int)


def test_history_log_without_a_file_only_collects(tmp_path: Path) -> None:
    log = HistoryLog(CLOCK)
    fill(log)
    log.close()
    assert len(log.history.ops) == 30
    assert list(tmp_path.iterdir()) == []


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    clock = json.dumps({"type": "clock", "mono_ns": 1, "wall_ns": 2})
    path.write_text(f"\n{clock}\n\n", encoding="utf-8")
    assert load_history(path) == History(clock=Clock(1, 2))


CLOCK_LINE = json.dumps({"type": "clock", "mono_ns": 1, "wall_ns": 2})
OP_LINE = json.dumps(
    {
        "type": "op",
        "probe": "svc",
        "seq": 0,
        "invoke_ns": 1,
        "complete_ns": 2,
        "outcome": "ok",
        "wall_ns": 0,
        "detail": "",
    }
)


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        ([CLOCK_LINE, "{not json"], 2, "not JSON"),
        ([CLOCK_LINE, OP_LINE, json.dumps({"type": "nemesis"})], 3, "unknown entry type"),
        ([OP_LINE, CLOCK_LINE], 1, "clock"),
        ([CLOCK_LINE, json.dumps([1, 2])], 2, "type"),
        ([CLOCK_LINE, json.dumps({"probe": "svc"})], 2, "type"),
        ([CLOCK_LINE, OP_LINE.replace('"ok"', '"maybe"')], 2, "malformed op"),
        ([CLOCK_LINE, json.dumps({"type": "op", "probe": "svc"})], 2, "malformed op"),
        ([CLOCK_LINE, json.dumps({"type": "step", "index": 0, "nope": 1})], 2, "malformed step"),
        (
            [
                CLOCK_LINE,
                json.dumps(
                    {"type": "final-read", "probe": "w", "at_ns": 1, "ok": True, "counts": {"x": 1}}
                ),
            ],
            2,
            "malformed final-read",
        ),
        ([json.dumps({"type": "clock", "mono_ns": 1})], 1, "malformed clock"),
    ],
)
def test_load_history_errors_name_file_and_line(
    tmp_path: Path, lines: list[str], line: int, words: str
) -> None:
    path = tmp_path / "bad.history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        load_history(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ")
    assert words in message
    assert "\n" not in message


def test_load_history_empty_or_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RecordError, match="empty history"):
        load_history(empty)
    with pytest.raises(RecordError, match="cannot read history"):
        load_history(tmp_path / "absent.jsonl")


# --- run records -------------------------------------------------------------------------------


def test_build_record_contract_keys() -> None:
    log = HistoryLog(CLOCK)
    fill(log)
    record = make_record(log.history)
    json.loads(record_text(record))  # serialisable as is

    assert record["schema_version"] == SCHEMA_VERSION == 1
    assert {"name", "file", "sha256"} <= record["scenario"].keys()
    assert record["scenario"]["name"] == "db-failover"
    assert record["scenario"]["sha256"] == "ab" * 32
    for key in ("started_at", "finished_at"):
        stamp = record[key]
        assert stamp.endswith("Z")
        assert datetime.fromisoformat(stamp).tzinfo == UTC
    assert record["started_at"] == "2026-11-23T20:15:00.000Z"
    assert record["finished_at"] == "2026-11-23T20:15:03.500Z"
    assert record["verdict"] in {"pass", "fail", "error"}
    assert record["objectives"] == {"rto_s": 30.0, "rpo_s": 0.05, "availability": 0.9999}
    assert {
        "rto_s",
        "rpo_s",
        "downtime_s",
        "availability",
        "lost_writes",
        "writes_acked",
        "probe_interval_s",
    } <= record["measurements"].keys()
    assert record["verdicts"].keys() == {"rto", "rpo", "availability"}
    for verdict in record["verdicts"].values():
        assert {"verdict", "objective", "measured", "reason"} <= verdict.keys()
        assert verdict["verdict"] in {"met", "missed", "unknown"}
    assert [s["kind"] for s in record["timeline"]] == ["wait", "kill"]
    kill = record["timeline"][1]
    assert kill["disruptive"] is True
    assert kill["start_s"] == pytest.approx(0.295)
    assert kill["at"] == "2026-11-23T20:15:00.295Z"
    assert record["probes"].keys() == {"svc", "writes"}
    assert record["probes"]["svc"]["interval_s"] == 0.02
    assert {"hostname", "python", "drills_version"} <= record["host"].keys()
    assert record["history"] == HISTORY_NAME


def test_build_record_measurements_come_from_the_checker() -> None:
    log = HistoryLog(CLOCK)
    fill(log, lost=(3, 4))
    result = check(log.history, CONFIG)
    record = build_record(run_info(), log.history, CONFIG, result, HISTORY_NAME)
    m = record.measurements
    assert result.writes is not None
    assert m.rto_s == result.rto_s == pytest.approx(202 * MS / 1e9 - 0.095)
    assert m.rpo_s == result.writes.rpo_s == pytest.approx(0.020)  # ack(4) - ack(2)
    assert m.downtime_s == pytest.approx(0.120)
    assert m.downtime_lower_s == pytest.approx(0.102)
    assert m.availability == pytest.approx(0.7)
    assert m.error_budget_s == pytest.approx(794.88)
    assert m.lost_writes == 2
    assert m.lost_write_ids == [3, 4]
    assert m.lost_ranges == [[3, 4]]
    assert m.holes == 0
    assert m.writes_acked == 9
    assert m.writes_attempted == 10
    assert m.writes_recovered == 1
    assert m.duplicated_writes == 1
    assert m.unexpected_writes == 0
    assert m.probe_interval_s == 0.02
    assert m.write_interval_s == 0.01
    assert m.disruption_start_s == pytest.approx(0.295)
    assert m.recovery_point_s == pytest.approx(0.221)  # ack of write 2, from the clock anchor
    assert record.verdict == "pass"


def test_build_record_holes_count_lost_runs_minus_one() -> None:
    log = HistoryLog(CLOCK)
    fill(log, lost=(2, 4, 8))
    m = make_record(log.history)["measurements"]
    assert m["lost_ranges"] == [[2, 2], [4, 4], [8, 8]]
    assert m["holes"] == 2


def test_build_record_error_overrides_the_verdict() -> None:
    log = HistoryLog(CLOCK)
    fill(log)
    record = make_record(log.history, error="step 2 failed")
    assert record["verdict"] == "error"
    assert record["error"] == "step 2 failed"


def test_build_record_without_a_final_read_has_null_write_figures() -> None:
    log = HistoryLog(CLOCK)
    fill(log)
    log.history.final_reads.clear()
    record = make_record(log.history)
    m = record["measurements"]
    assert m["rpo_s"] is None
    assert m["lost_writes"] is None
    assert m["holes"] is None
    assert record["verdicts"]["rpo"]["verdict"] == "unknown"
    assert record["verdict"] == "error"


def test_saved_record_reads_back(tmp_path: Path) -> None:
    path, record = save_run(tmp_path)
    assert load_record(path).data() == record
    config = load_record(path).check_config()
    assert config == CONFIG
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_load_record_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,\n  oops}', encoding="utf-8")
    with pytest.raises(RecordError, match=rf"^{re.escape(str(bad))}:2: not JSON"):
        load_record(bad)
    other = tmp_path / "other.json"
    other.write_text('{"schema_version": 99}', encoding="utf-8")
    with pytest.raises(RecordError, match="not a drills run record"):
        load_record(other)
    with pytest.raises(RecordError, match="cannot read"):
        load_record(tmp_path / "absent.json")
    lacking = tmp_path / "lacking.json"
    lacking.write_text('{"schema_version": 1, "objectives": {}}', encoding="utf-8")
    with pytest.raises(RecordError, match=rf"^{re.escape(str(lacking))}: record lacks"):
        load_record(lacking)


# --- drills check RECORD -----------------------------------------------------------------------


def test_check_recomputes_a_passing_record(tmp_path: Path) -> None:
    path, record = save_run(tmp_path)
    assert record["verdict"] == "pass"
    done = drills_check(str(path), "--json")
    assert done.returncode == 0, done.stderr
    rebuilt = json.loads(done.stdout)
    assert rebuilt["measurements"] == record["measurements"]
    assert rebuilt["verdicts"] == record["verdicts"]
    assert rebuilt["probes"] == record["probes"]
    assert rebuilt["timeline"] == record["timeline"]
    assert rebuilt["verdict"] == "pass"
    assert (rebuilt["started_at"], rebuilt["finished_at"]) == (
        record["started_at"],
        record["finished_at"],
    )


def test_check_exits_1_when_the_rpo_objective_is_missed(tmp_path: Path) -> None:
    # Write 6 was never acked, so 2..5 and 7..8 are one lost run: ack(8) - ack(1) = 70 ms.
    path, record = save_run(tmp_path, lost=(2, 3, 4, 5, 7, 8))
    assert record["verdicts"]["rpo"]["verdict"] == "missed"
    assert record["verdict"] == "fail"
    done = drills_check(str(path), "--json")
    assert done.returncode == 1, done.stderr
    rebuilt = json.loads(done.stdout)
    assert rebuilt["measurements"] == record["measurements"]
    assert rebuilt["measurements"]["rpo_s"] == pytest.approx(0.070)  # ack(8) - ack(1)
    assert rebuilt["verdicts"]["rpo"]["verdict"] == "missed"


def test_check_prints_the_summary_table(tmp_path: Path) -> None:
    path, _ = save_run(tmp_path)
    done = drills_check(str(path))
    assert done.returncode == 0, done.stderr
    assert "RPO" in done.stdout
    assert "met" in done.stdout


def test_check_corrupt_record_exits_2_with_one_line(tmp_path: Path) -> None:
    path, _ = save_run(tmp_path)
    path.write_text(path.read_text(encoding="utf-8")[:200], encoding="utf-8")  # truncated
    done = drills_check(str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"drills: {path}:")
    assert "not JSON" in lines[0]


def test_check_corrupt_history_exits_2_with_one_line(tmp_path: Path) -> None:
    path, _ = save_run(tmp_path)
    history = tmp_path / HISTORY_NAME
    with history.open("a", encoding="utf-8") as handle:
        handle.write("{truncated\n")
    done = drills_check(str(path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert f"{history}:" in lines[0]


def test_check_missing_history_exits_2(tmp_path: Path) -> None:
    path, _ = save_run(tmp_path)
    (tmp_path / HISTORY_NAME).unlink()
    done = drills_check(str(path))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "cannot read history" in done.stderr


def test_check_record_missing_keys_exits_2_with_one_line(tmp_path: Path) -> None:
    path, record = save_run(tmp_path)
    del record["run_id"]
    write_atomically(path, record_text(record))
    done = drills_check(str(path))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1


def test_an_op_line_holds_every_field_of_the_op() -> None:
    """The line is built by hand for speed; a field added to `Op` must not be left out."""
    op = Op("svc", 7, 10, 20, Outcome.UNKNOWN, 30, "d", {"lag": 1.5}, {"site": "a"}, 12, "late")
    assert _op_entry(op) == {"type": "op", **asdict(op)}
    assert list(_op_entry(op))[1:] == [f.name for f in fields(Op)]
