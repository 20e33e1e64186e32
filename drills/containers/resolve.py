"""Container targets of a scenario: found on the engine and checked against the allow-list.

Runs before anything is started or injected, so a refused or missing container stops the
drill with nothing to undo.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import docker

from drills.config import Config, allowed
from drills.containers.engine import EngineSpec, connect
from drills.containers.target import ContainerTarget, container_target_class, find_container
from drills.errors import Problem, ScenarioError, TargetError

if TYPE_CHECKING:
    from drills.scenario import LoadedScenario, Scenario


def container_targets(
    scenario: Scenario,
    loaded: LoadedScenario,
    config: Config,
    config_file: Path | None,
    client: docker.DockerClient | None = None,
) -> dict[str, ContainerTarget]:
    specs = {name: spec for name, spec in scenario.targets.items() if spec.is_container}
    if not specs:
        return {}
    default = scenario.engine or EngineSpec.default()
    clients: dict[str | None, docker.DockerClient] = {} if client is None else {None: client}
    problems: list[Problem] = []
    found: dict[str, ContainerTarget] = {}
    for name, spec in specs.items():
        line = loaded.source.line_of(("targets", name))
        where = str(loaded.path)
        engine = scenario.engines[spec.engine] if spec.engine is not None else default
        if spec.engine not in clients:  # one client per engine, each reached once
            clients[spec.engine] = connect(engine)
        client = clients[spec.engine]
        try:
            container = find_container(client, *spec.selector())
        except TargetError as exc:
            on = f" (engine {spec.engine})" if spec.engine is not None else ""
            problems.append(Problem(where, line, f"targets.{name}", f"{exc}{on}"))
            continue
        labels = dict(container.labels or {})
        if allowed(config, str(container.name), labels) is None:
            origin = f"the allow-list of {config_file}" if config_file else "an allow-list"
            problems.append(
                Problem(
                    where,
                    line,
                    f"targets.{name}",
                    f"container {container.name} is not in {origin}: faults touch only "
                    f"containers listed in drills.yaml (containers: allow: - name: "
                    f"{container.name}); see docs/containers.md",
                )
            )
            continue
        build = container_target_class(spec.dsn)
        found[name] = build(name, client, container, spec.dsn, engine=engine)
    if problems:
        raise ScenarioError(problems)
    return found
