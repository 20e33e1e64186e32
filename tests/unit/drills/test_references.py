"""References in commands (issue 15): a secret is never pasted into a command a lab container
runs; its `command` and `entrypoint` show in `ps` and `docker inspect`."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.errors import ScenarioError
from drills.references import command_kind
from drills.scenario import load_scenario

SECRET = "container-s3cr3t"


def docker_scenario(tmp_path: Path, container: str) -> Path:
    path = tmp_path / "docker.yaml"
    path.write_text(
        "name: container-secret\n"
        "lab:\n"
        "  kind: docker-postgres-pair\n"
        "  containers:\n"
        f"    app: {container}\n"
        "targets: {site-a: {lab: a}}\n"
        "probes: {port: {kind: tcp, port: 1}}\n"
        "service_probe: port\n"
        "steps: [{wait: 1s}]\n"
    )
    (tmp_path / "drills.yaml").write_text("version: 1\n")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, config=path.parent / "drills.yaml")
    assert SECRET not in str(caught.value)
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("container", "key"),
    [
        (
            "{image: x, command: ['sh', '-c', 'app --password ${env:DRILLS_TEST_SECRET}']}",
            "lab.containers.app.command[2]",
        ),
        ("{image: x, command: 'app --token=${file:TOKEN}'}", "lab.containers.app.command"),
        (
            "{image: x, entrypoint: ['app', '${env:DRILLS_TEST_SECRET}']}",
            "lab.containers.app.entrypoint[1]",
        ),
    ],
)
def test_a_secret_in_a_container_command_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container: str, key: str
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", SECRET)
    (tmp_path / "token").write_text(SECRET)
    path = docker_scenario(tmp_path, container.replace("TOKEN", str(tmp_path / "token")))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:5: {key}: ${{")
    assert "never pasted into a command" in problem and "`environment:`" in problem
    assert "\n" not in problem


def test_a_secret_in_a_container_environment_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", SECRET)
    container = (
        "{image: x, environment: {PW: '${env:DRILLS_TEST_SECRET}'}, "
        "command: ['sh', '-c', 'app --password \"$PW\"']}"
    )
    path = docker_scenario(tmp_path, container)
    load_scenario(path, config=tmp_path / "drills.yaml")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (("lab", "containers", "app", "command"), "container"),
        (("lab", "containers", "app", "command", 0), "container"),
        (("lab", "containers", "app", "entrypoint", 1), "container"),
        (("lab", "containers", "app", "environment", "PW"), None),
        (("lab", "containers", "app", "image"), None),
        (("targets", "app", "start"), "start"),
        (("steps", 0, "exec"), "exec"),
    ],
)
def test_command_kind(path: tuple[str | int, ...], kind: str | None) -> None:
    assert command_kind({"steps": [{"exec": "x"}]}, path) == kind
