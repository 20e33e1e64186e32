"""A Patroni cluster of your own as scenario targets: validation knows what the cluster and
its role targets can do, and the runner builds them (secrets kept out of the journal)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drills.errors import ScenarioError, TargetError
from drills.patroni.cluster import ClusterTarget, RoleTarget
from drills.runner import _targets
from drills.scenario import load_scenario
from drills.targets import ProcessTarget, RestartableProcess

SCENARIO = """\
version: 1
name: own-cluster
targets:
  pg:
    patroni:
      urls: [http://127.0.0.1:8008, http://127.0.0.1:8009/]
      auth: {{username: drills, password: "${{env:UNIT_PATRONI_PASSWORD}}"}}
      members:
        pg1: {{pid_file: /run/patroni/pg1.pid{start}}}
        pg2: {{pid_file: /run/patroni/pg2.pid{start}}}
  leader: {{role: leader, cluster: pg}}
  db: {{pid_file: /run/db.pid}}
probes: {{p: {{kind: tcp, port: 1}}}}
service_probe: p
steps:
  - {step}
"""


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("UNIT_PATRONI_PASSWORD", "unit-secret")
    return "unit-secret"


def load(tmp_path: Path, step: str, start: str = "", text: str = SCENARIO) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(text.format(step=step, start=start))
    return load_scenario(path)


def problems(tmp_path: Path, step: str, start: str = "", text: str = SCENARIO) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, step, start, text)
    return [f"{p.line}: {p.key}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(
    "step",
    [
        "switchover: pg",
        "switchover: {target: pg, candidate: pg2, timeout: 30s}",
        "failover: {target: pg, candidate: pg1}",
        "pause-cluster: pg",
        "resume-cluster: pg",
        "kill: leader",
        "pause: leader",
    ],
)
def test_steps_on_the_cluster_and_its_roles_validate(tmp_path: Path, step: str) -> None:
    load(tmp_path, step)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("switchover: db", "target 'db' cannot be used with switchover: it is not a Patroni "
         "cluster (use a patroni lab's `cluster` node, or a target with `patroni:"),
        ("kill: pg", "target 'pg' cannot be used with kill: it cannot be signalled"),
        ("promote: leader", "target 'leader' cannot be used with promote: it cannot be "
         "promoted (leader is a member of the Patroni cluster pg: Patroni decides who is "
         "promoted; use switchover or failover on the cluster)"),
        ("restart: leader", "it cannot be restarted (leader is a member of the Patroni cluster "
         "pg: give every member a `start:` command)"),
        ("failover: pg", "'failover' takes its keys: `- failover: {KEY: VALUE, ...}`"),
        ("failover: {target: pg}", "failover.candidate: missing (required)"),
    ],
)  # fmt: skip
def test_steps_on_targets_without_the_ability_are_refused(
    tmp_path: Path, step: str, message: str
) -> None:
    (found,) = problems(tmp_path, step)
    assert found.startswith("16: steps[0]")
    assert message in found


def test_a_role_target_can_restart_when_every_member_can(tmp_path: Path) -> None:
    load(tmp_path, "restart: leader", start=", start: systemctl start patroni")


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("leader: {{role: leader, cluster: pg}}", "leader: {{role: leader, cluster: db}}",
         "11: targets.leader.cluster: 'db' is not a `patroni:` target (Patroni clusters: pg)"),
        ("leader: {{role: leader, cluster: pg}}", "leader: {{role: leader}}",
         "a role target names both: `role: leader|replica, cluster: TARGET`"),
        ("leader: {{role: leader, cluster: pg}}", "leader: {{role: primary, cluster: pg}}",
         "11: targets.leader.role: Input should be 'leader' or 'replica'"),
        ("http://127.0.0.1:8008,", "127.0.0.1:8008,",
         "'127.0.0.1:8008' is not a REST API base URL such as http://HOST:8008"),
        ("  db: {{pid_file: /run/db.pid}}", "  db: {{pid_file: /run/db.pid, patroni: {{urls: [http://db:8008]}}}}",
         "a target is one of:"),
    ],
)  # fmt: skip
def test_malformed_patroni_targets_are_refused(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    assert replace in SCENARIO
    found = problems(tmp_path, "kill: db", text=SCENARIO.replace(replace, by))
    assert any(message in line for line in found), found


def test_a_role_target_needs_the_clusters_members(tmp_path: Path) -> None:
    text = SCENARIO.replace("      members:\n", "      members: {{}}\n")
    text = "\n".join(line for line in text.splitlines() if "pid_file: /run/patroni" not in line)
    found = problems(tmp_path, "kill: leader", text=text + "\n")
    assert found[0] == (
        "9: targets.leader.cluster: a role target acts on a member of pg: list them under "
        "`targets.pg.patroni.members` (NAME: {pid_file: PATH})"
    )


def test_the_runner_builds_the_cluster_and_its_role_targets(
    tmp_path: Path, password: str
) -> None:
    loaded = load(tmp_path, "kill: leader")
    targets = _targets(loaded.scenario, {}, {})  # type: ignore[attr-defined]
    cluster, leader = targets["pg"], targets["leader"]
    assert isinstance(cluster, ClusterTarget) and isinstance(leader, RoleTarget)
    rest = cluster.patroni()
    assert rest.urls == ["http://127.0.0.1:8008", "http://127.0.0.1:8009"]
    assert rest.auth == ("drills", password)
    # What the crash journal keeps: the scenario's text, never the password.
    assert rest.password_source == "${env:UNIT_PATRONI_PASSWORD}"
    assert password not in repr(rest)
    member = leader.member("pg2")
    assert type(member) is ProcessTarget and member.name == "pg2"
    assert isinstance(member, ProcessTarget)
    assert str(member.pid_file) == "/run/patroni/pg2.pid"
    with pytest.raises(TargetError, match="member 'pg3' of pg has no target"):
        leader.member("pg3")


def test_members_with_a_start_command_can_be_restarted(tmp_path: Path) -> None:
    loaded = load(tmp_path, "restart: leader", start=", start: 'true'")
    leader = _targets(loaded.scenario, {}, {})["leader"]  # type: ignore[attr-defined]
    assert isinstance(leader, RoleTarget)
    assert isinstance(leader.member("pg1"), RestartableProcess)
    assert os.environ["UNIT_PATRONI_PASSWORD"]
