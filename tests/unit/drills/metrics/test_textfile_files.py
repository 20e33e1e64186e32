"""The textfile collector's file: its temp file is new and its mode set on the descriptor, and a
symlink planted at its name is replaced, not written through (issue 15, item 7)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from drills.metrics import write_textfile
from tests.unit.drills.metrics.test_metrics import NOW, synthetic_record, typed


def test_the_textfile_is_never_written_through_a_symlink_nor_chmod_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def by_name(*args: object, **kwargs: object) -> None:
        raise AssertionError("chmod by name")

    monkeypatch.setattr(os, "chmod", by_name)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "drills.prom"
    path.symlink_to(victim)
    umask = os.umask(0o022)
    try:
        write_textfile(typed(synthetic_record("db-failover", "pass", NOW)), path)
    finally:
        os.umask(umask)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and path.read_text().startswith("# HELP")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by node_exporter
