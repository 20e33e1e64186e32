"""An engine per site: container targets on two Docker engines (the machine's and a second one
the test starts, tests/second_engine.py), one site on each, in one drill; everything reverted on
both after SIGTERM, and after SIGKILL by `drills recover`."""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import drills_cli, drills_env, sigkill_drill_at, signal_drill_at
from tests.second_engine import Engine, sleeper

pytestmark = pytest.mark.docker


@pytest.fixture
def dc2(dc2_engine: Engine) -> Engine:
    return dc2_engine


@pytest.fixture
def sites(dc2: Engine) -> Iterator[tuple[str, str]]:
    """A container on each engine, with the same name on both: only the engine tells them
    apart."""
    name = f"drills-test-site-{uuid.uuid4().hex[:8]}"
    here = docker.from_env()
    made = [sleeper(here, name), sleeper(dc2.client, name)]
    try:
        yield name, name
    finally:
        for container in made:
            container.remove(force=True)


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def scenario(tmp_path: Path, dc2: Engine, names: tuple[str, str], port: int) -> Path:
    path = tmp_path / "two-engines.yaml"
    path.write_text(
        f"""
name: two-engines
engines:
  dc1: {{host: "unix:///var/run/docker.sock"}}
  dc2: {{host: "{dc2.host}"}}
targets:
  site-a: {{container: {names[0]}, engine: dc1}}
  site-b: {{container: {names[1]}, engine: dc2}}
probes:
  port: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 100ms}}
service_probe: port
steps:
  - pause: site-a
  - stop: {{target: site-b, timeout: 1s}}
  - wait: 60s
"""
    )
    return path


def config(tmp_path: Path, names: tuple[str, str]) -> dict[str, str]:
    path = tmp_path / "drills.yaml"
    path.write_text(f"containers:\n  allow:\n    - name: {names[0]}\n")
    return {"DRILLS_CONFIG": str(path)}


def statuses(dc2: Engine, name: str) -> tuple[str, str]:
    return (
        str(docker.from_env().containers.get(name).status),
        str(dc2.client.containers.get(name).status),
    )


def test_sigterm_reverts_on_both_engines(
    sandbox: Path,
    tmp_path: Path,
    dc2: Engine,
    sites: tuple[str, str],
    listener: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = scenario(tmp_path, dc2, sites, listener)
    for key, value in config(tmp_path, sites).items():
        monkeypatch.setenv(key, value)  # signal_drill_at's drills see this environment

    def both_changed() -> None:
        assert statuses(dc2, sites[0]) == ("paused", "exited")

    status, _, err = signal_drill_at(
        path, sandbox, tmp_path / "runs", "step 3/3", signal.SIGTERM, both_changed
    )
    assert status == 130, err
    assert "reverted: start site-b" in err and "reverted: unpause site-a" in err
    assert statuses(dc2, sites[0]) == ("running", "running")


def test_sigkill_then_recover_reverts_on_both_engines(
    sandbox: Path, tmp_path: Path, dc2: Engine, sites: tuple[str, str], listener: int
) -> None:
    path = scenario(tmp_path, dc2, sites, listener)
    env = drills_env(sandbox) | config(tmp_path, sites) | {"DRILLS_STATE_DIR": str(tmp_path)}
    sigkill_drill_at(path, env, tmp_path / "runs", "step 3/3")
    assert statuses(dc2, sites[0]) == ("paused", "exited")
    recovered = drills_cli(["recover"], env)
    assert recovered.returncode == 0, recovered.stderr
    assert "unpaused container site-a" in recovered.stdout
    assert "started container site-b" in recovered.stdout
    assert statuses(dc2, sites[0]) == ("running", "running")
