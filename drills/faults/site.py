"""Whole-site faults for labs that declare sites (dual-active): lose a site, isolate it, and
bring its database back as a standby of the survivor (failback)."""

from __future__ import annotations

import signal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, model_validator

from drills.abilities import REJOIN, SIGNAL, Ability
from drills.errors import StepError
from drills.faults.network import Isolate
from drills.steps.base import STEPS, StepConfig, StepContext
from drills.targets import signal_name


@STEPS.register("site-down")
class SiteDown(StepConfig):
    """Every node of a site at once (its service and its database), like a power loss:
    SIGKILL by default. Not reverted: recovering is what the drill measures."""

    kind: Literal["site-down"]
    site: str
    signal: Annotated[str, AfterValidator(signal_name)] = "SIGKILL"
    shorthand: ClassVar[str | None] = "site"
    disruptive: ClassVar[bool] = True
    site_needs: ClassVar[Ability[Any] | None] = SIGNAL  # of every node of the site

    @property
    def site_names(self) -> list[str]:
        return [self.site]

    def describe(self) -> str:
        return f"site {self.site} down ({self.signal} to every node)"

    def run(self, ctx: StepContext) -> str:
        nodes = ctx.sites.get(self.site)
        if not nodes:
            known = ", ".join(sorted(ctx.sites)) or "none: the lab declares no sites"
            raise StepError(f"no site {self.site!r} with nodes (sites: {known})")
        signalled = []
        for node in nodes:
            target = SIGNAL.of(node)
            if target is None:  # validation refuses such a site; a lab may still lie
                raise StepError(f"{node.name} {SIGNAL.lacks}")
            signalled.append(target)
        for target in signalled:
            target.send(signal.Signals[self.signal])
        return f"{self.signal} sent to {', '.join(node.name for node in nodes)}"


@STEPS.register("site-isolate")
class SiteIsolate(Isolate):
    """Cut one site from its clients and from its peer: every link that touches it."""

    kind: Literal["site-isolate"]  # type: ignore[assignment]

    def describe(self) -> str:
        return f"isolate site {self.site} from clients and peers"


@STEPS.register("rejoin")
class Rejoin(StepConfig):
    """Bring a failed primary's database back as a streaming standby of the new primary
    (fresh base backup), the first half of a failback."""

    kind: Literal["rejoin"]
    target: str
    primary: str
    needs: ClassVar[Ability[Any] | None] = REJOIN
    disruptive: ClassVar[bool] = True  # its disruption is measured apart from the first fault

    @model_validator(mode="after")
    def _two_servers(self) -> Rejoin:
        if self.target == self.primary:
            raise ValueError("a server cannot rejoin as a standby of itself")
        return self

    @property
    def target_names(self) -> list[str]:
        return [self.target, self.primary]

    def describe(self) -> str:
        return f"rejoin {self.target} as a standby of {self.primary}"

    def run(self, ctx: StepContext) -> str:
        primary = ctx.target(self.primary)
        return ctx.target_as(self.target, REJOIN).rejoin(primary)
