"""The Patroni steps against a local server that answers like Patroni's REST API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from drills.errors import StepError, TargetError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.patroni.cluster import ClusterTarget
from drills.patroni.rest import PatroniRest
from drills.patroni.steps import (
    ClusterPaused,
    Failover,
    PauseCluster,
    ResumeCluster,
    Switchover,
)
from drills.steps.base import RevertStack, StepContext
from tests.unit.drills.patroni.fake_patroni import AUTH, State, fake_patroni

BASIC = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def url(state: State) -> Iterator[str]:
    with fake_patroni(state) as base:
        yield base


def context(url: str, journal: list[JournalEntry] | None = None) -> StepContext:
    rest = PatroniRest([url], 1.0, AUTH)
    rest.password_source = "${env:TEST_PATRONI_PASSWORD}"
    return StepContext(
        {"pg": ClusterTarget("pg", rest)},
        {},
        RevertStack(),
        {},
        3,
        lambda text: None,
        journal=(journal if journal is not None else []).append,
    )


def step(cls: type[Any], **keys: Any) -> Any:
    return cls.model_validate({"kind": cls.model_fields["kind"].annotation.__args__[0], **keys})


def test_switchover_hands_the_leadership_over_and_names_the_new_leader(
    state: State, url: str
) -> None:
    detail = step(Switchover, target="pg").run(context(url))
    assert detail.startswith("leader pg1 -> pg2 (running ")
    assert state.leader == "pg2"
    assert state.requests == [("POST", "/switchover", {"leader": "pg1"}, BASIC)]


def test_switchover_to_a_candidate(state: State, url: str) -> None:
    state.members.append("pg3")
    step(Switchover, target="pg", candidate="pg3").run(context(url))
    assert state.requests[0][2] == {"leader": "pg1", "candidate": "pg3"}
    assert state.leader == "pg3"


@pytest.mark.parametrize(
    ("candidate", "message"),
    [("pg9", r"no member 'pg9' in the cluster \(members: pg1, pg2\)"), ("pg1", "the leader")],
)
def test_a_candidate_that_cannot_lead_is_refused_before_any_request(
    state: State, url: str, candidate: str, message: str
) -> None:
    with pytest.raises(StepError, match=message):
        step(Switchover, target="pg", candidate=candidate).run(context(url))
    assert state.requests == []


def test_switchover_without_a_leader_says_to_fail_over(state: State, url: str) -> None:
    state.leader = None
    with pytest.raises(StepError, match="no leader to switch over from: use failover"):
        step(Switchover, target="pg").run(context(url))


def test_a_leader_that_never_changes_fails_the_step_at_its_timeout(
    state: State, url: str
) -> None:
    state.stuck = True
    with pytest.raises(TargetError, match=r"no new leader running within 300ms; last seen: pg1"):
        step(Switchover, target="pg", timeout="300ms").run(context(url))


def test_patronis_refusal_fails_the_step_with_its_own_words(state: State, url: str) -> None:
    state.refuse = (412, "switchover is not possible: cluster does not have members")
    with pytest.raises(TargetError, match="HTTP 412: switchover is not possible"):
        step(Switchover, target="pg").run(context(url))


def test_failover_goes_to_the_candidate_with_or_without_a_leader(
    state: State, url: str
) -> None:
    detail = step(Failover, target="pg", candidate="pg2").run(context(url))
    assert detail.startswith("leader pg1 -> pg2 (")
    assert state.requests[0][:3] == ("POST", "/failover", {"candidate": "pg2"})
    state.leader = None
    assert step(Failover, target="pg", candidate="pg1").run(context(url)).startswith(
        "leader none -> pg1 ("
    )


def test_failover_needs_a_candidate() -> None:
    with pytest.raises(ValueError, match="candidate"):
        Failover.model_validate({"kind": "failover", "target": "pg"})


def test_pause_journals_and_pushes_its_undo_before_it_pauses(state: State, url: str) -> None:
    journal: list[JournalEntry] = []
    ctx = context(url, journal)
    detail = step(PauseCluster, target="pg").run(ctx)
    assert detail.startswith("maintenance mode on after")
    assert state.paused
    (entry,) = journal
    assert isinstance(entry, ClusterPaused)
    assert entry.model_dump() == {
        "op": "patroni-pause",
        "target": "pg",
        "urls": [url],
        "username": "drills",
        "password_source": "${env:TEST_PATRONI_PASSWORD}",
    }
    assert [r.description for r in ctx.reverts.items] == ["resume pg"]
    # At the end of the drill (every exit path), the cluster leaves maintenance mode.
    assert ctx.reverts.revert_all(lambda text: None) == []
    assert not state.paused


def test_a_pause_waits_until_each_member_is_in_maintenance_mode(state: State, url: str) -> None:
    state.lagging = 3  # the DCS says paused at once; the member's HA loop sees it later
    step(PauseCluster, target="pg").run(context(url, []))
    assert state.member_paused and state.lagging == 0


def test_a_pause_that_fails_still_leaves_its_undo(state: State, url: str) -> None:
    state.refuse = (503, "DCS unreachable")
    journal: list[JournalEntry] = []
    ctx = context(url, journal)
    with pytest.raises(TargetError, match="HTTP 503"):
        step(PauseCluster, target="pg").run(ctx)
    assert len(journal) == 1 and len(ctx.reverts.items) == 1


def test_resume_cluster_undoes_the_pause_or_resumes_without_one(state: State, url: str) -> None:
    ctx = context(url)
    step(PauseCluster, target="pg").run(ctx)
    assert step(ResumeCluster, target="pg").run(ctx).startswith("maintenance mode off after")
    assert not state.paused and ctx.reverts.items == []
    state.paused = True  # paused by someone else
    step(ResumeCluster, target="pg").run(ctx)
    assert not state.paused


def test_recover_resumes_the_cluster_with_the_password_read_again(
    state: State, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.paused = True
    raw = {
        "op": "patroni-pause",
        "target": "pg",
        "urls": [url],
        "username": "drills",
        "password_source": "${env:TEST_PATRONI_PASSWORD}",
    }
    entry = JOURNAL["patroni-pause"].model_validate(raw)
    monkeypatch.delenv("TEST_PATRONI_PASSWORD", raising=False)
    with pytest.raises(TargetError, match="set TEST_PATRONI_PASSWORD"):
        entry.undo(Recovery())
    assert state.paused
    monkeypatch.setenv("TEST_PATRONI_PASSWORD", AUTH[1])
    assert entry.undo(Recovery()) == "took pg out of maintenance mode"
    assert not state.paused
    assert state.requests[-1] == ("PATCH", "/config", {"pause": False}, BASIC)


def test_the_steps_describe_themselves() -> None:
    assert step(Switchover, target="pg").describe() == "switchover pg"
    assert step(Switchover, target="pg", candidate="b").describe() == "switchover pg to b"
    assert step(Failover, target="pg", candidate="b").describe() == "failover pg to b"
    assert step(PauseCluster, target="pg").describe() == "pause pg (maintenance mode on)"
    assert Switchover.disruptive and Failover.disruptive
    assert not PauseCluster.disruptive and not ResumeCluster.disruptive
