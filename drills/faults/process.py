"""Process faults: kill (SIGKILL by default), pause / resume (SIGSTOP / SIGCONT), restart.

On a container target the same steps go through its engine: `docker kill --signal`, `docker
pause` (the cgroup freezer) and `unpause`, `docker restart`."""

from __future__ import annotations

import signal
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator

from drills.containers.target import ContainerTarget
from drills.errors import StepError
from drills.faults import container as container_fault
from drills.proctree import signal_pids, start_time
from drills.steps.base import STEPS, Revert, StepConfig, StepContext
from drills.targets import RESTART, SIGNAL, Restartable, Signalable, signal_name


def _signalable(ctx: StepContext, name: str) -> Signalable:
    target = ctx.target(name)
    if not isinstance(target, Signalable):
        raise StepError(f"{name} cannot be signalled")
    return target


@STEPS.register("kill")
class Kill(StepConfig):
    kind: Literal["kill"]
    target: str
    signal: Annotated[str, AfterValidator(signal_name)] = "SIGKILL"
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[str | None] = SIGNAL

    def describe(self) -> str:
        return f"kill {self.target} ({self.signal})"

    def run(self, ctx: StepContext) -> str:
        target = ctx.target(self.target)
        if isinstance(target, ContainerTarget):
            target.kill(self.signal)
            return f"{self.signal} sent to container {self.target}"
        pids = _signalable(ctx, self.target).signal(signal.Signals[self.signal])
        return f"{self.signal} sent to {len(pids)} processes"


@STEPS.register("pause")
class Pause(StepConfig):
    kind: Literal["pause"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[str | None] = SIGNAL

    def describe(self) -> str:
        return f"pause {self.target}"

    def run(self, ctx: StepContext) -> str:
        if isinstance(ctx.target(self.target), ContainerTarget):
            return container_fault.pause(ctx, container_fault.container(ctx, self.target))
        target = _signalable(ctx, self.target)
        stopped: list[int] = []
        # The revert goes on the stack first and sees the list grow, so that an interrupt or
        # an error half-way through still resumes what was stopped: children first.
        ctx.reverts.push(
            Revert(
                key=f"pause:{self.target}",
                description=f"resume {self.target}",
                action=lambda: signal_pids(list(reversed(stopped)), signal.SIGCONT),
            )
        )
        root = target.pid()
        ctx.journal({"op": "pause", "target": self.target, "pid": root, "start": start_time(root)})
        target.signal(signal.SIGSTOP, stopped)
        return f"SIGSTOP sent to {len(stopped)} processes"


@STEPS.register("resume")
class Resume(StepConfig):
    kind: Literal["resume"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[str | None] = SIGNAL

    def describe(self) -> str:
        return f"resume {self.target}"

    def run(self, ctx: StepContext) -> str:
        revert = ctx.reverts.undo(f"pause:{self.target}")
        if revert is not None:
            return revert.description
        target = ctx.target(self.target)
        if isinstance(target, ContainerTarget):
            target.unpause()
            return f"container {self.target} unpaused"
        pids = _signalable(ctx, self.target).signal(signal.SIGCONT)
        return f"SIGCONT sent to {len(pids)} processes"


@STEPS.register("restart")
class Restart(StepConfig):
    kind: Literal["restart"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[str | None] = RESTART

    def describe(self) -> str:
        return f"restart {self.target}"

    def run(self, ctx: StepContext) -> str:
        target = ctx.target(self.target)
        if not isinstance(target, Restartable):
            raise StepError(f"{self.target} cannot be restarted")
        if isinstance(target, ContainerTarget):
            ctx.reverts.undo(f"pause:{self.target}")  # the engine refuses to restart it paused
        target.restart()
        ctx.reverts.pop(f"pause:{self.target}")  # a restart also ends a pause
        return ""
