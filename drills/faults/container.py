"""Container faults: stop / start, unpause, disconnect / connect a network, and the container
forms of `partition` (iptables DROP rules inside the target's network namespace).

`kill`, `pause`, `resume` and `restart` (drills/faults/process.py) act on containers too.
Each fault is journalled before it is made and pushes its revert; a `kill` is not reverted,
as with processes: a crash is what the drill measures recovery from.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from drills.abilities import Ability
from drills.containers import iptables
from drills.containers.engine import EngineSpec
from drills.containers.recovery import ContainerEntry
from drills.containers.target import CONTAINER, ContainerTarget
from drills.durations import Duration
from drills.errors import StepError
from drills.faults.process import pause_key
from drills.journal import JOURNAL, Recovery
from drills.steps.base import STEPS, Revert, StepConfig, StepContext


@JOURNAL.register("container-stop")
class ContainerStopped(ContainerEntry):
    op: Literal["container-stop"] = "container-stop"

    def undo(self, recovery: Recovery) -> str | None:
        container = self.container(recovery)
        if container is None or container.status not in ("exited", "created"):
            return None
        container.start()
        return f"started container {self.about()}"


@JOURNAL.register("disconnect")
class ContainerDisconnected(ContainerEntry):
    op: Literal["disconnect"] = "disconnect"
    network: str
    aliases: list[str] = Field(default_factory=list)

    def undo(self, recovery: Recovery) -> str | None:
        container = self.container(recovery)
        if container is None:
            return None
        attached = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        if self.network in attached:
            return None
        network = self.client(recovery).networks.get(self.network)
        network.connect(container, aliases=self.aliases or None)
        return f"reconnected container {self.about()} to {self.network}"


@JOURNAL.register("iptables")
class ContainerRules(ContainerEntry):
    """DROP rules added in a container's network namespace by a helper container."""

    op: Literal["iptables"] = "iptables"
    rules: list[list[str]]
    helper: str | None = None
    run: str | None = None

    def undo(self, recovery: Recovery) -> str | None:
        client = self.client(recovery)
        if self.run:
            iptables.remove_helpers(client, self.run)  # one may have been running
        container = self.container(recovery)
        if container is None or container.status not in ("running", "paused"):
            return None
        image = self.helper or EngineSpec.default().helper()
        iptables.remove(client, image, container.id or "", self.rules, "recover")
        return f"removed the drill's iptables rules from container {self.about()}"


PARTITION_KEY = ("iptables",)  # the revert key of every container partition starts so


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
    ctx.journal(ContainerRules(**target.pinned(), rules=rules, helper=image, run=ctx.run_id))

    def undo() -> None:
        iptables.remove(target.client, image, target.id, rules, ctx.run_id)

    description = f"rules removed from {target.name} ({label})"
    ctx.reverts.push(Revert((*PARTITION_KEY, tag), description, undo))
    iptables.apply(target.client, image, target.id, rules, ctx.run_id)
    return f"{target.name}: dropping traffic {label}"


class ContainerFault(StepConfig):
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = CONTAINER


@STEPS.register("stop")
class Stop(ContainerFault):
    """Stop a container (SIGTERM, then SIGKILL after `timeout`); reverted by starting it."""

    kind: Literal["stop"]
    timeout: Duration = Field(10.0, description="grace period before SIGKILL")
    disruptive: ClassVar[bool] = True

    def describe(self) -> str:
        return f"stop container {self.target}"

    def run(self, ctx: StepContext) -> str:
        target = ctx.target_as(self.target, CONTAINER)
        status = target.status()
        if status not in ("running", "paused"):
            raise StepError(f"{self.target} is {status}: nothing to stop")
        ctx.reverts.push(Revert(("stop", self.target), f"start {self.target}", target.start))
        ctx.journal(ContainerStopped(**target.pinned()))
        target.stop(max(0, round(self.timeout)))
        return f"container {self.target} stopped"


@STEPS.register("start")
class Start(ContainerFault):
    kind: Literal["start"]

    def describe(self) -> str:
        return f"start container {self.target}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(("stop", self.target)) is None:
            ctx.target_as(self.target, CONTAINER).start()
        return f"container {self.target} started"


@STEPS.register("unpause")
class Unpause(ContainerFault):
    kind: Literal["unpause"]

    def describe(self) -> str:
        return f"unpause container {self.target}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(pause_key(self.target)) is None:
            ctx.target_as(self.target, CONTAINER).unpause()
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
        target = ctx.target_as(self.target, CONTAINER)
        settings = target.network_settings(self.network)  # refuses a network it is not on
        aliases = [a for a in settings.get("Aliases") or [] if not target.id.startswith(a)]
        ctx.journal(ContainerDisconnected(**target.pinned(), network=self.network, aliases=aliases))

        def undo() -> None:
            target.connect(self.network, aliases)

        ctx.reverts.push(
            Revert(
                ("disconnect", self.target, self.network),
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
        if ctx.reverts.undo(("disconnect", self.target, self.network)) is None:
            ctx.target_as(self.target, CONTAINER).connect(self.network)
        return f"{self.target} connected to {self.network}"
