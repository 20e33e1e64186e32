"""Container faults: stop / start, unpause, disconnect / connect a network, and the container
forms of `partition` (iptables DROP rules inside the target's network namespace).

`kill`, `pause`, `resume` and `restart` (drills/faults/process.py) act on containers too.
Each fault is journalled before it is made and pushes its revert; a `kill` is not reverted,
as with processes: a crash is what the drill measures recovery from.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from drills.abilities import STOP, Ability, Injection, Partitionable
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


def partitioning(target: ContainerTarget, peers: list[str], tag: str, run_id: str) -> Injection:
    """Drop rules between `target` and each peer address or CIDR, ready to be applied."""
    mode = target.network_mode()
    if mode == "host" or mode.startswith("container:"):
        # The rules would land in the host's (or another container's) tables.
        raise StepError(
            f"{target.name} shares the network namespace {mode!r}: partitioning it would cut "
            "more than the container; give it a network of its own"
        )
    rules = [rule for peer in peers for rule in iptables.drop_rules(peer, tag)]
    image = target.engine.helper()
    entry = ContainerRules(**target.pinned(), rules=rules, helper=image, run=run_id)

    def make() -> str:
        iptables.apply(target.client, image, target.id, rules, run_id)
        return f"{target.name}: dropping traffic"

    def undo() -> None:
        iptables.remove(target.client, image, target.id, rules, run_id)

    return Injection(entry, make, undo, f"rules removed from {target.name}")


def partition(ctx: StepContext, target: Partitionable, peers: list[str], label: str) -> str:
    """Drop traffic between `target` and each peer address or CIDR, until reverted."""
    tag = f"drills:{ctx.run_id or 'run'}:{ctx.serial()}"
    cut = target.partitioning(peers, tag, ctx.run_id)
    ctx.journal(cut.entry)
    ctx.reverts.push(Revert((*PARTITION_KEY, tag), f"{cut.undoing} ({label})", cut.undo))
    return f"{cut.make()} {label}"


class ContainerFault(StepConfig):
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = CONTAINER


@STEPS.register("stop")
class Stop(StepConfig):
    """Stop a container (SIGTERM, then SIGKILL after `timeout`), or a host target's process
    (its stop signal, then SIGKILL); reverted by starting it."""

    kind: Literal["stop"]
    target: str
    timeout: Duration = Field(10.0, description="grace period before SIGKILL")
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = STOP

    def describe(self) -> str:
        return f"stop {self.target}"

    def run(self, ctx: StepContext) -> str:
        stop = ctx.target_as(self.target, STOP).stopping(self.target, self.timeout)
        ctx.reverts.push(Revert(("stop", self.target), stop.undoing, stop.undo))
        ctx.journal(stop.entry)
        return stop.make()


@STEPS.register("start")
class Start(StepConfig):
    kind: Literal["start"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = STOP

    def describe(self) -> str:
        return f"start {self.target}"

    def run(self, ctx: StepContext) -> str:
        if ctx.reverts.undo(("stop", self.target)) is None:
            ctx.target_as(self.target, STOP).start()
        return f"{self.target} started"


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
