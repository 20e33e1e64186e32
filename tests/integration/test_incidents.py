"""The incident steps against a real postgres-pair lab: what `sql` reads back, a configuration
file garbled and put back, a relation overwritten, a data directory and its archive encrypted.

One lab serves the module; the tests that break a server for good run last, on site B."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from drills.errors import StepError
from drills.history import StepEvent
from drills.incidents.config_files import DeleteConfig, config_copy
from drills.incidents.corrupt import RANSOM_NOTE, Corrupt
from drills.incidents.sql import Sql
from drills.journal import JournalEntry
from drills.labs.lab_process import PostgresNode
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.steps.base import RevertStack, StepContext
from tests.conftest import leftover_processes, postgres_missing

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing())),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[PostgresPairLab]:
    box = Path(tempfile.mkdtemp(prefix="drills-test-"))
    box.chmod(0o777)
    saved, tempfile.tempdir = tempfile.tempdir, str(box)
    config = PostgresPairConfig.model_validate(
        {"kind": "postgres-pair", "proxy": False, "settings": {"track_commit_timestamp": "on"}}
    )
    pair = PostgresPairLab(config, lambda message: None)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        tempfile.tempdir = saved
        assert leftover_processes(box) == []
        assert list(box.iterdir()) == []
        shutil.rmtree(box, ignore_errors=True)


def node(lab: PostgresPairLab, name: str) -> PostgresNode:
    return next(server for server in lab.servers if server.name == name)


@dataclass
class Context:
    ctx: StepContext
    journal: list[JournalEntry]


def context(lab: PostgresPairLab) -> Context:
    journal: list[JournalEntry] = []
    ctx = StepContext(
        targets={"site-a": node(lab, "a"), "site-b": node(lab, "b")},
        probes={},
        reverts=RevertStack(),
        variables={},
        stable=3,
        progress=lambda message: None,
        journal=journal.append,
    )
    return Context(ctx, journal)


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def test_sql_reads_back_the_xid_lsn_and_commit_time(lab: PostgresPairLab) -> None:
    a = node(lab, "a")
    execute(a.dsn, "CREATE TABLE drills_victim AS SELECT generate_series(1, 10) AS id")
    run = context(lab)
    step = Sql.model_validate(
        {
            "kind": "sql",
            "target": "site-a",
            "statement": "DROP TABLE drills_victim",
            "check": "SELECT count(*) FROM drills_victim",
        }
    )
    before_wall, before = time.time_ns(), time.monotonic_ns()
    detail = step.run(run.ctx)
    after_wall, after = time.time_ns(), time.monotonic_ns()
    incident = run.ctx.facts["incident"]
    assert incident["kind"] == "sql" and incident["node"] == "a"
    assert incident["statement"] == "DROP TABLE drills_victim"
    assert incident["check"] == {"query": "SELECT count(*) FROM drills_victim", "before": "10"}
    assert before < incident["at_ns"] < after
    assert before_wall - 10**9 < incident["commit_wall_ns"] < after_wall + 10**9
    assert incident["commit_time_source"] == "pg_xact_commit_timestamp"
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", incident["lsn"])
    assert re.fullmatch(r"xid \d+, lsn [0-9A-F/]+, committed \d\d:\d\d:\d\d\.\d{3}; .*", detail)
    with psycopg.connect(a.dsn) as conn:
        status = conn.execute("SELECT pg_xact_status(%s::text::xid8)", (str(incident["xid"]),))
        assert status.fetchone() == ("committed",)
        exists = conn.execute("SELECT to_regclass('drills_victim') IS NULL").fetchone()
        assert exists == (True,)
        behind = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn) >= 0", (incident["lsn"],)
        ).fetchone()
        assert behind == (True,)
    assert run.ctx.reverts.items == []  # the mistake is the incident: a restore undoes it


def test_sql_by_dsn_that_fails_is_a_step_error(lab: PostgresPairLab) -> None:
    step = Sql.model_validate(
        {"kind": "sql", "dsn": node(lab, "a").dsn, "statement": "DROP TABLE no_such_table"}
    )
    with pytest.raises(StepError, match=r"sql failed: .*no_such_table"):
        step.run(context(lab).ctx)


def test_corrupt_relation_loses_its_pages(lab: PostgresPairLab) -> None:
    a = node(lab, "a")
    execute(a.dsn, "CREATE TABLE drills_rows AS SELECT generate_series(1, 5000) AS id")
    run = context(lab)
    step = Corrupt.model_validate(
        {"kind": "corrupt", "target": "site-a", "what": {"relation": "drills_rows"}}
    )
    detail = step.run(run.ctx)
    incident = run.ctx.facts["incident"]
    assert incident["what"] == "relation" and incident["relation"] == "drills_rows"
    assert incident["files"] >= 1 and incident["bytes"] >= 8192
    assert incident["archive"] == "intact" and incident["restarted"] is True, detail
    with (
        psycopg.connect(a.dsn) as conn,
        pytest.raises(psycopg.Error, match=r"invalid page|could not read"),
    ):
        conn.execute("SELECT count(*) FROM drills_rows")


@pytest.mark.parametrize(
    ("file", "how", "refusal"),
    [
        ("pg_hba.conf", "garble", "FATAL:  could not load pg_hba.conf"),
        ("postgresql.conf", "delete", "postgres: could not access the server configuration"),
        ("postgresql.conf", "garble", "FATAL:  configuration file"),
    ],
)
def test_delete_config_breaks_the_restart_and_the_revert_puts_it_back(
    lab: PostgresPairLab, file: str, how: str, refusal: str
) -> None:
    b = node(lab, "b")
    original = (b.datadir / file).read_bytes()
    run = context(lab)
    step = DeleteConfig.model_validate(
        {"kind": "delete-config", "target": "site-b", "file": file, "how": how}
    )
    try:
        detail = step.run(run.ctx)
        incident = run.ctx.facts["incident"]
        assert incident["restarted"] is False, detail
        assert incident["file"] == file and incident["how"] == how and incident["node"] == "b"
        assert f"restart failed: {refusal}" in detail, detail
        copy = config_copy(lab.root, "b", file)
        assert copy.read_bytes() == original
        assert os.stat(copy).st_uid == os.stat(b.datadir).st_uid
        assert [entry.op for entry in run.journal] == ["config-file"]
    finally:
        assert run.ctx.reverts.revert_all(lambda message: None) == []
    assert (b.datadir / file).read_bytes() == original
    assert os.stat(b.datadir / file).st_uid == os.stat(b.datadir).st_uid
    with psycopg.connect(b.dsn) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


class FakeRepository:
    """Stands in for the lab's pgBackRest repository: its archive is files we made."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def archive_wal_files(self) -> list[Path]:
        return self.files


