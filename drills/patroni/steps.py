"""Steps on a Patroni cluster, through its REST API: `switchover` (planned, optional candidate),
`failover` (manual, to a named candidate), and `pause-cluster` / `resume-cluster` (Patroni's
maintenance mode, in which it neither promotes nor demotes anything).

A switchover or a failover returns once Patroni reports the new leader running, and says which
member that is. A pause is resumed at the matching `resume-cluster`, or at the end of the drill
on every exit path, or by `drills recover` after a harness that died."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import Field

from drills.abilities import Ability
from drills.durations import Duration, format_duration
from drills.errors import StepError, TargetError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.patroni.cluster import CLUSTER
from drills.patroni.rest import ClusterView, Member, PatroniRest
from drills.patroni.spec import fill_password
from drills.steps.base import STEPS, Revert, StepConfig, StepContext

POLL_S = 0.1


def describe_view(view: ClusterView) -> str:
    members = ", ".join(f"{m.name} {m.role} {m.state}" for m in view.members)
    return members + (" (maintenance mode)" if view.paused else "")


def wait_for_leader(
    rest: PatroniRest, old: str | None, wanted: str | None, timeout_s: float, started: float
) -> tuple[Member, float]:
    """Poll the cluster until a leader other than `old` (and `wanted`, if given) is running;
    return it and the seconds since `started` (the request; Patroni may answer it only once
    the new leader runs)."""
    seen = "no answer yet"
    while True:
        try:
            view = rest.cluster()
        except TargetError as exc:
            seen = str(exc)
        else:
            leader = view.leader
            if (
                leader is not None
                and leader.name != old
                and wanted in (None, leader.name)
                and leader.state == "running"
            ):
                return leader, time.monotonic() - started
            seen = describe_view(view)
        if time.monotonic() - started > timeout_s:
            raise TargetError(
                f"no new leader running within {format_duration(timeout_s)}; last seen: {seen}"
            )
        time.sleep(POLL_S)


def check_candidate(view: ClusterView, candidate: str) -> None:
    member = view.member(candidate)
    if member is None:
        known = ", ".join(m.name for m in view.members) or "none"
        raise StepError(f"no member {candidate!r} in the cluster (members: {known})")
    if member.is_leader:
        raise StepError(f"{candidate} is the leader already")


def new_leader(old: str | None, leader: Member, waited: float) -> str:
    return f"leader {old or 'none'} -> {leader.name} (running {waited:.2f}s after the request)"


@STEPS.register("switchover")
class Switchover(StepConfig):
    """A planned change of leader: the leader hands over to a replica (Patroni's choice, or
    `candidate`)."""

    kind: Literal["switchover"]
    target: str = Field(description="the cluster")
    candidate: str | None = Field(None, description="the member to become leader")
    timeout: Duration = Field(60.0, description="for the new leader to be running")
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = CLUSTER

    def describe(self) -> str:
        to = f" to {self.candidate}" if self.candidate else ""
        return f"switchover {self.target}{to}"

    def run(self, ctx: StepContext) -> str:
        rest = ctx.target_as(self.target, CLUSTER).patroni()
        view = rest.cluster()
        if view.leader is None:
            raise StepError(f"{self.target} has no leader to switch over from: use failover")
        if self.candidate is not None:
            check_candidate(view, self.candidate)
        old = view.leader.name
        started = time.monotonic()
        rest.switchover(old, self.candidate)
        leader, waited = wait_for_leader(rest, old, self.candidate, self.timeout, started)
        return new_leader(old, leader, waited)


@STEPS.register("failover")
class Failover(StepConfig):
    """A manual failover to `candidate`, with or without a leader."""

    kind: Literal["failover"]
    target: str = Field(description="the cluster")
    candidate: str = Field(description="the member to become leader")
    timeout: Duration = Field(60.0, description="for the new leader to be running")
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = CLUSTER

    def describe(self) -> str:
        return f"failover {self.target} to {self.candidate}"

    def run(self, ctx: StepContext) -> str:
        rest = ctx.target_as(self.target, CLUSTER).patroni()
        view = rest.cluster()
        check_candidate(view, self.candidate)
        old = view.leader.name if view.leader else None
        started = time.monotonic()
        rest.failover(self.candidate)
        leader, waited = wait_for_leader(rest, old, self.candidate, self.timeout, started)
        return new_leader(old, leader, waited)


def maintenance_key(target: str) -> tuple[str, str]:
    return ("maintenance", target)


def wait_for_pause(rest: PatroniRest, paused: bool, timeout_s: float) -> float:
    """Poll until the cluster reports maintenance mode `paused`, and every member that answers
    does too (GET /patroni); return the seconds waited. The cluster's answer comes from the
    DCS at once; a member acts on it only at its next HA loop, and until then it may still
    demote a primary it did not expect (a drill's manual promotion, say)."""
    started = time.monotonic()
    while True:
        try:
            if rest.cluster().paused == paused and all(
                seen in (paused, None) for seen in rest.members_paused()
            ):
                return time.monotonic() - started
        except TargetError:
            pass
        if time.monotonic() - started > timeout_s:
            state = "on" if paused else "off"
            raise TargetError(f"maintenance mode not {state} after {format_duration(timeout_s)}")
        time.sleep(POLL_S)


@JOURNAL.register("patroni-pause")
class ClusterPaused(JournalEntry):
    """A cluster put in maintenance mode; recovered by taking it out, through the REST API."""

    op: Literal["patroni-pause"] = "patroni-pause"
    target: str
    urls: list[str]
    username: str | None = None
    password_source: str | None = None  # the scenario's `${env:NAME}`, never the password

    def undo(self, recovery: Recovery) -> str | None:
        auth = None
        if self.username is not None and self.password_source is not None:
            auth = (self.username, fill_password(self.password_source))
        PatroniRest(self.urls, auth=auth).set_paused(False)
        return f"took {self.target} out of maintenance mode"


def journal_entry(target: str, rest: PatroniRest) -> ClusterPaused:
    return ClusterPaused(
        target=target,
        urls=rest.urls,
        username=rest.auth[0] if rest.auth else None,
        password_source=rest.password_source,
    )


@STEPS.register("pause-cluster")
class PauseCluster(StepConfig):
    """Patroni's maintenance mode: no automatic failover or demotion until resumed."""

    kind: Literal["pause-cluster"]
    target: str = Field(description="the cluster")
    timeout: Duration = Field(30.0, description="for the cluster to report maintenance mode")
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = CLUSTER

    def describe(self) -> str:
        return f"pause {self.target} (maintenance mode on)"

    def run(self, ctx: StepContext) -> str:
        rest = ctx.target_as(self.target, CLUSTER).patroni()

        def resume() -> None:
            rest.set_paused(False)

        revert = Revert(maintenance_key(self.target), f"resume {self.target}", resume)
        ctx.reverts.push(revert)
        ctx.journal(journal_entry(self.target, rest))
        rest.set_paused(True)
        waited = wait_for_pause(rest, True, self.timeout)
        return f"maintenance mode on after {waited:.2f}s"


@STEPS.register("resume-cluster")
class ResumeCluster(StepConfig):
    kind: Literal["resume-cluster"]
    target: str = Field(description="the cluster")
    timeout: Duration = Field(30.0, description="for the cluster to leave maintenance mode")
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = CLUSTER

    def describe(self) -> str:
        return f"resume {self.target} (maintenance mode off)"

    def run(self, ctx: StepContext) -> str:
        rest = ctx.target_as(self.target, CLUSTER).patroni()
        if ctx.reverts.undo(maintenance_key(self.target)) is None:
            rest.set_paused(False)
        waited = wait_for_pause(rest, False, self.timeout)
        return f"maintenance mode off after {waited:.2f}s"
