"""`drills run --dry-run`: what a drill would touch and do, without touching anything."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from drills.durations import format_duration
from drills.engines import engine_of
from drills.lateness import load_line, probe_load
from drills.locks import target_keys
from drills.probe import PROBES, ProbeConfig
from drills.scenario import LoadedScenario, Scenario
from drills.secrets import Redactor
from drills.steps.wait import Wait


def _pid_of(pid_file: str) -> str:
    try:
        return Path(pid_file).read_text().split()[0]
    except (OSError, IndexError):
        return "not running (no pid in the file)"


def _containers(loaded: LoadedScenario, config: Path | None) -> dict[str, str]:
    """What each container target resolves to now, and whether the allow-list lets it in."""
    if not any(spec.is_container for spec in loaded.scenario.targets.values()):
        return {}
    from drills.config import config_path, load_config
    from drills.containers.resolve import container_targets
    from drills.errors import DrillsError, ScenarioError

    path = config_path(config)
    try:
        found = container_targets(loaded.scenario, loaded, load_config(path), path)
    except ScenarioError as exc:
        by_target = {p.key.removeprefix("targets."): p for p in exc.problems}
        if all(key in loaded.scenario.targets for key in by_target):
            return {key: f"REFUSED: {p.message}" for key, p in by_target.items()}
        # drills.yaml itself is invalid
        return {name: f"unknown: {exc.problems[0]}" for name in loaded.scenario.targets}
    except DrillsError as exc:
        return {name: f"unknown: {exc}" for name in loaded.scenario.targets}
    out = {}
    for name, target in found.items():
        facts = target.describe()
        out[name] = (
            f"container {facts['name']} ({str(facts['id'])[:12]}, {target.status()}, image "
            f"{facts['image']}), allowed by {path}"
        )
    return out


def _host_allowed(loaded: LoadedScenario, config: Path | None, name: str) -> str:
    """Whether the allow-list lets faults touch the host (it is not connected to)."""
    from drills.config import config_path, load_config
    from drills.errors import DrillsError
    from drills.hosts.resolve import check_hosts

    path = config_path(config)
    try:
        check_hosts(loaded, load_config(path), path)
    except DrillsError as exc:
        problems = getattr(exc, "problems", [])
        found = [p for p in problems if p.key == f"targets.{name}.host"]
        if found or not problems:
            return f"REFUSED: {found[0].message if found else exc}"
    return f"allowed by {path} (not connected to before the drill)"


def describe(loaded: LoadedScenario, config: Path | None = None) -> str:
    scenario = loaded.scenario
    redact = Redactor(loaded.secrets).text
    out = [f"dry run of {loaded.path} ({scenario.name}): nothing is started or touched"]
    if scenario.lab is not None:
        out.append(
            f"lab: {scenario.lab.kind} (started before the drill, removed after it; its "
            "addresses below are examples until it runs)"
        )
    rows = []
    containers = _containers(loaded, config)
    for name, spec in scenario.targets.items():
        if spec.lab is not None:
            rows.append([name, f"lab node {spec.lab}", "created by the drill"])
        elif spec.patroni is not None or spec.cluster is not None:
            rows.append([name, spec.describe_patroni(), "read from the REST API when used"])
        elif spec.is_container:
            on = f" on engine {spec.engine}" if spec.engine is not None else ""
            what = f"container {spec.describe_selector()}{on}"
            rows.append([name, what, containers.get(name, "")])
        elif spec.host is not None:
            of = f"unit {spec.unit}" if spec.unit else f"process, pid file {spec.pid_file}"
            what = f"{of} on ssh {spec.host.describe()}"
            rows.append([name, redact(what), redact(_host_allowed(loaded, config, name))])
        else:
            assert spec.pid_file is not None
            rows.append(
                [name, f"process, pid file {spec.pid_file}", f"pid {_pid_of(spec.pid_file)}"]
            )
    if scenario.network is not None:
        for name, link in scenario.network.links.items():
            where = scenario.network.toxiproxy or "drills' proxy"
            rows.append(
                [
                    name,
                    f"link {link.client} -> {link.server} on {where}",
                    f"{link.listen or ''} -> {link.upstream or 'existing proxy'}",
                ]
            )
    if rows:
        out.append(tabulate(rows, headers=["target", "what", "now"], tablefmt="github"))
    probes = [
        [
            name,
            p.kind,
            format_duration(p.interval),
            format_duration(p.timeout),
            redact(str(getattr(p, "dsn", "") or getattr(p, "host", ""))),
        ]
        for name, p in scenario.probes.items()
    ]
    out.append(
        tabulate(
            probes, headers=["probe", "kind", "every", "timeout", "reaches"], tablefmt="github"
        )
    )
    out.append(load_line(probe_load(_engines(scenario))))
    elapsed, exact, timeline, clock_started = 0.0, True, [], False
    for index, step in enumerate(scenario.steps, start=1):
        at = f"{elapsed:.1f}s" if exact else f">= {elapsed:.1f}s"
        rto = "RTO clock starts" if step.starts_rto_clock and not clock_started else ""
        clock_started = clock_started or step.starts_rto_clock
        timeline.append(
            [index, at, redact(step.describe()), "fault" if step.disruptive else "", rto]
        )
        if isinstance(step, Wait):
            elapsed += step.duration
        else:
            exact = False
    out.append(tabulate(timeline, headers=["step", "at", "does", "", ""], tablefmt="github"))
    o = scenario.objectives
    out.append(
        f"objectives: RTO <= {format_duration(o.rto)}, RPO <= {format_duration(o.rpo)}, "
        f"availability >= {o.availability:.4%} (service probe {scenario.service_probe})"
    )
    for name, probe in scenario.probes.items():
        if probe.objectives is not None:
            own = probe.objectives
            said = [f"RTO <= {format_duration(own.rto)}"] if own.rto is not None else []
            if own.availability is not None:
                said.append(f"availability >= {own.availability:.4%}")
            out[-1] += f"\nobjectives of probe {name}: {', '.join(said)}"
    keys = target_keys(scenario)
    if keys:
        out.append("locks it would take: " + redact(", ".join(keys)))
    return "\n\n".join(out)


def _engines(scenario: Scenario) -> list[tuple[ProbeConfig, bool]]:
    """Each probe with whether it would run on the event loop (nothing is connected)."""
    return [
        (cfg, engine_of(PROBES[cfg.kind](name, cfg, "dry-run")) == "loop")
        for name, cfg in scenario.probes.items()
    ]
