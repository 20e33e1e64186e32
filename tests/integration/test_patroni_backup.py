"""Backups in the `patroni` lab with real etcd, Patroni, HAProxy, PostgreSQL and pgBackRest: one
drill, its lab kept, then checked by the test itself (the repository's backups, the leader's
WAL reaching the archive) and removed by `drills recover`."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from drills.backup.pgbackrest import Repository
from drills.labs.lab_process import LabUser
from tests.conftest import REPO, drills_env, leftover_processes, run_drills

pytestmark = [pytest.mark.postgres, pytest.mark.patroni, pytest.mark.pgbackrest]

SCENARIO = """
version: 1
name: patroni-backup
lab:
  kind: patroni
  ttl: 10
  loop_wait: 2
  retry_timeout: 4
  backup: {archive_timeout: 10s, size: 20MB}
targets:
  leader: {lab: leader}
probes:
  writes: {kind: postgres-write, dsn: "${lab.dsn}", interval: 50ms, timeout: 500ms}
service_probe: writes
write_probe: writes
steps:
  - wait: 1s
  - backup: {name: nightly, target: leader, type: incr, starts_rto: true}
  - wait: 1s
"""


def _lab_user() -> LabUser | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return LabUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _archived(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()
    assert row is not None
    return int(row[0])


def test_a_patroni_lab_archives_and_backs_up_its_leader(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "patroni-backup.yaml"
    scenario.write_text(SCENARIO)
    reports = tmp_path / "runs"
    args = ["run", str(scenario), "--reports-dir", str(reports), "--no-live", "--keep-lab"]
    started = time.monotonic()
    run = run_drills(args, sandbox, reports, timeout=240)
    try:
        print(f"drill with backup: {time.monotonic() - started:.1f}s")
        print(run.stdout.splitlines()[-4:])
        assert run.returncode == 0, run.stderr + run.stdout
        record = run.record()
        lab = record["lab"]
        facts = lab["backup"]
        assert facts["first_backup"].endswith("F") and facts["db_bytes"] > 20e6
        step = next(s for s in record["timeline"] if s["kind"] == "backup")
        leader = step["detail"].split(":")[0].removeprefix("leader = ")
        assert leader in lab["members"], step["detail"]
        label = step["facts"]["backup"]["label"]
        assert label.startswith(facts["first_backup"] + "_") and label.endswith("I")
        root = next(sandbox.glob("drills-lab-*"))
        # The repository lists both backups, as pgBackRest itself reports them.
        labels = [s.label for s in Repository(root, _lab_user()).sets()]
        assert labels == [facts["first_backup"], label]
        # WAL written on the leader reaches the archive.
        port = lab["members"][leader]["port"]
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres passfile={root}/pgpass"
        before = _archived(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
            conn.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 15
        while _archived(dsn) <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _archived(dsn) > before, "the leader's WAL did not reach the archive"
    finally:
        recovered = subprocess.run(
            [sys.executable, "-m", "drills", "recover"],
            capture_output=True,
            text=True,
            env=drills_env(sandbox),
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert recovered.returncode == 0, recovered.stderr
    assert leftover_processes(sandbox) == []
