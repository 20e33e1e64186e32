"""`promote`: make a standby the primary."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from drills.abilities import PROMOTE, Ability
from drills.durations import Duration
from drills.steps.base import STEPS, StepConfig, StepContext


@STEPS.register("promote")
class Promote(StepConfig):
    kind: Literal["promote"]
    target: str
    timeout: Duration = 60.0
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = PROMOTE

    def describe(self) -> str:
        return f"promote {self.target}"

    def run(self, ctx: StepContext) -> str:
        ctx.target_as(self.target, PROMOTE).promote(self.timeout)
        return ""
