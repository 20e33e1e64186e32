"""Network faults on the links between sites: cut, blackhole, delay, throttle, reset, heal.

Each fault is data (a toxic, or a link disabled) applied to named links through the drill's
link control (drills' proxy or a Toxiproxy); each pushes its revert, and `heal` restores links.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drills.abilities import PARTITION, Ability
from drills.containers.target import CONTAINER
from drills.durations import Duration, format_duration
from drills.errors import StepError
from drills.faults import container as container_fault
from drills.network.control import LinkControl
from drills.network.toxics import STREAMS, Stream, Toxic
from drills.steps.base import STEPS, Revert, StepConfig, StepContext

Direction = Literal["both", "upstream", "downstream"]


def _streams(direction: Direction) -> tuple[Stream, ...]:
    return STREAMS if direction == "both" else (direction,)


def _revert_key(link: str, fault: str) -> tuple[str, str, str]:
    return ("link", link, fault)


def _down(ctx: StepContext, link: str) -> None:
    control = ctx.links().control
    control.set_enabled(link, False)
    ctx.reverts.push(
        Revert(
            _revert_key(link, "down"),
            f"link {link} up",
            lambda: control.set_enabled(link, True),
        )
    )


def _poison(ctx: StepContext, link: str, toxic: Toxic) -> None:
    control: LinkControl = ctx.links().control
    control.add_toxic(link, toxic)

    def undo() -> None:
        control.remove_toxic(link, toxic.name)

    ctx.reverts.push(
        Revert(_revert_key(link, toxic.name), f"link {link} without {toxic.name}", undo)
    )


class LinkFault(StepConfig):
    shorthand: ClassVar[str | None] = "link"
    disruptive: ClassVar[bool] = True


@STEPS.register("link-down")
class LinkDown(LinkFault):
    """Refuse new connections on the link and reset the ones it carries."""

    kind: Literal["link-down"]
    link: str

    def describe(self) -> str:
        return f"link {self.link} down"

    def run(self, ctx: StepContext) -> str:
        _down(ctx, self.link)
        return ""


@STEPS.register("blackhole")
class Blackhole(LinkFault):
    """Accept and hold: connections stay open, no bytes pass, until healed."""

    kind: Literal["blackhole"]
    link: str
    direction: Direction = "both"

    def describe(self) -> str:
        return f"blackhole {self.link} ({self.direction})"

    def run(self, ctx: StepContext) -> str:
        for stream in _streams(self.direction):
            _poison(ctx, self.link, Toxic(f"blackhole-{stream}-{ctx.serial()}", "timeout", stream))
        return ""


@STEPS.register("delay")
class Delay(LinkFault):
    """Latency (and jitter) on every chunk, in each chosen direction."""

    kind: Literal["delay"]
    link: str
    latency: Duration
    jitter: Duration = 0.0
    direction: Direction = "both"
    shorthand: ClassVar[str | None] = None

    def describe(self) -> str:
        jitter = f" ± {format_duration(self.jitter)}" if self.jitter else ""
        return f"delay {self.link} by {format_duration(self.latency)}{jitter} ({self.direction})"

    def run(self, ctx: StepContext) -> str:
        attributes = {"latency": self.latency * 1000, "jitter": self.jitter * 1000}
        for stream in _streams(self.direction):
            name = f"latency-{stream}-{ctx.serial()}"
            _poison(ctx, self.link, Toxic(name, "latency", stream, attributes=attributes))
        return ""


@STEPS.register("bandwidth")
class Bandwidth(LinkFault):
    """Throttle the link to `rate` kilobytes per second."""

    kind: Literal["bandwidth"]
    link: str
    rate: float = Field(gt=0, description="KB/s")
    direction: Direction = "both"
    shorthand: ClassVar[str | None] = None

    def describe(self) -> str:
        return f"throttle {self.link} to {self.rate:g} KB/s ({self.direction})"

    def run(self, ctx: StepContext) -> str:
        for stream in _streams(self.direction):
            name = f"bandwidth-{stream}-{ctx.serial()}"
            _poison(
                ctx, self.link, Toxic(name, "bandwidth", stream, attributes={"rate": self.rate})
            )
        return ""


@STEPS.register("reset-peer")
class ResetPeer(LinkFault):
    """Reset (RST) the link's connections `after` a delay, and new ones as long as it lasts."""

    kind: Literal["reset-peer"]
    link: str
    after: Duration = 0.0

    def describe(self) -> str:
        return f"reset connections on {self.link} after {format_duration(self.after)}"

    def run(self, ctx: StepContext) -> str:
        toxic = Toxic(
            f"reset-{ctx.serial()}",
            "reset_peer",
            "downstream",
            attributes={"timeout": self.after * 1000},
        )
        _poison(ctx, self.link, toxic)
        return ""


