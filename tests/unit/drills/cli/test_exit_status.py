"""Exit status 1 means an objective was missed, nothing else: a bug in drills, in any command,
exits 2 with a line naming it (issue 15, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills import cli, runner
from drills.errors import EXIT_ERROR, EXIT_INTERRUPTED, exit_code


def test_an_internal_error_in_a_drill_exits_2_not_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bug(*args: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(runner, "run_drill", bug)
    assert cli.main(["run", str(tmp_path / "x.yaml"), "--no-live"]) == 2
    assert "drills: internal error: KeyError('a bug')" in capsys.readouterr().err


def test_an_os_error_escaping_a_command_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "run_drill", full)
    assert cli.main(["run", str(tmp_path / "x.yaml")]) == 2


def test_exit_codes_for_what_ends_a_command() -> None:
    assert exit_code(RuntimeError("bug")) == EXIT_ERROR
    assert exit_code(KeyboardInterrupt()) == EXIT_INTERRUPTED
