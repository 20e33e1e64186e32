"""The spool: a record and its history copied aside, listed oldest first, private to the user."""

from __future__ import annotations

import shutil
from pathlib import Path

from drills.store.spool import spool, spool_dir, spooled
from tests.paths import REPO

RECORDS = REPO / "tests" / "data" / "records"


def test_a_spooled_record_keeps_its_bytes_and_its_history(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(RECORDS, runs)
    names = ["20261123T200100Z-simple-pass", "20261123T200000Z-rich-fail"]
    for name in names:
        spool(runs / f"{name}.json", tmp_path / "state")
    assert [p.stem for p in spooled(tmp_path / "state")] == sorted(names)
    into = spool_dir(tmp_path / "state") / names[0]
    assert (into / f"{names[0]}.json").read_bytes() == (runs / f"{names[0]}.json").read_bytes()
    history = f"{names[0]}.history.jsonl"
    assert (into / history).read_bytes() == (runs / history).read_bytes()
    assert spool_dir(tmp_path / "state").stat().st_mode & 0o077 == 0


def test_nothing_spooled(tmp_path: Path) -> None:
    assert spooled(tmp_path) == []
