"""The undo of an `exec` step, journalled before the step's command runs.

The drill runs it when it ends (drills.steps.exec); `drills recover` runs it after the harness
died, unless the drill ran it already (an `exec-undone` entry says so). The journal keeps the
references of the secrets it uses (`env:NAME`, `file:PATH`), never their values: recovery
resolves them again where it runs, and fails the entry (keeping the journal) until it can.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

from pydantic import Field

from drills.childenv import child_environ
from drills.errors import StepError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.references import secret_value
from drills.secrets import MASK, MIN_LENGTH
from drills.steps.shell import run_shell

DONE = "exec-undone"  # Recovery.shared key: the serials of undos the drill itself ran


@JOURNAL.register("exec-undo")
class ExecUndo(JournalEntry):
    op: Literal["exec-undo"] = "exec-undo"
    serial: int = 0  # unique within the run; an `exec-undone` entry with it says it ran
    command: str
    timeout: float
    lab_env: dict[str, str] = Field(default_factory=dict)  # DRILLS_LAB_* as the step had them
    secret_refs: dict[str, str] = Field(default_factory=dict)  # DRILLS_SECRET_N -> ref
    subject: ClassVar[str] = "command"

    def run_with(self, env: dict[str, str]) -> None:
        """Run it in the drill, with the environment its step had."""
        run_shell(self.command, env, self.timeout)

    def undo(self, recovery: Recovery) -> str | None:
        if self.serial in recovery.shared(DONE, set[int]):
            return None  # the drill ran it; once is what the scenario asked for
        values, missing = self._secrets()
        if missing:  # the journal is kept: run drills recover again once they are here
            raise StepError(f"its secrets are not here: {'; '.join(missing)}")
        try:
            run_shell(self.command, child_environ() | self.lab_env | values, self.timeout)
        except StepError as exc:  # its output may show a secret: nothing masks it here else
            raise StepError(_masked(str(exc), values.values())) from None
        return f"ran the undo of an exec step: {self.command}"

    def _secrets(self) -> tuple[dict[str, str], list[str]]:
        values: dict[str, str] = {}
        missing: list[str] = []
        for name, ref in self.secret_refs.items():
            value, problem = secret_value(ref)
            if problem is None:
                values[name] = value
            else:
                missing.append(problem)
        return values, missing


@JOURNAL.register(DONE)
class ExecUndone(JournalEntry):
    """The drill ran the undo journalled with `serial`: recovery must not run it again."""

    op: Literal["exec-undone"] = "exec-undone"
    serial: int
    subject: ClassVar[str] = "serial"

    def undo(self, recovery: Recovery) -> str | None:
        # Newer than its undo, so read first: the undo then finds its serial here.
        recovery.shared(DONE, set[int]).add(self.serial)
        return None


def _masked(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_LENGTH:
            text = text.replace(secret, MASK)
    return text