def test_ransomware_encrypts_the_data_directory_and_the_archive_after_a_step(
    lab: PostgresPairLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = node(lab, "b")
    archive = lab.root / "fake-archive"
    archive.mkdir()
    old, new = archive / "000000010000000000000001", archive / "000000010000000000000002"
    old.write_bytes(b"old WAL" * 1000)
    time.sleep(0.05)
    backup_end = time.monotonic_ns()
    time.sleep(0.05)
    new.write_bytes(b"new WAL" * 1000)
    backups = SimpleNamespace(repository=FakeRepository([old, new]))
    monkeypatch.setattr(lab, "backups", backups, raising=False)
    control = (b.datadir / "global" / "pg_control").read_bytes()
    run = context(lab)
    run.ctx.done["backup"] = StepEvent(0, "exec", "backup", 0, backup_end, False, name="backup")
    step = Corrupt.model_validate(
        {
            "kind": "corrupt",
            "target": "site-b",
            "what": "data-directory",
            "archive": "poisoned",
            "poisoned_from": "backup",
        }
    )
    detail = step.run(run.ctx)
    incident = run.ctx.facts["incident"]
    assert incident["what"] == "data-directory" and incident["restarted"] is False, detail
    assert incident["files"] > 100 and incident["bytes"] > 10**6
    assert incident["archive_files"] == 1 and incident["archive_poisoned_from_ns"] == backup_end
    assert old.read_bytes() == b"old WAL" * 1000
    assert new.read_bytes() != b"new WAL" * 1000
    assert (b.datadir / "global" / "pg_control").read_bytes() != control
    assert (b.datadir / RANSOM_NOTE).is_file()
    assert "restart failed: " in detail and "FATAL:" in detail, detail
