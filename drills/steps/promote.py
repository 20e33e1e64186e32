"""`promote`: make a standby the primary."""

from __future__ import annotations

from typing import ClassVar, Literal

from drills.durations import Duration
from drills.errors import StepError
from drills.steps.base import STEPS, StepConfig, StepContext
from drills.targets import PROMOTE, Promotable


@STEPS.register("promote")
class Promote(StepConfig):
    kind: Literal["promote"]
    target: str
    timeout: Duration = 60.0
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[str | None] = PROMOTE

    def describe(self) -> str:
        return f"promote {self.target}"

    def run(self, ctx: StepContext) -> str:
        target = ctx.target(self.target)
        if not isinstance(target, Promotable):
            raise StepError(f"{self.target} cannot be promoted")
        target.promote(self.timeout)
        return ""
