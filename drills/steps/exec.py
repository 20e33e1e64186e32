"""`exec`: run a shell command; the lab's variables are in its environment as DRILLS_LAB_*."""

from __future__ import annotations

import os
import re
import subprocess
from typing import ClassVar, Literal

from drills.durations import Duration
from drills.errors import StepError
from drills.steps.base import STEPS, StepConfig, StepContext


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
    shorthand: ClassVar[str | None] = "command"

    def describe(self) -> str:
        return f"exec {self.command}"

    def run(self, ctx: StepContext) -> str:
        env = {**os.environ, **lab_environment(ctx.variables)}
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", self.command],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise StepError(f"exec timed out after {self.timeout:g}s: {self.command}") from None
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-2:])
            raise StepError(f"exec exited {result.returncode}: {self.command}: {tail}")
        return result.stdout.strip()[-200:]
