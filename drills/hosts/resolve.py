"""Host targets of a scenario checked against the allow-list of drills.yaml (`hosts.allow`),
before anything is started or injected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from drills.config import Config
from drills.errors import Problem, ScenarioError
from drills.hosts.spec import host_allowed

if TYPE_CHECKING:
    from drills.scenario import LoadedScenario


def check_hosts(loaded: LoadedScenario, config: Config, config_file: Path | None) -> None:
    """ScenarioError naming each host target whose host the allow-list does not name."""
    problems = []
    for name, spec in loaded.scenario.targets.items():
        if spec.host is None or host_allowed(config.hosts.allow, spec.host) is not None:
            continue
        origin = f"the allow-list of {config_file}" if config_file else "an allow-list"
        problems.append(
            Problem(
                str(loaded.path),
                loaded.source.line_of(("targets", name, "host")),
                f"targets.{name}.host",
                f"host {spec.host.hostname} is not in {origin}: faults touch only hosts "
                f"listed in drills.yaml (hosts: allow: [{spec.host.hostname}]); see "
                "docs/own-systems.md",
            )
        )
    if problems:
        raise ScenarioError(problems)
