"""The chain's own files (`.chain-head` and its temp file, `.chain.lock`) are never written
through a symlink planted in the reports directory (issue 15, item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.records import write_chained

VICTIM = "precious\n"


def _record(directory: Path) -> Path:
    path = directory / "20261123T200000Z-x.json"
    write_chained(path, {"schema_version": 1, "run_id": "20261123T200000Z-x", "history": ""})
    return path


def test_a_symlink_planted_at_the_head_temp_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text(VICTIM)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".chain-head.tmp").symlink_to(victim)
    path = _record(runs)
    assert victim.read_text() == VICTIM
    assert (runs / ".chain-head").read_text() == f"{path.name} 1\n"
    assert not (runs / ".chain-head").is_symlink()


def test_a_symlink_planted_at_the_head_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text(VICTIM)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".chain-head").symlink_to(victim)
    _record(runs)
    assert victim.read_text() == VICTIM
    assert not (runs / ".chain-head").is_symlink()


def test_a_symlink_planted_at_the_lock_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / ".chain.lock").symlink_to(tmp_path / "etc-nologin")  # would be created empty
    with pytest.raises(OSError, match="symbolic links"):
        _record(runs)
    assert not (tmp_path / "etc-nologin").exists()
    assert list(runs.glob("*.json")) == []
