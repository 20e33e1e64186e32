"""`corrupt` on a fake server: encryption in place, a relation's files, a poisoned archive
from a named step on, and the validation that needs the scenario's lab."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from drills.errors import StepError
from drills.history import StepEvent
from drills.incidents.config_files import config_key
from drills.incidents.corrupt import (
    CHUNK,
    RANSOM_NOTE,
    Corrupt,
    encrypt_in_place,
    overwrite_random,
    relation_files,
)
from drills.steps.base import Revert
from tests.unit.drills.incidents.fakes import FakeLab, context, server


def corrupt(**keys: object) -> Corrupt:
    return Corrupt.model_validate({"kind": "corrupt", "target": "site-a", **keys})


def test_xor_encryption_in_chunks_keeps_the_size_and_is_its_own_inverse(tmp_path: Path) -> None:
    path = tmp_path / "file"
    original = os.urandom(2 * CHUNK + 123)
    path.write_bytes(original)
    key = os.urandom(CHUNK)
    assert encrypt_in_place(path, key) == len(original)
    scrambled = path.read_bytes()
    assert len(scrambled) == len(original) and scrambled != original
    encrypt_in_place(path, key)
    assert path.read_bytes() == original


def test_overwrite_keeps_the_size(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"\0" * 20000)
    assert overwrite_random(path) == 20000
    assert path.stat().st_size == 20000 and path.read_bytes() != b"\0" * 20000


def test_a_relation_is_its_forks_and_segments_only(tmp_path: Path) -> None:
    db = tmp_path / "base" / "5"
    db.mkdir(parents=True)
    names = ["16384", "16384.1", "16384_fsm", "16384_vm", "163840", "16385", "16384_init.2"]
    for name in names:
        (db / name).write_bytes(b"x")
    found = [p.name for p in relation_files(tmp_path, "base/5/16384")]
    assert found == ["16384", "16384.1", "16384_fsm", "16384_init.2", "16384_vm"]


@dataclass
class FakeRepository:
    files: list[Path]

    def archive_wal_files(self) -> list[Path]:
        return self.files


def test_ransomware_with_the_archive_poisoned_after_a_step(tmp_path: Path) -> None:
    fake = server(tmp_path / "lab")
    archive = tmp_path / "archive"
    archive.mkdir()
    old, new = archive / "000000010000000000000001", archive / "000000010000000000000002"
    old.write_bytes(b"old" * 100)
    time.sleep(0.02)
    end = time.monotonic_ns()
    time.sleep(0.02)
    new.write_bytes(b"new" * 100)
    fake.lab = FakeLabWithRepository(fake.lab.root, FakeRepository([old, new]))
    fake.refuses = "2026-12-02 16:04:56.268 UTC [1] FATAL:  database files are incompatible"
    ctx = context({"site-a": fake})
    ctx.done["backup"] = StepEvent(0, "exec", "backup", 0, end, False, name="backup")
    step = corrupt(what="data-directory", archive="poisoned", poisoned_from="backup")
    detail = step.run(ctx)
    incident = ctx.facts["incident"]
    assert isinstance(incident.pop("at_ns"), int)
    assert incident == {
        "kind": "corrupt",
        "node": "a",
        "what": "data-directory",
        "files": 3,  # one file each in base/, global/ and pg_wal/ (directories are not)
        "bytes": 16384 + 8192 + 3 * 2**20 + 1,
        "archive": "poisoned",
        "archive_files": 1,
        "archive_bytes": 300,
        "archive_poisoned_from_ns": end,
        "restarted": False,
    }
    assert old.read_bytes() == b"old" * 100 and new.read_bytes() != b"new" * 100
    assert (fake.datadir / "base/5/16384").read_bytes() != b"\x01" * 16384
    assert (fake.datadir / "postgresql.conf").read_text() == "port = 5432\n"  # not in scope
    assert (fake.datadir / RANSOM_NOTE).is_file()
    assert fake.calls == ["kill_all", "start"]  # no shutdown checkpoint over the damage
    assert detail == (
        f"data directory of a encrypted (note: {RANSOM_NOTE}): 3 files, 3.2 MB; "
        "archive poisoned: 1 WAL file archived after backup; "
        "restart failed: FATAL:  database files are incompatible"
    )
    assert ctx.reverts.items == []  # the damage is the incident


@dataclass
class FakeLabWithRepository(FakeLab):
    repository: FakeRepository | None = None


def test_without_a_repository_nothing_is_damaged(tmp_path: Path) -> None:
    fake = server(tmp_path)
    ctx = context({"site-a": fake})
    with pytest.raises(StepError, match="the lab of a has no backup repository to poison"):
        corrupt(what="data-directory", archive="poisoned").run(ctx)
    assert (fake.datadir / "base/5/16384").read_bytes() == b"\x01" * 16384


def test_every_archived_segment_without_poisoned_from(tmp_path: Path) -> None:
    fake = server(tmp_path / "lab")
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(b"wal" * 10)
    fake.lab = FakeLabWithRepository(fake.lab.root, FakeRepository([segment]))
    ctx = context({"site-a": fake})
    corrupt(what="data-directory", archive="poisoned", restart=False).run(ctx)
    assert ctx.facts["incident"]["archive_files"] == 1
    assert "archive_poisoned_from_ns" not in ctx.facts["incident"]
    assert "restarted" not in ctx.facts["incident"] and fake.calls == []


@dataclass
class LabConfigWith:
    backup: object | None


def test_a_poisoned_archive_needs_the_labs_backups() -> None:
    poisoned = corrupt(what="data-directory", archive="poisoned")
    message = "a poisoned archive needs the lab's backups: set lab.backup"
    assert poisoned.lab_problems(LabConfigWith(None)) == [(("archive",), message)]  # type: ignore[arg-type]
    assert poisoned.lab_problems(None) == [(("archive",), message)]
    assert poisoned.lab_problems(LabConfigWith({"repo": "x"})) == []  # type: ignore[arg-type]
    assert corrupt(what="data-directory").lab_problems(None) == []


def test_poisoned_from_is_a_step_reference_for_a_poisoned_archive_only() -> None:
    step = corrupt(what="data-directory", archive="poisoned", poisoned_from="backup")
    assert step.step_refs == ["backup"]
    assert corrupt(what={"relation": "t"}).step_refs == []
    with pytest.raises(ValueError, match="poisoned_from is for archive: poisoned"):
        corrupt(what="data-directory", poisoned_from="backup")


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("everything", "what is `data-directory` or `{relation: NAME}`; got 'everything'"),
        ({"relaton": "t"}, "unknown key 'relaton'"),
    ],
)
def test_what_is_one_of_two_forms_with_one_message(what: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        corrupt(what=what)
    assert caught.value.error_count() == 1  # type: ignore[attr-defined]
    assert message in str(caught.value)


def test_an_encrypted_data_directory_takes_pending_config_reverts_of_its_node_with_it(
    tmp_path: Path,
) -> None:
    fake = server(tmp_path)
    ctx = context({"site-a": fake})
    ctx.reverts.push(Revert(config_key("a", "pg_hba.conf"), "put back", lambda: None))
    ctx.reverts.push(Revert(config_key("b", "pg_hba.conf"), "put back", lambda: None))
    corrupt(what="data-directory", restart=False).run(ctx)
    assert [r.key for r in ctx.reverts.items] == [config_key("b", "pg_hba.conf")]
