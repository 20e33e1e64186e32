"""`exec` with `undo:` and `locks:` (issue 18 item 3): the undo is armed and journalled before
the command runs, runs when the drill ends, and reaches `drills recover` with the references of
its secrets, never their values."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.errors import ScenarioError, StepError
from drills.journal import JournalEntry, Recovery
from drills.locks import target_keys
from drills.scenario import load_scenario
from drills.steps.base import RevertStack, StepContext
from drills.steps.exec import Exec
from drills.steps.exec_undo import ExecUndo, ExecUndone
from tests.unit.drills.steps.test_exec import HOSTILE, scenario


def context(journal: list[JournalEntry]) -> StepContext:
    return StepContext({}, {}, RevertStack(), {}, 1, lambda text: None, journal=journal.append)


def loaded(path: Path) -> list[Exec]:
    config = path.parent / "drills.yaml"
    config.write_text("version: 1\n")
    steps = load_scenario(path, config=config).scenario.steps
    return [step for step in steps if isinstance(step, Exec)]


def test_the_undo_is_armed_and_journalled_before_the_command_runs(tmp_path: Path) -> None:
    log = tmp_path / "log"
    step = Exec(kind="exec", command=f"echo cut >> {log}; exit 3", undo=f"echo undo >> {log}")
    journal: list[JournalEntry] = []
    ctx = context(journal)
    with pytest.raises(StepError, match="exec exited 3"):
        step.run(ctx)  # a command that fails may still have changed something
    assert [type(entry) for entry in journal] == [ExecUndo]
    assert log.read_text() == "cut\n"
    assert ctx.reverts.revert_all(lambda text: None) == []
    assert log.read_text() == "cut\nundo\n"


def test_a_failing_undo_is_reported_by_the_tear_down(tmp_path: Path) -> None:
    step = Exec(kind="exec", command="true", undo="echo no route >&2; exit 4")
    ctx = context([])
    step.run(ctx)
    [problem] = ctx.reverts.revert_all(lambda text: None)
    assert "could not revert undo: echo no route" in problem
    assert "exec exited 4" in problem and "no route" in problem


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DRILLS_TEST_HOSTILE", HOSTILE)
    return HOSTILE


def test_the_journal_keeps_a_secrets_reference_and_recovery_resolves_it(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    undo = f"printf %s ${{env:DRILLS_TEST_HOSTILE}} > {out}"
    [step] = loaded(scenario(tmp_path, f'  - exec: {{command: "true", undo: "{undo}"}}\n'))
    assert step.undo == f'printf %s "$DRILLS_SECRET_1" > {out}'
    journal: list[JournalEntry] = []
    step.run(context(journal))
    [entry] = journal
    written = entry.model_dump_json()
    assert secret not in written and "env:DRILLS_TEST_HOSTILE" in written
    again = ExecUndo.model_validate_json(written)  # as `drills recover` reads it
    assert again.undo(Recovery()) == f"ran the undo of an exec step: {step.undo}"
    assert out.read_text() == secret
    monkeypatch.delenv("DRILLS_TEST_HOSTILE")
    with pytest.raises(StepError, match=r"its secrets are not here: .*'DRILLS_TEST_HOSTILE'"):
        again.undo(Recovery())


def test_an_undo_the_drill_ran_is_not_run_again_by_recovery(tmp_path: Path) -> None:
    log = tmp_path / "log"
    step = Exec(kind="exec", command="true", undo=f"echo undo >> {log}")
    journal: list[JournalEntry] = []
    ctx = context(journal)
    step.run(ctx)
    assert ctx.reverts.revert_all(lambda text: None) == []
    assert [type(entry) for entry in journal] == [ExecUndo, ExecUndone]
    recovery = Recovery()
    assert [entry.undo(recovery) for entry in reversed(journal)] == [None, None]  # newest first
    assert log.read_text() == "undo\n"


def test_a_failing_undo_at_recovery_masks_its_secrets(secret: str, tmp_path: Path) -> None:
    undo = ExecUndo(
        command='echo "no rule for $DRILLS_SECRET_1" >&2; exit 1',
        timeout=5,
        secret_refs={"DRILLS_SECRET_1": "env:DRILLS_TEST_HOSTILE"},
    )
    with pytest.raises(StepError) as failed:
        undo.undo(Recovery())
    assert secret not in str(failed.value) and "no rule for ***" in str(failed.value)


def test_lock_names_lock_the_drill_and_bad_ones_are_refused(tmp_path: Path) -> None:
    good = scenario(tmp_path, "  - exec: {command: 'true', locks: [dc1-firewall, dc2/lb]}\n")
    [step] = loaded(good)
    config = tmp_path / "drills.yaml"
    keys = target_keys(load_scenario(good, config=config).scenario)
    assert {"name:dc1-firewall", "name:dc2/lb"} <= set(keys)
    assert step.locks == ["dc1-firewall", "dc2/lb"]
    bad = scenario(tmp_path, "  - exec: {command: 'true', locks: ['two words']}\n")
    with pytest.raises(ScenarioError, match=r"exec\.yaml:5: steps\[0\]\.exec\.locks\[0\]"):
        loaded(bad)


def test_an_undo_timeout_without_an_undo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="`undo_timeout` is for `undo`"):
        loaded(scenario(tmp_path, "  - exec: {command: 'true', undo_timeout: 5s}\n"))
