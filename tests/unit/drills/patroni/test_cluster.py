"""Role targets: the leader or a replica, read from the cluster when a step acts on them."""

from __future__ import annotations

from typing import Any, cast

import pytest

from drills.errors import TargetError
from drills.patroni.cluster import RoleTarget, pick
from drills.patroni.rest import PatroniRest, parse_cluster
from drills.steps.base import RevertStack, StepContext

CLUSTER = {
    "members": [
        {"name": "a1", "role": "leader", "state": "running", "api_url": "http://a1", "timeline": 2},
        {"name": "b1", "role": "replica", "state": "streaming", "api_url": "x", "lag": 40},
        {"name": "b2", "role": "sync_standby", "state": "streaming", "api_url": "x", "lag": 0},
        {"name": "b3", "role": "replica", "state": "stopped", "api_url": "x", "lag": 0},
    ]
}


class FakeRest:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def cluster(self) -> Any:
        return parse_cluster(self.raw, "fake")


class Node:
    def __init__(self, name: str) -> None:
        self.name = name


def test_pick_the_leader_and_the_running_replica_that_lags_least() -> None:
    view = parse_cluster(CLUSTER)
    assert pick(view, "leader") == "a1"
    assert pick(view, "replica") == "b2"
    with pytest.raises(TargetError, match="no leader"):
        pick(parse_cluster({"members": CLUSTER["members"][1:]}), "leader")


def test_a_step_resolves_a_role_target_when_it_acts_and_says_to_what() -> None:
    rest = FakeRest(dict(CLUSTER))
    nodes = {n: Node(n) for n in ("a1", "b1", "b2")}
    leader = RoleTarget("leader", "leader", cast(PatroniRest, rest), nodes.__getitem__)
    ctx = StepContext({"leader": leader}, {}, RevertStack(), {}, 3, lambda text: None)
    assert ctx.target("leader") is nodes["a1"]
    assert ctx.resolutions() == "leader = a1"
    # A failover later: the same role names the new leader.
    rest.raw = {"members": [{**m, "role": "leader"} if m["name"] == "b1" else
                            {**m, "role": "replica"} for m in CLUSTER["members"]]}
    ctx.resolved.clear()
    assert ctx.target("leader") is nodes["b1"]
    assert ctx.resolutions() == "leader = b1"
