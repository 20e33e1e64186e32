"""Abilities per node: what each target class can do, what each lab declares for each node,
and steps that reach their targets only through the ability they need."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from drills.abilities import PARTITION, PROMOTE, REJOIN, RESTART, SIGNAL, STOP, Injection
from drills.backup.lab import BACKED, BACKUP_SOURCE
from drills.containers.target import CONTAINER, ContainerTarget, PostgresContainer
from drills.errors import ScenarioError, StepError
from drills.hosts.target import host_target_class
from drills.incidents.server import LOCAL_SERVER
from drills.journal import JournalEntry
from drills.labs import LABS
from drills.patroni.cluster import CLUSTER
from drills.scenario import load_scenario
from drills.steps import STEPS, RevertStack, StepContext
from drills.steps.base import Revert
from drills.targets import ProcessPause, process_target_class

ALL = [SIGNAL, RESTART, PROMOTE, REJOIN, CONTAINER, CLUSTER, BACKUP_SOURCE, BACKED, LOCAL_SERVER]
ALL += [STOP, PARTITION]
CONTAINER_ABILITIES = {"Signalable", "Restartable", "ContainerTarget", "Stoppable", "Partitionable"}


def abilities(cls: type) -> set[str]:
    return {ability.protocol.__name__ for ability in ALL if ability.provided_by(cls)}


@pytest.mark.parametrize(
    ("start", "dsn", "expected"),
    [
        (None, None, {"Signalable"}),
        ("pg_ctl start", None, {"Signalable", "Restartable"}),
        (None, "host=db", {"Signalable", "Promotable"}),
        ("pg_ctl start", "host=db", {"Signalable", "Restartable", "Promotable"}),
    ],
)
def test_a_pid_file_target_has_the_abilities_its_spec_gives(
    start: str | None, dsn: str | None, expected: set[str]
) -> None:
    assert abilities(process_target_class(start, dsn)) == expected


@pytest.mark.parametrize(
    ("start", "dsn", "expected"),
    [
        (None, None, {"Signalable", "Partitionable"}),
        ("pg_ctl start", None, {"Signalable", "Partitionable", "Restartable", "Stoppable"}),
        (None, "host=db", {"Signalable", "Partitionable", "Promotable"}),
    ],
)
def test_a_host_target_has_the_abilities_its_spec_gives(
    start: str | None, dsn: str | None, expected: set[str]
) -> None:
    assert abilities(host_target_class(start, dsn)) == expected


def test_container_targets_signal_through_the_engine_and_promote_with_a_dsn() -> None:
    assert abilities(ContainerTarget) == CONTAINER_ABILITIES
    assert abilities(PostgresContainer) == abilities(ContainerTarget) | {"Promotable"}


def nodes(kind: str, **config: Any) -> dict[str, set[str]]:
    lab = LABS[kind]
    cfg = lab.Config.model_validate({"kind": kind, **config})
    return {name: abilities(spec.target) for name, spec in lab.nodes_for(cfg).items()}


def test_dual_active_nodes_each_have_their_own_abilities() -> None:
    found = nodes("dual-active")
    database = {"Signalable", "Restartable", "Promotable", "Rejoinable", "Backed", "LocalServer"}
    assert found["a"] == found["b"] == database | {"BackupSource"}
    assert found["a-service"] == found["b-service"] == found["lb"] == {"Signalable", "Restartable"}


def test_patroni_members_can_be_backed_up_but_not_restored_or_promoted() -> None:
    found = nodes("patroni")
    member = {"Signalable", "Restartable", "BackupSource"}
    assert found["a1"] == found["b1"] == found["leader"] == found["replica"] == member
    assert found["cluster"] == {"PatroniClustered"}


def test_docker_lab_extra_containers_cannot_be_promoted() -> None:
    found = nodes("docker-postgres-pair", containers={"cache": {"image": "redis:7"}})
    assert found["a"] == found["b"] == CONTAINER_ABILITIES | {"Promotable"}
    assert found["cache"] == CONTAINER_ABILITIES


@pytest.mark.parametrize("kind", LABS.kinds())
def test_every_node_of_every_site_can_be_signalled(kind: str) -> None:
    lab = LABS[kind]
    cfg = lab.Config.model_validate({"kind": kind})
    declared = lab.nodes_for(cfg)
    for site, members in lab.site_nodes_for(cfg).items():
        for node in members:
            assert declared[node].has(SIGNAL), (site, node)


def test_every_step_needs_an_ability_or_none() -> None:
    for kind, step in STEPS.items():
        assert step.needs is None or step.needs in ALL, kind


class FakeProcess:
    """A Signalable that records what it is asked to do."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []

    def send(self, sig: signal.Signals) -> str:
        self.calls.append(f"send {sig.name}")
        return f"{sig.name} sent to {self.name}"

    def pausing(self, called: str) -> Injection:
        entry = ProcessPause(target=called, pid=1)
        return Injection(entry, lambda: self._do("pause"), lambda: self._do("unpause"), "resume")

    def resume(self) -> str:
        return self._do("resume")

    def _do(self, what: str) -> str:
        self.calls.append(what)
        return what


