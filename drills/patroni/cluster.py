"""A Patroni cluster as targets: the cluster itself (what switchover, failover and maintenance
act on) and role targets (the leader, a replica) resolved through the REST API when a step
acts on them. Used by the patroni lab and by scenarios that drill a cluster of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from drills.abilities import Ability
from drills.errors import TargetError
from drills.patroni.rest import ClusterView, PatroniRest
from drills.targets import Target

Role = Literal["leader", "replica"]


@runtime_checkable
class PatroniClustered(Protocol):
    def patroni(self) -> PatroniRest:
        """The REST APIs of the cluster's members."""
        ...


CLUSTER: Ability[PatroniClustered] = Ability(
    PatroniClustered,
    "is not a Patroni cluster",
    "use a patroni lab's `cluster` node, or a target with `patroni: {urls: [...]}`",
)


class ClusterTarget:
    """The cluster as a whole."""

    def __init__(self, name: str, rest: PatroniRest) -> None:
        self.name = name
        self.rest = rest

    def patroni(self) -> PatroniRest:
        return self.rest


def pick(view: ClusterView, role: Role) -> str:
    """The member that has `role` now: the leader, or the running replica that lags least."""
    if role == "leader":
        leader = view.leader
        if leader is None:
            raise TargetError("the cluster has no leader now")
        return leader.name
    replicas = [m for m in view.replicas if m.state in ("running", "streaming")]
    if not replicas:
        raise TargetError("the cluster has no running replica now")
    return min(replicas, key=lambda m: (m.lag if m.lag is not None else 2**62, m.name)).name


class RoleTarget:
    """`leader` or `replica`: which member that is is read from the REST API when a step acts
    on it; `member` maps the member's name to its target (what the step then acts on)."""

    def __init__(
        self, name: str, role: Role, rest: PatroniRest, member: Callable[[str], Target]
    ) -> None:
        self.name = name
        self.role = role
        self.rest = rest
        self.member = member

    def resolve(self) -> tuple[str, Target]:
        chosen = pick(self.rest.cluster(), self.role)
        return chosen, self.member(chosen)
