"""Restore drills end to end against real PostgreSQL and pgBackRest, through the CLI a user
runs: the shipped scenarios on a small database, with ground truth the test reads itself."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drills.backup.serverlog import read_redo
from drills.journal import Recovery
from drills.labs.lab_process import LabDirectory
from tests.conftest import (
    REPO,
    drills_env,
    leftover_processes,
    run_drills,
    sigkill_drill_at,
    signal_drill_at,
)

pytestmark = [pytest.mark.postgres, pytest.mark.pgbackrest]

SCALE = 2  # pgbench scale of `size: 30MB`: 200,000 rows in pgbench_accounts


def small(name: str, tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A shipped scenario on a 30 MB database, with `edits` (old, new) applied."""
    text = (REPO / "scenarios" / f"{name}.yaml").read_text().replace("size: 1GB", "size: 30MB")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def drill(scenario: Path, sandbox: Path, tmp_path: Path, *extra: str) -> tuple[Any, Path]:
    reports = tmp_path / "runs"
    args = ["run", str(scenario), "--reports-dir", str(reports), "--no-live", *extra]
    return run_drills(args, sandbox, reports, timeout=240), reports


def history_ops(reports: Path, record: dict[str, Any], probe: str) -> list[dict[str, Any]]:
    lines = (reports / record["history"]).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    return [e for e in entries if e["type"] == "op" and e["probe"] == probe]


def restore_facts(record: dict[str, Any]) -> dict[str, Any]:
    step = next(s for s in record["timeline"] if s["kind"] == "restore")
    facts: dict[str, Any] = step["facts"]["restore"]
    return facts


def remove_kept_lab(sandbox: Path) -> None:
    for lab in sandbox.glob("drills-lab-*"):
        LabDirectory(path=str(lab)).undo(Recovery())


def test_operator_error_restores_exactly_to_before_the_drop(sandbox: Path, tmp_path: Path) -> None:
    scenario = small("operator-error", tmp_path)
    run, reports = drill(scenario, sandbox, tmp_path, "--keep-lab")
    try:
        assert run.returncode == 0, run.stderr + run.stdout
        record = run.record()
        facts = restore_facts(record)
        drop = next(s for s in record["timeline"] if s["kind"] == "sql")["facts"]["incident"]
        port = record["lab"]["ports"]["a"]
        lab = next(sandbox.glob("drills-lab-*"))
        # A kept lab lets in only who holds its password file.
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres passfile={lab / 'pgpass'}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Recovery stopped just before the drop's commit: in the restored cluster the
            # transaction never committed, and every row of the table is back.
            status = conn.execute("SELECT pg_xact_status(%s::text::xid8)", (drop["xid"],))
            assert status.fetchone() == ("aborted",)
            count = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
            assert count == (SCALE * 100_000,)
            rows = conn.execute(
                "SELECT id FROM drills_writes WHERE run_id LIKE %s", (f"{record['run_id']}%",)
            ).fetchall()
        present = {row[0] for row in rows}
        log = (lab / "a.log").read_text()
        redo = _last_redo(lab / "a.log", log)
    finally:
        remove_kept_lab(sandbox)
    ops = history_ops(reports, record, "writes")
    acked_before = [
        o["seq"] for o in ops if o["outcome"] == "ok" and o["complete_ns"] < drop["start_ns"]
    ]
    after = [
        o["seq"]
        for o in ops
        if drop["at_ns"] <= o["invoke_ns"] and o["complete_ns"] < facts["server_start_ns"]
    ]
    assert len(acked_before) > 50 and after
    assert set(acked_before) <= present, "writes acknowledged before the drop are missing"
    assert not set(after) & present, "writes made after the drop came back"
    restore = record["restore"]
    assert restore["rpo_s"] == 0
    assert restore["writes"]["lost"] == 0 and restore["writes"]["resurrected"] == 0
    assert record["verdicts"]["incident_undone"]["verdict"] == "met"
    assert restore["steps"][0]["verify"] == {"pgbackrest": "ok", "amcheck": "ok"}
    _parts_add_up(record)
    # The replay part is the server log's redo start -> redo done, read here by the test.
    assert redo is not None
    assert abs(restore["rto_parts_s"]["wal_replay"] - redo) <= 0.002


def _last_redo(path: Path, text: str) -> float | None:
    offset = text.rfind("starting point-in-time recovery")
    if offset < 0:
        return None
    found = read_redo(path, len(text[:offset].encode()))
    if found.started_wall_ns is None or found.done_wall_ns is None:
        return None
    return (found.done_wall_ns - found.started_wall_ns) / 1e9