class NoAbilities:
    name = "lb"


def context(**targets: Any) -> tuple[StepContext, list[JournalEntry]]:
    journal: list[JournalEntry] = []
    ctx = StepContext(
        targets=dict(targets),
        probes={},
        reverts=RevertStack(),
        variables={},
        stable=3,
        progress=lambda message: None,
        journal=journal.append,
    )
    return ctx, journal


def step(kind: str, **body: Any) -> Any:
    return STEPS[kind].model_validate({"kind": kind, **body})


def test_pause_pushes_its_undo_and_journals_before_pausing() -> None:
    target = FakeProcess("db")
    ctx, journal = context(site=target)
    assert step("pause", target="site").run(ctx) == "pause"
    assert journal == [ProcessPause(target="site", pid=1)]
    assert [r.key for r in ctx.reverts.items] == [("pause", "site")]
    assert step("resume", target="site").run(ctx) == "resume"  # the pause's undo, described
    assert target.calls == ["pause", "unpause"] and ctx.reverts.items == []
    assert step("resume", target="site").run(ctx) == "resume"  # nothing to undo: resume it
    assert step("kill", target="site", signal="TERM").run(ctx) == "SIGTERM sent to db"


def test_a_step_on_a_target_without_the_ability_fails_in_one_line() -> None:
    ctx, _ = context(lb=NoAbilities())
    with pytest.raises(StepError, match=r"^lb cannot be promoted$"):
        step("promote", target="lb").run(ctx)
    with pytest.raises(StepError, match=r"^lb cannot be signalled$"):
        step("kill", target="lb").run(ctx)


def test_site_down_refuses_a_site_with_a_node_it_cannot_signal() -> None:
    db = FakeProcess("a")
    ctx, _ = context()
    ctx.sites = {"a": [db, NoAbilities()]}  # type: ignore[list-item]
    with pytest.raises(StepError, match="lb cannot be signalled"):
        step("site-down", site="a").run(ctx)
    assert db.calls == [], "no node of the site is signalled when one cannot be"
    ctx.sites = {"a": [db]}
    assert step("site-down", site="a").run(ctx) == "SIGKILL sent to a"


def test_revert_keys_match_by_their_parts_not_by_string_prefix() -> None:
    stack = RevertStack()
    done: list[str] = []
    for key in [("link", "a", "down"), ("link", "ab", "down"), ("pause", "a")]:
        stack.push(Revert(key, "/".join(key), lambda key=key: done.append("/".join(key))))
    assert [r.key for r in stack.drop("link", "a")] == [("link", "a", "down")]
    assert [r.key for r in stack.undo_all("link")] == [("link", "ab", "down")]
    assert done == ["link/ab/down"]
    assert stack.undo(("pause", "a")) is not None and done[-1] == "pause/a"


SCENARIO = """
version: 1
name: abilities
targets:
  db: {target}
probes:
  port: {{kind: tcp, port: 5432, interval: 50ms}}
service_probe: port
steps:
  - {step}: db
"""


@pytest.mark.parametrize(
    ("target", "step", "problem"),
    [
        ("{pid_file: /run/db.pid}", "kill", None),
        ("{pid_file: /run/db.pid}", "promote", "it cannot be promoted (give the target a `dsn:`"),
        ("{pid_file: /run/db.pid, dsn: 'host=db'}", "promote", None),
        ("{pid_file: /run/db.pid}", "pause", None),
        ("{container: db}", "pause", None),
        ("{container: db}", "promote", "it cannot be promoted"),
        ("{container: db, dsn: 'host=db'}", "promote", None),
        ("{pid_file: /run/db.pid}", "stop", "it cannot be stopped and started (select a container"),
        ("{pid_file: /run/db.pid}", "unpause", "it is not a container (select one with"),
        ("{host: {ssh: root@db1}, pid_file: /run/db.pid}", "stop", "it cannot be stopped and"),
        ("{host: {ssh: root@db1}, pid_file: /run/db.pid, start: 'run db'}", "stop", None),
        ("{host: {ssh: root@db1}, pid_file: /run/db.pid}", "pause", None),
        ("{host: {ssh: root@db1}, pid_file: /run/db.pid}", "restart", "it cannot be restarted"),
        ("{host: {ssh: root@db1}, pid_file: /run/db.pid, dsn: 'host=db1'}", "promote", None),
    ],
)
def test_validation_knows_a_targets_abilities_from_its_spec(
    tmp_path: Path, target: str, step: str, problem: str | None
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(target=target, step=step))
    if problem is None:
        load_scenario(path)
        return
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    (found,) = caught.value.problems
    assert found.key == f"steps[0].{step}" and found.line == 10
    assert found.message.startswith(f"target 'db' cannot be used with {step}: {problem}")
