"""Each container fault against a real Docker engine: its effect, then its revert."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from drills.containers.engine import EngineSpec
from drills.containers.local_image import NETUTILS_IMAGE
from drills.containers.target import ContainerTarget, find_container
from drills.errors import TargetError
from drills.scenario import STEPS
from drills.steps.base import RevertStack, StepContext
from tests.docker_helpers import (
    TEST_LABEL,
    answers,
    client,
    drills_leftovers,
    iptables_rules,
    postgres_container,
    wait_ready,
)

pytestmark = pytest.mark.docker

ENGINE = EngineSpec.model_validate({"helper_image": NETUTILS_IMAGE})


def context(**targets: ContainerTarget) -> StepContext:
    return StepContext(
        targets=dict(targets),
        probes={},
        reverts=RevertStack(),
        variables={},
        stable=3,
        progress=lambda message: None,
        run_id="test-faults",
    )


def step(kind: str, **body: Any) -> Any:
    return STEPS[kind].model_validate({"kind": kind, **body})


def target(container: Any, name: str = "victim") -> ContainerTarget:
    return ContainerTarget(name, client(), container, engine=ENGINE)


def test_pause_freezes_and_revert_unpauses() -> None:
    with postgres_container() as (container, port):
        ctx = context(victim=target(container))
        step("pause", target="victim").run(ctx)
        container.reload()
        assert container.status == "paused"
        assert not answers(port), "a paused server still answered"
        ctx.reverts.revert_all(lambda line: None)
        container.reload()
        assert container.status == "running"
        assert answers(port, timeout_s=5)
    assert drills_leftovers() == []


def test_kill_sends_the_signal_and_is_not_reverted() -> None:
    with postgres_container() as (container, _port):
        ctx = context(victim=target(container))
        step("kill", target="victim").run(ctx)
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 137  # SIGKILL
        assert ctx.reverts.items == []


def test_kill_with_sigterm_lets_postgres_shut_down() -> None:
    with postgres_container() as (container, _port):
        ctx = context(victim=target(container))
        step("kill", target="victim", signal="TERM").run(ctx)
        container.wait(timeout=30)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0  # smart shutdown, clean exit
        assert "shutting down" in container.logs().decode()


def test_stop_then_revert_starts_it_again() -> None:
    with postgres_container() as (container, _port):
        ctx = context(victim=target(container))
        step("stop", target="victim", timeout="5s").run(ctx)
        container.reload()
        assert container.status == "exited"
        ctx.reverts.revert_all(lambda line: None)
        container.reload()
        assert container.status == "running"
        wait_ready(int(container.ports["5432/tcp"][0]["HostPort"]))


def test_restart_gives_a_new_process() -> None:
    with postgres_container() as (container, _port):
        started = container.attrs["State"]["StartedAt"]
        step("restart", target="victim").run(context(victim=target(container)))
        container.reload()
        assert container.status == "running"
        assert container.attrs["State"]["StartedAt"] != started


def test_disconnect_and_revert_reconnects_with_aliases() -> None:
    engine = client()
    network = engine.networks.create("drills-test-net", labels={TEST_LABEL: "1"})
    try:
        with postgres_container(network=network.name) as (container, _port):
            ctx = context(victim=target(container))
            step("disconnect", target="victim", network=network.name).run(ctx)
            container.reload()
            assert network.name not in container.attrs["NetworkSettings"]["Networks"]
            ctx.reverts.revert_all(lambda line: None)
            container.reload()
            assert network.name in container.attrs["NetworkSettings"]["Networks"]
            # Reachable by name on the network again, as before the fault.
            peer = client().containers.run(
                "drills/postgres:local",
                ["pg_isready", "-h", str(container.name), "-t", "5"],
                network=network.name,
                remove=True,
            )
            assert b"accepting connections" in peer
    finally:
        network.remove()


def test_partition_from_an_address_drops_packets_and_revert_removes_the_rules() -> None:
    with postgres_container() as (container, port):
        # The published port reaches the container from the bridge's gateway.
        networks = container.attrs["NetworkSettings"]["Networks"]
        gateway = next(iter(networks.values()))["Gateway"]
        ctx = context(victim=target(container))
        step("partition", target="victim", **{"from": gateway}).run(ctx)
        rules = iptables_rules(str(container.id))
        assert any(f"-s {gateway}/32" in r and "-j DROP" in r for r in rules), rules
        assert not answers(port), "a partitioned server still answered"
        step("heal").run(ctx)  # heal all: container partitions too
        assert iptables_rules(str(container.id)) == []
        assert answers(port, timeout_s=5)
        assert ctx.reverts.items == []
    assert drills_leftovers() == []


def test_partition_between_two_containers() -> None:
    engine = client()
    network = engine.networks.create("drills-test-pair", labels={TEST_LABEL: "1"})
    try:
        with (
            postgres_container(network=network.name) as (a, _),
            postgres_container(network=network.name) as (b, _),
        ):
            probe = f"pg_isready -h {b.name} -t 1"
            assert a.exec_run(probe).exit_code == 0
            ctx = context(a=target(a, "a"), b=target(b, "b"))
            step("partition", targets=["a", "b"]).run(ctx)
            assert a.exec_run(probe).exit_code != 0, "traffic still flows a -> b"
            ctx.reverts.revert_all(lambda line: None)
            assert iptables_rules(str(a.id)) == []
            assert a.exec_run(probe).exit_code == 0
    finally:
        network.remove()


def test_selection_by_compose_labels() -> None:
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}
    with postgres_container(labels=labels) as (container, _):
        found = find_container(client(), None, labels)
        assert found.id == container.id
        assert find_container(client(), str(container.id)[:12], {}).id == container.id  # by id
        with pytest.raises(TargetError, match="no container has the labels"):
            find_container(client(), None, {**labels, "com.docker.compose.service": "web"})
        with (
            postgres_container(labels=labels),
            pytest.raises(TargetError, match="2 containers have the labels"),
        ):
            find_container(client(), None, labels)


def test_helper_image_without_iptables_is_a_clear_error() -> None:
    with postgres_container() as (container, _):
        spec = EngineSpec.model_validate({"helper_image": "drills/postgres:local"})
        ctx = context(victim=ContainerTarget("victim", client(), container, engine=spec))
        started = time.monotonic()
        with pytest.raises(Exception, match="no iptables in the image"):
            step("partition", target="victim", **{"from": "10.9.9.9"}).run(ctx)
        assert time.monotonic() - started < 30
        ctx.reverts.revert_all(lambda line: None)  # nothing was applied: the undo fails too
    assert drills_leftovers() == []


def test_engine_errors_are_one_line() -> None:
    from drills.containers.engine import connect
    from drills.errors import EngineError

    spec = EngineSpec.model_validate({"host": "unix:///nonexistent/docker.sock"})
    with pytest.raises(EngineError) as caught:
        connect(spec)
    assert "\n" not in str(caught.value)
    assert "unix:///nonexistent/docker.sock" in str(caught.value)


_ = docker  # the SDK is what these tests exercise


def test_engine_from_a_docker_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drills.containers.engine import address, connect
    from drills.errors import EngineError

    # A context made by the docker CLI itself, in a config directory of the test's own.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    made = subprocess.run(
        [
            "docker",
            "context",
            "create",
            "drills-test",
            "--docker",
            "host=unix:///var/run/docker.sock",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"docker CLI cannot create a context here: {made.stderr.strip()}")
    spec = EngineSpec.model_validate({"context": "drills-test"})
    assert address(spec)[0] == "unix:///var/run/docker.sock"
    assert connect(spec).ping()
    monkeypatch.setenv("DOCKER_CONTEXT", "drills-test")  # the environment's context
    assert address(EngineSpec.default())[0] == "unix:///var/run/docker.sock"
    with pytest.raises(EngineError, match="no docker context named 'missing'"):
        connect(EngineSpec.model_validate({"context": "missing"}))


def test_faults_refuse_what_they_would_get_wrong() -> None:
    from drills.errors import StepError

    with postgres_container() as (container, _port):
        journal: list[dict[str, object]] = []
        ctx = context(victim=target(container))
        ctx.journal = journal.append
        # Not on that network: nothing is journalled, nothing to revert (no reconnect later).
        with pytest.raises(TargetError, match="is not on network 'bridge-of-nobody'"):
            step("disconnect", target="victim", network="bridge-of-nobody").run(ctx)
        assert journal == [] and ctx.reverts.items == []
        # Already paused before the drill: not the drill's to unpause afterwards.
        container.pause()
        try:
            with pytest.raises(StepError, match="is paused, not running"):
                step("pause", target="victim").run(ctx)
            assert ctx.reverts.items == []
        finally:
            container.unpause()
    # A container in the host's network namespace: rules would land in the host's tables.
    host = client().containers.run(
        NETUTILS_IMAGE, ["sleep", "60"], network_mode="host", detach=True, labels={TEST_LABEL: "1"}
    )
    try:
        ctx = context(victim=target(host))
        with pytest.raises(StepError, match="shares the network namespace 'host'"):
            step("partition", target="victim", **{"from": "10.9.9.9"}).run(ctx)
        assert ctx.reverts.items == []
    finally:
        host.remove(force=True)
