"""The `patroni` lab's shape and files, from its configuration alone (no server started)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from drills.abilities import PROMOTE, RESTART, SIGNAL
from drills.journal import Recovery
from drills.patroni.cluster import CLUSTER
from drills.patroni.lab_config import PatroniLabConfig
from drills.patroni.lab_files import LabSecrets, MemberPlan, haproxy_config, patroni_config
from drills.patroni.lab_nodes import PausedTrees
from drills.patroni.lab_topology import links, nodes, site_nodes
from drills.proctree import executable, start_time, state


def config(**keys: object) -> PatroniLabConfig:
    return PatroniLabConfig.model_validate({"kind": "patroni", **keys})


def test_absent_settings_are_patronis_defaults() -> None:
    assert config().dcs_settings() == {
        "ttl": 30,
        "loop_wait": 10,
        "retry_timeout": 10,
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": False,
    }


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"ttl": 10, "loop_wait": 10}, "ttl (10) must be longer than loop_wait (10)"),
        ({"ttl": 10, "loop_wait": 2, "retry_timeout": 5}, "2 + 2 * 5 > 10"),
        ({"members": {"clients": 1}}, "is not a site name"),
        ({"members": {"a": 0}}, "greater than or equal to 1"),
    ],
)
def test_settings_patroni_refuses_are_refused(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        config(**keys)
    assert message in str(refused.value)


def test_members_sites_and_links_follow_the_configuration() -> None:
    cfg = config(members={"a": 2, "b": 1})
    assert site_nodes(cfg) == {"a": ("a1", "a2"), "b": ("b1",)}
    ends = links(cfg)
    assert (ends["replication-a1"].client, ends["replication-a1"].server) == ("b", "a")
    assert (ends["etcd-b"].client, ends["etcd-b"].server) == ("b", "witness")
    assert (ends["clients-a2"].client, ends["clients-a2"].server) == ("clients", "a")
    found = nodes(cfg)
    for name in ("a1", "a2", "b1", "leader", "replica"):
        assert found[name].has(SIGNAL) and found[name].has(RESTART)
        assert not found[name].has(PROMOTE)
        assert "Patroni decides which member is primary" in found[name].description
    assert found["cluster"].has(CLUSTER) and found["etcd"].has(SIGNAL)


def test_member_configuration_trusts_no_one_and_uses_its_links(tmp_path: Path) -> None:
    cfg = config(ttl=10, loop_wait=2, retry_timeout=4, parameters={"work_mem": "8MB"})
    plan = MemberPlan("b1", "b", tmp_path / "b1", 5432, 8008, 6001, 6002)
    secret = LabSecrets()
    made = patroni_config(plan, cfg, secret, "drills-x", Path("/usr/lib/postgresql/15/bin"))
    assert made["postgresql"]["connect_address"] == "127.0.0.1:6001"
    assert made["etcd3"] == {"host": "127.0.0.1:6002", "use_proxies": True}
    assert made["bootstrap"]["dcs"]["ttl"] == 10
    assert made["bootstrap"]["dcs"]["postgresql"]["parameters"]["work_mem"] == "8MB"
    hba = made["postgresql"]["pg_hba"]
    assert hba and all(line.endswith("scram-sha-256") for line in hba)
    assert made["restapi"]["authentication"]["password"] == secret.rest
    assert len(secret.all()) == 3


def test_haproxy_checks_patronis_health_endpoints(tmp_path: Path) -> None:
    plan = MemberPlan("a1", "a", tmp_path, 5432, 8008, 6001, 6002)
    text = haproxy_config((7000, 7001), [(plan, 6100)], 0.25)
    assert "option httpchk OPTIONS /primary" in text and "option httpchk OPTIONS /replica" in text
    assert "server a1 127.0.0.1:6100 check port 8008" in text
    assert "inter 250ms" in text


def test_a_paused_member_is_resumed_by_recover() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        sleeper.send_signal(signal.SIGSTOP)
        root = (sleeper.pid, start_time(sleeper.pid))
        entry = PausedTrees(target="a1", roots=[root], exes=[executable(sleeper.pid)])
        assert entry.problem() is None
        assert PausedTrees.model_validate(entry.model_dump(mode="json")) == entry
        assert entry.undo(Recovery()) == "resumed a1 (1 processes)"
        assert state(sleeper.pid) != "T"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_scenario_can_lose_a_site_or_the_leader_of_a_patroni_lab(tmp_path: Path) -> None:
    from drills.scenario import load_scenario

    path = tmp_path / "site.yaml"
    path.write_text(
        "version: 1\nname: patroni-site\nlab: {kind: patroni, members: {a: 2, b: 1}}\n"
        "targets: {leader: {lab: leader}, a2: {lab: a2}, cluster: {lab: cluster}}\n"
        "probes: {writes: {kind: postgres-write, dsn: '${lab.a2.dsn}', interval: 50ms}}\n"
        "service_probe: writes\n"
        "steps: [{site-down: a}, {kill: leader}, {pause: a2}, {resume: a2}, {wait: 1s}]\n"
    )
    loaded = load_scenario(path)
    assert [step.kind for step in loaded.scenario.steps][:2] == ["site-down", "kill"]
