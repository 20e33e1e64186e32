"""The undo of an `exec` step, journalled before the step's command runs.

The drill runs it when it ends (drills.steps.exec); `drills recover` runs it after the harness
died. The journal keeps the references of the secrets it uses (`env:NAME`, `file:PATH`), never
their values: recovery resolves them again where it runs, and refuses the entry (keeping the
journal) until it can.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drills.childenv import child_environ
from drills.errors import StepError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.references import secret_value
from drills.steps.shell import run_shell


@JOURNAL.register("exec-undo")
class ExecUndo(JournalEntry):
    op: Literal["exec-undo"] = "exec-undo"
    command: str
    timeout: float
    lab_env: dict[str, str] = Field(default_factory=dict)  # DRILLS_LAB_* it refers to
    secret_refs: dict[str, str] = Field(default_factory=dict)  # DRILLS_SECRET_N -> ref
    subject: ClassVar[str] = "command"

    def run_with(self, env: dict[str, str]) -> None:
        """Run it in the drill, with the environment its step had."""
        run_shell(self.command, env, self.timeout)

    def problem(self) -> str | None:
        _, missing = self._secrets()
        if not missing:
            return None
        return (
            f"cannot run the undo of an exec step here: {'; '.join(missing)} "
            "(make it available and run drills recover again)"
        )

    def undo(self, recovery: Recovery) -> str | None:
        values, missing = self._secrets()
        if missing:
            raise StepError("; ".join(missing))
        run_shell(self.command, child_environ() | self.lab_env | values, self.timeout)
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
