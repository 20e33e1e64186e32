"""`exec`: run a shell command. Its environment is the harness's without drills' own secrets
(drills.childenv), with the lab's variables as DRILLS_LAB_* and the secrets its command refers
to as DRILLS_SECRET_N (never in its text). It runs in a process group of its own, and a
timeout kills the whole group, not just the shell.

An `undo` command is journalled before the command runs and run when the drill ends, however
it ends, or by `drills recover` after the harness died (drills.steps.exec_undo)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator

from drills.childenv import child_environ
from drills.durations import Duration
from drills.steps.base import STEPS, Revert, StepConfig, StepContext
from drills.steps.exec_undo import ExecUndo, ExecUndone
from drills.steps.shell import run_shell

LOCK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$"


def lab_environment(variables: dict[str, str]) -> dict[str, str]:
    return {
        "DRILLS_LAB_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper(): value
        for name, value in variables.items()
    }


@STEPS.register("exec")
class Exec(StepConfig):
    kind: Literal["exec"]
    command: str
    timeout: Duration = 60.0
    undo: str | None = Field(
        None,
        description="shell command that undoes `command`: journalled before it runs, run when "
        "the drill ends however it ends, or by `drills recover`",
    )
    undo_timeout: Duration = 60.0
    locks: list[Annotated[str, Field(pattern=LOCK_NAME)]] = Field(
        default_factory=list,
        description="names of what the commands touch: a drill is refused while another holds "
        "one of them",
    )
    shorthand: ClassVar[str | None] = "command"
    _secret_env: dict[str, str] = PrivateAttr(default_factory=dict)
    _undo_refs: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def commands(self) -> str:
        """Its command and its undo, for what they refer to."""
        return f"{self.command}\n{self.undo or ''}"

    @model_validator(mode="after")
    def _undo_timeout_needs_undo(self) -> Exec:
        if self.undo is None and "undo_timeout" in self.model_fields_set:
            raise ValueError("`undo_timeout` is for `undo`, which this step does not have")
        return self

    def give_secrets(self, env: dict[str, str], undo_refs: dict[str, str] | None = None) -> None:
        """The secret variables the commands refer to (`"$DRILLS_SECRET_1"`), with values; and
        the references those of `undo` stand for, which its journal entry keeps instead."""
        self._secret_env = dict(env)
        self._undo_refs = dict(undo_refs or {})

    def describe(self) -> str:
        return f"exec {self.command}"

    def run(self, ctx: StepContext) -> str:
        env = child_environ() | lab_environment(ctx.variables) | self._secret_env
        if self.undo is not None:
            self._arm_undo(ctx, env)
        return run_shell(self.command, env, self.timeout)

    def _arm_undo(self, ctx: StepContext, env: dict[str, str]) -> None:
        """Undo first, journal second, act last: whatever interrupts it, the command never
        runs without its undo in place."""
        assert self.undo is not None
        serial = ctx.serial()
        undo = ExecUndo(
            serial=serial,
            command=self.undo,
            timeout=self.undo_timeout,
            lab_env=lab_environment(ctx.variables),
            secret_refs=self._undo_refs,
        )

        def run() -> None:
            undo.run_with(env)
            ctx.journal(ExecUndone(serial=serial))  # not again by `drills recover`

        ctx.reverts.push(Revert(("exec", str(serial)), f"undo: {self.undo}", run))
        ctx.journal(undo)
