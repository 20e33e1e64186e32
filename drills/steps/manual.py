"""`manual`: a person does something (or confirms it is done) and acknowledges it."""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from drills.durations import Duration, format_duration
from drills.errors import StepError
from drills.records.build import utc_iso
from drills.steps.base import STEPS, StepConfig, StepContext


@STEPS.register("manual")
class Manual(StepConfig):
    kind: Literal["manual"]
    instruction: str = Field(min_length=1, description="what the person is to do")
    role: str = Field("", description="who is expected to do it, e.g. dba, support, manager")
    timeout: Duration | None = Field(
        None, description="how long to wait (default: as long as it takes)"
    )
    on_timeout: Literal["fail", "continue"] = Field(
        "fail", description="unacknowledged in time: fail the drill, or note it and go on"
    )
    response: bool = Field(
        False, description="its acknowledgement is the response an incident level judges"
    )
    shorthand: ClassVar[str | None] = "instruction"

    def describe(self) -> str:
        return f"manual ({self.role or 'anyone'}): {self.instruction}"

    def run(self, ctx: StepContext) -> str:
        if ctx.operator is None:
            raise StepError("no one can acknowledge a manual step in this run")
        started = time.monotonic_ns()
        ack = ctx.operator.wait(ctx.serial(), self.instruction, self.role, self.timeout)
        facts: dict[str, object] = {"instruction": self.instruction, "role": self.role}
        facts |= {"response": True} if self.response else {}
        if ack is None:
            assert self.timeout is not None
            waited = f"not acknowledged within {format_duration(self.timeout)}"
            ctx.facts["manual"] = facts | {"acknowledged": False, "operator_time_s": None}
            if self.on_timeout == "fail":
                raise StepError(waited)
            return waited
        operator_time_s = (ack.at_ns - started) / 1e9
        wall_ns = time.time_ns() - (time.monotonic_ns() - ack.at_ns)
        ctx.facts["manual"] = facts | {
            "acknowledged": True,
            "by": ack.by,
            "via": ack.via,
            "note": ack.note,
            "acknowledged_at": utc_iso(wall_ns),
            "operator_time_s": round(operator_time_s, 6),
        }
        note = f": {ack.note}" if ack.note else ""
        return f"acknowledged by {ack.by} ({ack.via}) after {operator_time_s:.3f}s{note}"