@STEPS.register("partition")
class Partition(StepConfig):
    """Cut traffic between two sites (their links), two containers, or a container and
    addresses (`from`: IPs or CIDRs). `one_way` (sites only) holds traffic from the first site
    to the second, leaving the other direction flowing. Containers are cut with iptables DROP
    rules in the first container's network namespace, applied from a helper container."""

    kind: Literal["partition"]
    sites: list[str] | None = Field(None, min_length=2, max_length=2)
    targets: list[str] | None = Field(
        None, min_length=2, max_length=2, description="two container targets"
    )
    target: str | None = Field(None, description="a container target, cut from `from`")
    from_: list[str] | None = Field(None, alias="from", min_length=1)
    one_way: bool = False
    shorthand: ClassVar[str | None] = "sites"
    disruptive: ClassVar[bool] = True

    @field_validator("sites", "targets")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and value[0] == value[1]:
            raise ValueError("a partition is between two different ends")
        return value

    @field_validator("from_", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_form(self) -> Partition:
        forms = [self.sites is not None, self.targets is not None, self.target is not None]
        if sum(forms) != 1:
            raise ValueError(
                "give one of: sites: [A, B] (links), targets: [X, Y] (containers), "
                "or target: X with from: ADDRESSES"
            )
        if (self.target is None) != (self.from_ is None):
            raise ValueError("`target` and `from` go together: cut container X from addresses")
        if self.one_way and self.sites is None:
            raise ValueError("one_way applies to sites (links) only")
        if self.from_ is not None:
            for address in self.from_:
                try:
                    ipaddress.ip_network(address, strict=False)
                except ValueError:
                    raise ValueError(f"{address!r} is not an IP address or CIDR") from None
        return self

    @property
    def site_names(self) -> list[str]:
        return list(self.sites or [])

    @property
    def target_names(self) -> list[str]:
        return list(self.targets or ([self.target] if self.target else []))

    @property
    def required_ability(self) -> Ability[Any] | None:
        if self.sites is not None:
            return None
        return CONTAINER if self.targets is not None else PARTITION

    def describe(self) -> str:
        if self.targets is not None:
            return f"partition containers {self.targets[0]} <-> {self.targets[1]}"
        if self.target is not None:
            return f"partition {self.target} from {', '.join(self.from_ or [])}"
        assert self.sites is not None
        arrow = "->" if self.one_way else "<->"
        return f"partition {self.sites[0]} {arrow} {self.sites[1]}"

    def run(self, ctx: StepContext) -> str:
        if self.targets is not None:
            first = ctx.target_as(self.targets[0], CONTAINER)
            peer = ctx.target_as(self.targets[1], CONTAINER)
            addresses = peer.addresses()
            if not addresses:
                raise StepError(f"{peer.name} has no IP address to cut {first.name} from")
            return container_fault.partition(ctx, first, addresses, f"to and from {peer.name}")
        if self.target is not None:
            target = ctx.target_as(self.target, PARTITION)
            peers = self.from_ or []
            return container_fault.partition(ctx, target, peers, f"to and from {', '.join(peers)}")
        assert self.sites is not None
        network = ctx.links()
        source, dest = self.sites
        links = network.between(source, dest)
        if not links:
            raise StepError(f"no link between {source} and {dest}")
        for link in links:
            if not self.one_way:
                _down(ctx, link)
                continue
            # Data from `source` travels upstream if `source` is the side that connects.
            stream: Stream = "upstream" if network.links[link].client == source else "downstream"
            _poison(ctx, link, Toxic(f"partition-{stream}-{ctx.serial()}", "timeout", stream))
        return f"links cut: {', '.join(links)}"


@STEPS.register("isolate")
class Isolate(StepConfig):
    """Cut a site from clients and from its peers: every link that touches it goes down."""

    kind: Literal["isolate"]
    site: str
    shorthand: ClassVar[str | None] = "site"
    disruptive: ClassVar[bool] = True

    @property
    def site_names(self) -> list[str]:
        return [self.site]

    def describe(self) -> str:
        return f"isolate site {self.site}"

    def run(self, ctx: StepContext) -> str:
        links = ctx.links().touching(self.site)
        if not links:
            raise StepError(f"no link touches site {self.site}")
        for link in links:
            _down(ctx, link)
        return f"links cut: {', '.join(links)}"


@STEPS.register("heal")
class Heal(StepConfig):
    """Restore a link (or `all`): enabled, no toxics; what was held is released. `all` also
    removes the drill's partitions of containers and hosts."""

    kind: Literal["heal"]
    link: str = "all"
    shorthand: ClassVar[str | None] = "link"

    def describe(self) -> str:
        return "heal every link" if self.link == "all" else f"heal link {self.link}"

    def run(self, ctx: StepContext) -> str:
        healed = ""
        if self.link == "all":
            partitions = ctx.reverts.undo_all(*container_fault.PARTITION_KEY)
            healed = f"{len(partitions)} partitions removed" if partitions else ""
            if ctx.network is None:
                if not partitions:
                    raise StepError("nothing to heal: no links and no partitions")
                return healed
        network = ctx.links()
        links = list(network.links) if self.link == "all" else [self.link]
        for link in links:
            network.control.heal(link)
            ctx.reverts.drop("link", link)
        return healed