def _parts_add_up(record: dict[str, Any]) -> None:
    restore = record["restore"]
    interval = record["measurements"]["probe_interval_s"]
    assert abs(sum(restore["rto_parts_s"].values()) - restore["rto_s"]) <= interval
    assert restore["rto_s"] == pytest.approx(record["measurements"]["rto_s"], abs=1e-6)


def test_poisoned_archive_costs_the_backups_age(sandbox: Path, tmp_path: Path) -> None:
    run, _ = drill(small("ransomware-archive", tmp_path), sandbox, tmp_path)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    restore = record["restore"]
    age = restore["steps"][0]["backup_age_at_incident_s"]
    interval = record["measurements"]["probe_interval_s"]
    # Nothing archived after the nightly backup can be used: what the restore lost is the
    # backup's age at the incident, within two write intervals.
    assert restore["rpo_s"] > 3
    assert abs(restore["rpo_s"] - age) <= 2 * interval + 0.002, (restore["rpo_s"], age)
    encrypt = next(s for s in record["timeline"] if s.get("name") == "encrypt")
    assert encrypt["facts"]["incident"]["archive_files"] >= 1
    assert restore["writes"]["resurrected"] == 0
    _parts_add_up(record)


@pytest.mark.parametrize(
    "name",
    ["config-loss", "ransomware", "data-loss", "intrusion"],
)
def test_shipped_restore_scenario_recovers(name: str, sandbox: Path, tmp_path: Path) -> None:
    run, _ = drill(small(name, tmp_path), sandbox, tmp_path)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    assert record["verdict"] == "pass"
    if name == "config-loss":
        assert record["measurements"]["lost_writes"] == 0
        return
    restore = record["restore"]
    step = restore["steps"][-1]
    assert step["copy_s"] > 0 and step["throughput_mb_s"] > 0
    assert step["verify"] == {"pgbackrest": "ok", "amcheck": "ok"}
    if name == "intrusion":  # a standby rebuild: the failover's figures are the drill's
        assert restore["step"] is None and record["measurements"]["lost_writes"] == 0
        return
    # What the archive did not hold is lost, as the archive lag predicted.
    assert restore["rpo_s"] > 0 and restore["predicted_rpo_s"] is not None
    assert step["projection"]["label"].startswith("projection")
    _parts_add_up(record)


ERRORS = {
    "older": (
        (
            "  - restore:              # point-in-time recovery to just before the drop\n"
            "      target: site-a\n      before: drop\n",
            '  - restore:\n      target: site-a\n      time: "2020-01-01T00:00:00Z"\n',
        ),
        r"restore target \(2020-01-01T00:00:00Z\) is older than every backup",
    ),
    "no-repository": (
        (
            "  - wait: 3s              # detection: the application fails\n",
            "  - exec: rm -rf ${lab.dir}/pgbackrest/repo\n",
        ),
        r"pgBackRest repository \S+/pgbackrest/repo: missing stanza path",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_restore_that_cannot_be_made_is_a_step_error(
    case: str, sandbox: Path, tmp_path: Path
) -> None:
    edit, message = ERRORS[case]
    run, _ = drill(small("operator-error", tmp_path, edit), sandbox, tmp_path)
    assert run.returncode == 2, run.stderr + run.stdout
    output = run.stdout + run.stderr
    verdict = next(line for line in output.splitlines() if line.startswith("verdict:"))
    assert re.search(message, verdict), verdict
    # The sandbox fixture checks that the lab, repository included, is gone.


def test_sigkill_during_a_restore_then_recover(sandbox: Path, tmp_path: Path) -> None:
    env = drills_env(sandbox) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    scenario = small("operator-error", tmp_path)
    sigkill_drill_at(scenario, env, tmp_path / "runs", "restore site-a")
    assert leftover_processes(sandbox) or list(sandbox.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "drills", "recover"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "removed lab" in done.stdout
    assert leftover_processes(sandbox) == []
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_ctrl_c_during_a_restore_leaves_nothing(sandbox: Path, tmp_path: Path) -> None:
    scenario = small("operator-error", tmp_path)
    reports = tmp_path / "runs"
    code, out, err = signal_drill_at(scenario, sandbox, reports, "restore site-a", signal.SIGINT)
    assert code == 130, err
    assert leftover_processes(sandbox) == []  # pgBackRest and the servers are gone
    record = json.loads(next(reports.glob("*.json")).read_text())
    assert record["verdict"] == "error" and "SIGINT" in record["error"]
    assert "verdict: ERROR" in out
