"""A validated scenario resolved into what the runner needs: its targets as objects (lab nodes,
Patroni clusters and their roles, containers, processes found by their pid files) and the
checker's configuration."""

from __future__ import annotations

import signal

from drills.checker import CheckConfig, Objectives, ProbeObjectives
from drills.containers.target import ContainerTarget
from drills.hosts.target import host_target_class
from drills.hosts.unit import host_unit_class
from drills.levels import Level
from drills.patroni.spec import cluster_target, role_target
from drills.scenario import Scenario
from drills.targets import Target, process_target_class


def scenario_targets(
    scenario: Scenario, lab_targets: dict[str, Target], containers: dict[str, ContainerTarget]
) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for name, spec in scenario.targets.items():
        if spec.lab is not None:
            targets[name] = lab_targets[spec.lab]
        elif spec.patroni is not None:
            targets[name] = cluster_target(name, spec.patroni)
        elif spec.role is not None and spec.cluster is not None:
            cluster = scenario.targets[spec.cluster].patroni
            assert cluster is not None  # validation checked it
            targets[name] = role_target(name, spec.role, spec.cluster, cluster)
        elif name in containers:
            targets[name] = containers[name]
        elif spec.host is not None and spec.unit is not None:
            targets[name] = host_unit_class(spec.dsn)(name, spec.host, spec.unit, spec.dsn)
        elif spec.host is not None:
            assert spec.pid_file is not None
            stop = signal.Signals[spec.stop_signal]
            host = host_target_class(spec.start, spec.dsn)
            targets[name] = host(name, spec.host, spec.pid_file, spec.dsn, spec.start, stop)
        else:
            assert spec.pid_file is not None
            stop = signal.Signals[spec.stop_signal]
            build = process_target_class(spec.start, spec.dsn)
            targets[name] = build(name, spec.pid_file, spec.dsn, spec.start, stop)
    return targets


def check_config(scenario: Scenario, level: Level | None = None) -> CheckConfig:
    return CheckConfig(
        objectives=Objectives(
            rto_s=scenario.objectives.rto,
            rpo_s=scenario.objectives.rpo,
            availability=scenario.objectives.availability,
        ),
        service_probe=scenario.service_probe,
        write_probe=scenario.write_probe,
        stable=scenario.stable,
        probe_objectives={
            name: ProbeObjectives(probe.objectives.rto, probe.objectives.availability)
            for name, probe in scenario.probes.items()
            if probe.objectives is not None
        },
        level=level,
    )
