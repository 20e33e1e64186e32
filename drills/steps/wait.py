"""`wait DURATION` and `wait-until` a probe has recovered."""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from drills.durations import Duration, format_duration
from drills.steps.base import STEPS, StepConfig, StepContext


@STEPS.register("wait")
class Wait(StepConfig):
    kind: Literal["wait"]
    duration: Duration
    shorthand: ClassVar[str | None] = "duration"

    def describe(self) -> str:
        return f"wait {format_duration(self.duration)}"

    def run(self, ctx: StepContext) -> str:
        time.sleep(self.duration)
        return ""


@STEPS.register("wait-until")
class WaitUntil(StepConfig):
    """Wait until `probe` has `stable` consecutive ok samples due after this step began."""

    kind: Literal["wait-until"]
    probe: str
    condition: Literal["recovered"] = "recovered"
    timeout: Duration = Field(60.0, description="give up waiting (the drill goes on)")
    shorthand: ClassVar[str | None] = "probe"

    def describe(self) -> str:
        return f"wait until {self.probe} has recovered (at most {format_duration(self.timeout)})"

    def run(self, ctx: StepContext) -> str:
        runner = ctx.probes[self.probe]
        since = time.monotonic_ns()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if runner.up_streak_since(since) >= ctx.stable:
                waited = (time.monotonic_ns() - since) / 1e9
                return f"recovered after {waited:.3f}s"
            time.sleep(min(0.01, runner.interval_ns / 1e9))
        # Not an error: the checker judges recovery against the objective.
        return f"not recovered within {format_duration(self.timeout)}"
