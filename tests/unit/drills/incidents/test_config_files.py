"""`delete-config` on a fake server: the copy kept, the journal and revert before the change,
a refused restart recorded, and the file put back by the revert or by `drills recover`."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.incidents.config_files import (
    GARBLED,
    ConfigFileChanged,
    DeleteConfig,
    config_copy,
    config_key,
    put_back,
)
from drills.journal import JournalEntry, Recovery
from tests.unit.drills.incidents.fakes import context, server

REFUSED = "2026-12-02 16:04:38.030 UTC [1] FATAL:  could not load pg_hba.conf"


def step(**keys: object) -> DeleteConfig:
    return DeleteConfig.model_validate({"kind": "delete-config", "target": "site-a", **keys})


def test_a_deleted_file_and_a_refused_restart(tmp_path: Path) -> None:
    fake = server(tmp_path)
    fake.refuses = REFUSED
    journal: list[JournalEntry] = []
    ctx = context({"site-a": fake}, journal)
    detail = step(file="pg_hba.conf").run(ctx)
    copy = config_copy(tmp_path, "a", "pg_hba.conf")
    assert copy == tmp_path / "config-copies" / "a" / "pg_hba.conf"
    assert copy.read_text() == "local all all trust\n"
    assert not (fake.datadir / "pg_hba.conf").exists()
    assert journal == [
        ConfigFileChanged(path=str(fake.datadir / "pg_hba.conf"), copy_path=str(copy))
    ]
    assert [r.key for r in ctx.reverts.items] == [config_key("a", "pg_hba.conf")]
    incident = ctx.facts["incident"]
    assert isinstance(incident.pop("at_ns"), int)
    assert incident == {
        "kind": "delete-config",
        "node": "a",
        "file": "pg_hba.conf",
        "how": "delete",
        "copy": str(copy),
        "restarted": False,
    }
    assert detail == (
        f"pg_hba.conf of a deleted (original kept in {copy}); "
        "restart failed: FATAL:  could not load pg_hba.conf"
    )
    fake.refuses = ""
    ctx.reverts.revert_all(lambda message: None)
    assert (fake.datadir / "pg_hba.conf").read_text() == "local all all trust\n"
    assert fake.running and fake.calls[-1] == "start"


def test_garbled_without_restart(tmp_path: Path) -> None:
    fake = server(tmp_path)
    ctx = context({"site-a": fake})
    detail = step(file="postgresql.conf", how="garble", restart=False).run(ctx)
    assert (fake.datadir / "postgresql.conf").read_text() == GARBLED["postgresql.conf"]
    assert "restarted" not in ctx.facts["incident"]
    assert detail.startswith("postgresql.conf of a garbled (original kept in ")
    assert fake.calls == []
    ctx.reverts.revert_all(lambda message: None)
    assert (fake.datadir / "postgresql.conf").read_text() == "port = 5432\n"
    assert fake.calls == []  # it was running: not started again


def test_a_restart_that_works_is_recorded(tmp_path: Path) -> None:
    fake = server(tmp_path)
    ctx = context({"site-a": fake})
    detail = step(file="pg_hba.conf", how="garble").run(ctx)
    assert ctx.facts["incident"]["restarted"] is True
    assert detail.endswith("; restarted: the node came back")


def test_recover_puts_the_copy_back_once(tmp_path: Path) -> None:
    fake = server(tmp_path)
    journal: list[JournalEntry] = []
    step(file="postgresql.conf", restart=False).run(context({"site-a": fake}, journal))
    (entry,) = journal
    assert entry.undo(Recovery()) == f"put back {fake.datadir / 'postgresql.conf'}"
    assert (fake.datadir / "postgresql.conf").read_text() == "port = 5432\n"
    assert entry.undo(Recovery()) is None  # nothing left to undo


def test_recover_after_the_lab_is_gone_does_nothing(tmp_path: Path) -> None:
    entry = ConfigFileChanged(path=str(tmp_path / "x.conf"), copy_path=str(tmp_path / "gone"))
    assert entry.undo(Recovery()) is None


def test_put_back_replaces_only_what_differs(tmp_path: Path) -> None:
    copy, path = tmp_path / "copy", tmp_path / "file"
    copy.write_text("original")
    assert put_back(copy, path) and path.read_text() == "original"
    assert not put_back(copy, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "file"]


def test_only_the_two_files_and_two_ways() -> None:
    with pytest.raises(ValueError, match=r"'postgresql\.conf' or 'pg_hba\.conf'"):
        step(file="pg_ident.conf")
    with pytest.raises(ValueError, match="'delete' or 'garble'"):
        step(file="pg_hba.conf", how="truncate")


def test_the_revert_leaves_a_node_alone_once_something_else_put_the_file_back(
    tmp_path: Path,
) -> None:
    fake = server(tmp_path)
    fake.refuses = REFUSED
    ctx = context({"site-a": fake})
    step(file="pg_hba.conf").run(ctx)
    (fake.datadir / "pg_hba.conf").write_text("local all all trust\n")  # restore-config
    calls = list(fake.calls)
    assert ctx.reverts.revert_all(lambda message: None) == []
    assert fake.calls == calls and not fake.running
