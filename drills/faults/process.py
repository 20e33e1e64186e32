"""Process faults: kill (SIGKILL by default), pause / resume (SIGSTOP / SIGCONT), restart.

They act through the target's abilities, so a container target takes the same steps through its
engine: `docker kill --signal`, `docker pause` (the cgroup freezer) and `unpause`, `docker
restart`."""

from __future__ import annotations

import signal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator

from drills.abilities import RESTART, SIGNAL, Ability
from drills.steps.base import STEPS, Revert, StepConfig, StepContext
from drills.targets import signal_name


def pause_key(target: str) -> tuple[str, str]:
    return ("pause", target)


@STEPS.register("kill")
class Kill(StepConfig):
    kind: Literal["kill"]
    target: str
    signal: Annotated[str, AfterValidator(signal_name)] = "SIGKILL"
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = SIGNAL

    def describe(self) -> str:
        return f"kill {self.target} ({self.signal})"

    def run(self, ctx: StepContext) -> str:
        return ctx.target_as(self.target, SIGNAL).send(signal.Signals[self.signal])


@STEPS.register("pause")
class Pause(StepConfig):
    kind: Literal["pause"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = SIGNAL

    def describe(self) -> str:
        return f"pause {self.target}"

    def run(self, ctx: StepContext) -> str:
        pause = ctx.target_as(self.target, SIGNAL).pausing(self.target)
        # Undo first, journal second, pause last: whatever is interrupted, nothing paused is
        # left without its undo.
        ctx.reverts.push(Revert(pause_key(self.target), pause.undoing, pause.undo))
        ctx.journal(pause.entry)
        return pause.make()


@STEPS.register("resume")
class Resume(StepConfig):
    kind: Literal["resume"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = SIGNAL

    def describe(self) -> str:
        return f"resume {self.target}"

    def run(self, ctx: StepContext) -> str:
        revert = ctx.reverts.undo(pause_key(self.target))
        if revert is not None:
            return revert.description
        return ctx.target_as(self.target, SIGNAL).resume()


@STEPS.register("restart")
class Restart(StepConfig):
    kind: Literal["restart"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = RESTART

    def describe(self) -> str:
        return f"restart {self.target}"

    def run(self, ctx: StepContext) -> str:
        target = ctx.target_as(self.target, RESTART)
        # A restart ends a pause; an engine refuses to restart a paused container.
        ctx.reverts.undo(pause_key(self.target))
        target.restart()
        return ""
