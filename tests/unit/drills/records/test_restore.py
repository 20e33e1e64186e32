"""The record's `restore` key and the summary's restore block, built from the hand-built
restore drill of tests/unit/drills/restore_history.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drills.checker import check
from drills.history import History, HistoryLog
from drills.history_file import load_history
from drills.records import RunInfo, RunRecord, build_record, record_text
from drills.summary import render
from tests.unit.drills.restore_history import CONFIG, restore_facts, restore_history


def record_of(history: History) -> dict[str, Any]:
    info = RunInfo("run-1", "operator-error", "s.yaml", "0" * 64, "", 0, 0, {}, {}, None)
    return build_record(info, history, CONFIG, check(history, CONFIG), "h.jsonl").data()


def test_no_restore_means_no_restore_key() -> None:
    data = record_of(restore_history(None))
    assert "restore" not in data
    assert RunRecord.model_validate(data).restore is None


def test_the_restore_key_follows_split_brain_and_failover() -> None:
    data = record_of(restore_history(restore_facts()))
    keys = list(data)
    assert keys[keys.index("split_brain") + 1] == "restore"
    restore = data["restore"]
    assert restore["step"] == 1
    assert restore["incident_s"] == 2.005 and restore["incident_from"] == "incident"
    assert restore["incident_at"].endswith("Z")
    assert restore["rto_s"] == 2.002
    assert restore["rto_parts_s"] == {
        "decision": 0.5,
        "preparation": 0.1,
        "restore_copy": 1.0,
        "server_start": 0.1,
        "wal_replay": 0.2,
        "promotion": 0.1,
        "first_ok": 0.002,
    }
    assert sum(restore["rto_parts_s"].values()) == pytest.approx(restore["rto_s"])
    assert restore["first_ok_s"] == 4.002
    assert restore["rpo_s"] == 0
    assert restore["recovery_point"]["write_id"] == 100
    assert restore["recovery_point"]["ack_s"] == 2.001
    assert restore["newest_acked_before_incident"]["write_id"] == 100
    assert restore["predicted_rpo_s"] is None
    assert restore["writes"] == {
        "acked_before_incident": 101,
        "lost": 0,
        "lost_ids": [],
        "resurrected": 0,
        "resurrected_ids": [],
        "discarded": 49,
        "straddling": 0,
        "straddling_ids": [],
        "after_promotion": 139,
    }
    [step] = restore["steps"]
    assert step["mode"] == "in-place" and step["before_step"] == "drop"
    assert step["target"] == {"type": "xid", "value": "751", "exclusive": True}
    assert step["copy_s"] == 1.0 and step["pgbackrest_s"] == 0.93
    assert step["throughput_mb_s"] == 800.0 and step["replay_s"] == 0.2
    assert step["backup_age_at_incident_s"] == 0.805
    assert step["projection"] == {
        "size_bytes": 500_000_000_000,
        "copy_s": 625.0,
        "label": "projection, not measured",
    }
    assert step["verify"] == {"pgbackrest": "ok", "amcheck": "ok"}
    assert step["check"]["undone"] is True


def test_the_measurements_and_verdicts_take_the_restore_figures() -> None:
    data = record_of(restore_history(restore_facts()))
    assert data["measurements"]["rto_s"] == data["restore"]["rto_s"]
    assert data["measurements"]["rpo_s"] == 0
    assert data["verdicts"]["incident_undone"]["verdict"] == "met"
    assert data["verdicts"]["resurrected_writes"]["measured"] == 0
    assert data["verdict"] == "pass"


def test_the_record_loads_and_dumps_back_unchanged() -> None:
    data = record_of(restore_history(restore_facts(redo_start_ns=None)))
    assert record_text(RunRecord.model_validate(data).data()) == record_text(data)
    assert "server_start+wal_replay" in data["restore"]["rto_parts_s"]
    assert data["restore"]["rto_notes"] == [
        "no redo start in the server log: server_start and wal_replay merged"
    ]


def test_a_standby_rebuild_has_steps_only() -> None:
    facts = restore_facts(mode="standby", promoted_ns=None, target={"type": "latest"})
    restore = record_of(restore_history(facts))["restore"]
    assert restore["step"] is None and restore["rto_s"] is None and restore["writes"] is None
    assert restore["steps"][0]["mode"] == "standby"
    assert restore["steps"][0]["throughput_mb_s"] == 800.0


def test_the_summary_shows_the_restore_block() -> None:
    text = render(RunRecord.model_validate(record_of(restore_history(restore_facts()))))
    assert (
        "restore (step 2, node a, in-place, to xid 751 before 'drop')\n"
        "  RTO 2.002s from the disruption start = decision 0.500 + preparation 0.100 + restore "
        "copy 1.000 + server start 0.100 + WAL replay 0.200 + promotion 0.100 + first ok 0.002\n"
        "  RPO 0.000s, recovery point write 100 acked "
    ) in text
    assert "predicted n/a: no probe sampled the archive lag (pg_stat_archiver)" in text
    assert (
        "writes: lost 0, resurrected 0, discarded by the restore 49, straddling the incident 0"
    ) in text
    assert "800.0 MB/s (MB = 10^6 bytes)" in text
    assert "projection, not measured: 500000 MB in 625.0s" in text
    assert "verify: pgbackrest ok, amcheck ok; incident undone: yes" in text
    rows = [line for line in text.splitlines() if line.startswith(("| Resurrected", "| Incident"))]
    assert len(rows) == 2 and all("met" in row for row in rows)
    assert "RPO (data-loss window) | <= 1s" in text or "to the restore's recovery point" in text


def test_a_saved_history_rechecks_to_the_same_restore(tmp_path: Path) -> None:
    history = restore_history(restore_facts())
    log = HistoryLog(history.clock, tmp_path / "h.jsonl")
    for probe in history.probes:
        log.add_probe(probe)
    for op in history.ops:
        log.add_op(op)
    for step in history.steps:
        log.add_step(step)
    for final in history.final_reads:
        log.add_final_read(final)
    log.close()
    assert record_of(load_history(tmp_path / "h.jsonl"))["restore"] == record_of(history)["restore"]
