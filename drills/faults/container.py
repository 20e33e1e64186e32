"""Container faults: stop / start, unpause, disconnect / connect a network, and the container
forms of `partition` (iptables DROP rules inside the target's network namespace).

`kill`, `pause`, `resume` and `restart` (drills/faults/process.py) act on containers too.
Each fault is journalled before it is made and pushes its revert; a `kill` is not reverted,
as with processes: a crash is what the drill measures recovery from.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drills.containers import iptables
from drills.containers.target import ContainerTarget
from drills.durations import Duration
from drills.errors import StepError
from drills.steps.base import STEPS, Revert, StepConfig, StepContext
from drills.targets import CONTAINER


def container(ctx: StepContext, name: str) -> ContainerTarget:
    target = ctx.target(name)
    if not isinstance(target, ContainerTarget):
        raise StepError(f"{name} is not a container")
    return target


def pause(ctx: StepContext, target: ContainerTarget) -> str:
    status = target.status()
    if status != "running":
        raise StepError(f"{target.name} is {status}, not running: nothing to pause")
    ctx.reverts.push(Revert(f"pause:{target.name}", f"unpause {target.name}", target.unpause))
    ctx.journal(target.journal_entry("container-pause"))
    target.pause()
    return f"container {target.name} paused"


def partition(ctx: StepContext, target: ContainerTarget, peers: list[str], label: str) -> str:
    """Drop traffic between `target` and each peer address or CIDR, until reverted."""
    mode = target.network_mode()
    if mode == "host" or mode.startswith("container:"):
        # The rules would land in the host's (or another container's) tables.
        raise StepError(
            f"{target.name} shares the network namespace {mode!r}: partitioning it would cut "
            "more than the container; give it a network of its own"
        )
    tag = f"drills:{ctx.run_id or 'run'}:{ctx.serial()}"
    rules = [rule for peer in peers for rule in iptables.drop_rules(peer, tag)]
    image = target.engine.helper()
    ctx.journal(target.journal_entry("iptables", rules=rules, helper=image, run=ctx.run_id))

    def undo() -> None:
        iptables.remove(target.client, image, target.id, rules, ctx.run_id)

    ctx.reverts.push(Revert(f"iptables:{tag}", f"rules removed from {target.name} ({label})", undo))
    iptables.apply(target.client, image, target.id, rules, ctx.run_id)
    return f"{target.name}: dropping traffic {label}"


class ContainerFault(StepConfig):
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[str | None] = CONTAINER


@STEPS.register("stop")
class Stop(ContainerFault):
    """Stop a container (SIGTERM, then SIGKILL after `timeout`); reverted by starting it."""

    kind: Literal["stop"]
    timeout: Duration = Field(10.0, description="grace period before SIGKILL")
    disruptive: ClassVar[bool] = True

    def describe(self) -> str:
        return f"stop container {self.target}"

    def run(self, ctx: StepContext) -> str:
        target = container(ctx, self.target)
        status = target.status()
        if status not in ("running", "paused"):
            raise StepError(f"{self.target} is {status}: nothing to stop")
        ctx.reverts.push(Revert(f"stop:{self.target}", f"start {self.target}", target.start))
        ctx.journal(target.journal_entry("container-stop"))
        target.stop(max(0, round(self.timeout)))
        return f"container {self.target} stopped"


@STEPS.register("start")
class Start(ContainerFault):
    kind: Literal["start"]

    def describe(self) -> str:
        return f"start container {self.target}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(f"stop:{self.target}") is None:
            container(ctx, self.target).start()
        return f"container {self.target} started"


@STEPS.register("unpause")
class Unpause(ContainerFault):
    kind: Literal["unpause"]

    def describe(self) -> str:
        return f"unpause container {self.target}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(f"pause:{self.target}") is None:
            container(ctx, self.target).unpause()
        return f"container {self.target} unpaused"


@STEPS.register("disconnect")
class Disconnect(ContainerFault):
    """Disconnect a container from a network; reverted by connecting it with its aliases."""

    kind: Literal["disconnect"]
    network: str
    disruptive: ClassVar[bool] = True

    def describe(self) -> str:
        return f"disconnect {self.target} from network {self.network}"

    def run(self, ctx: StepContext) -> str:
        target = container(ctx, self.target)
        settings = target.network_settings(self.network)  # refuses a network it is not on
        aliases = [a for a in settings.get("Aliases") or [] if not target.id.startswith(a)]
        ctx.journal(target.journal_entry("disconnect", network=self.network, aliases=aliases))

        def undo() -> None:
            target.connect(self.network, aliases)

        ctx.reverts.push(
            Revert(
                f"disconnect:{self.target}:{self.network}",
                f"connect {self.target} to {self.network}",
                undo,
            )
        )
        target.disconnect(self.network)
        return f"{self.target} disconnected from {self.network}"


@STEPS.register("connect")
class Connect(ContainerFault):
    kind: Literal["connect"]
    network: str

    def describe(self) -> str:
        return f"connect {self.target} to network {self.network}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(f"disconnect:{self.target}:{self.network}") is None:
            container(ctx, self.target).connect(self.network)
        return f"{self.target} connected to {self.network}"
