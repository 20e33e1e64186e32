"""Scenario files, version 1: typed models, and a loader whose errors name file, line and key.

The whole scenario is validated before anything is started. Lab variables (`${lab.dsn}`) are
checked against example values the lab kind declares, then filled with the real values once
the lab is up; `${env:NAME}` comes from the environment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from drills.abilities import NodeSpec
from drills.config import config_path, load_config
from drills.configfile import duplicates, indexed_key, problems_from, read_source
from drills.containers.engine import EngineSpec
from drills.containers.target import container_target_class
from drills.durations import Duration, Ratio, format_duration
from drills.errors import Problem, ScenarioError
from drills.hosts.spec import HostSpec
from drills.hosts.systemctl import unit_name
from drills.hosts.target import host_target_class
from drills.hosts.unit import host_unit_class
from drills.labs import LABS, Lab, LabConfig
from drills.levels import Level, scenario_level
from drills.model import StrictModel
from drills.network.scenario_links import NetworkSpec
from drills.openloop import MAX_STABLE
from drills.participants import Participant
from drills.patroni.cluster import ClusterTarget, Role
from drills.patroni.spec import PatroniSpec, keep_password_sources
from drills.probe import PROBES, ProbeConfig
from drills.references import Interpolation, Secrets
from drills.scenario_checks import cross_check
from drills.secrets import Redactor
from drills.steps import STEPS, StepConfig
from drills.steps.exec import Exec
from drills.targets import process_target_class, signal_name
from drills.yamlsource import Source

NAME = r"^[a-z0-9][a-z0-9_.-]*$"


def _union(configs: list[type[Any]]) -> Any:
    return Annotated[Union[tuple(configs)], Field(discriminator="kind")]  # noqa: UP007


def _normalize_step(value: Any) -> Any:
    """`- kill: site-a` and `- kill: {target: site-a}` both become `{kind: kill, target: ...}`."""
    if isinstance(value, dict) and "kind" not in value:
        if len(value) == 1:
            (kind, body), *_ = value.items()
            if kind in STEPS:
                if isinstance(body, dict):
                    if "kind" in body:
                        raise PydanticCustomError(
                            "step_kind_twice",
                            "a step's kind is its key ({kind}); remove 'kind: {other}'",
                            {"kind": str(kind), "other": str(body["kind"])},
                        )
                    return {"kind": kind, **body}
                shorthand = STEPS[kind].shorthand
                if shorthand is not None:
                    return {"kind": kind, shorthand: body}
                if body is None:
                    return {"kind": kind}
                raise PydanticCustomError(
                    "step_shape", "'{kind}' takes its keys: `- {kind}: {KEY: VALUE, ...}`",
                    {"kind": str(kind)},
                )  # fmt: skip
            raise PydanticCustomError(
                "unknown_step",
                "unknown step '{kind}' (steps: {known})",
                {"kind": str(kind), "known": ", ".join(STEPS.kinds())},
            )
        raise PydanticCustomError(
            "step_shape",
            "a step is one key, its kind, e.g. `- kill: site-a`; got {keys}",
            {"keys": ", ".join(map(str, value)) or "nothing"},
        )
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "step_shape", "a step is a mapping such as `- wait: 5s`; got {value}", {"value": value}
        )
    return value


if TYPE_CHECKING:
    ProbeSpec = ProbeConfig
    LabSpec = LabConfig
    StepSpec = StepConfig
else:
    ProbeSpec = _union([cls.Config for _, cls in PROBES.items()])
    LabSpec = _union([cls.Config for _, cls in LABS.items()])
    StepSpec = Annotated[
        _union([cls for _, cls in STEPS.items()]), BeforeValidator(_normalize_step)
    ]


def _version(value: Any) -> Any:
    if value != 1:
        raise ValueError(f"unsupported version {value!r}: this drills reads version 1")
    return value


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not re.match(NAME, value):
        raise ValueError(
            f"{value!r} is not a valid name: lowercase letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    return value


class Objectives(StrictModel):
    rto: Duration = Field(1800.0, description="recovery time objective")
    rpo: Duration = Field(300.0, description="recovery point objective (data-loss window)")
    availability: Ratio = Field(0.9999, description="availability objective")


class AbortIf(StrictModel):
    """A stop condition: when it holds during the drill, the runner stops injecting, reverts
    everything, and the record says `aborted` with the condition."""

    probe: str | None = Field(None, description="the probe the condition is about")
    down_for: Duration | None = Field(None, description="`probe` has been down this long")
    downtime: Duration | None = Field(
        None, description="`probe`'s total downtime so far exceeds this"
    )

    @model_validator(mode="after")
    def _one_condition(self) -> AbortIf:
        if self.probe is None:
            raise ValueError("name the probe the condition watches: probe: NAME")
        if (self.down_for is None) == (self.downtime is None):
            raise ValueError("give exactly one of down_for and downtime")
        return self

    def describe(self) -> str:
        if self.down_for is not None:
            return f"{self.probe} down for more than {format_duration(self.down_for)}"
        assert self.downtime is not None
        return f"{self.probe} downtime over {format_duration(self.downtime)}"


class ComposeSelector(StrictModel):
    project: str = Field(description="compose project (com.docker.compose.project)")
    service: str = Field(description="compose service (com.docker.compose.service)")


class TargetSpec(StrictModel):
    lab: str | None = Field(None, description="a node of the scenario's lab")
    pid_file: str | None = Field(None, description="a process you run: its pid file")
    host: HostSpec | None = Field(
        None, description="the host the pid_file or unit is on, reached over SSH (default: here)"
    )
    unit: Annotated[str, AfterValidator(unit_name)] | None = Field(
        None, description="on `host`: a systemd service there (NAME or NAME.service)"
    )
    engine: str | None = Field(
        None, description="a container's engine: a name from `engines` (default: `engine`)"
    )
    container: str | None = Field(None, description="a container: its name or id")
    labels: dict[str, str] | None = Field(
        None, description="a container: the one carrying all these labels"
    )
    compose: ComposeSelector | None = Field(
        None, description="a container: a compose service (project and service labels)"
    )
    patroni: PatroniSpec | None = Field(
        None, description="a Patroni cluster of your own: its members' REST URLs"
    )
    role: Role | None = Field(None, description="the member that has this role in `cluster`")
    cluster: str | None = Field(None, description="for role: the target that is the cluster")
    dsn: str | None = Field(None, description="for promote: a libpq DSN of the server")
    start: str | None = Field(None, description="for restart: the command that starts it")
    stop_signal: Annotated[str, AfterValidator(signal_name)] = Field(
        "SIGTERM", description="for restart: how to stop it (PostgreSQL: SIGINT, fast shutdown)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> TargetSpec:
        sources: list[object] = [self.lab, self.pid_file, self.container, self.labels]
        sources += [self.compose, self.patroni, self.role, self.unit]
        if self.host is not None and (self.pid_file is None) == (self.unit is None):
            raise ValueError(
                "a `host:` target names its process there: `pid_file: PATH` or `unit: NAME`"
            )
        if self.unit is not None:
            self._unit_only()
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "a target is one of: `lab: NODE`, `pid_file: PATH`, `unit: NAME` (with `host`), "
                "`container: NAME`, "
                "`labels: {KEY: VALUE}`, `compose: {project: P, service: S}`, "
                "`patroni: {urls: [URL, ...]}`, `{role: leader|replica, cluster: TARGET}`"
            )
        if (self.role is None) != (self.cluster is None):
            raise ValueError("a role target names both: `role: leader|replica, cluster: TARGET`")
        if self.engine is not None and not self.is_container:
            raise ValueError("`engine` names the engine of a container target")
        if self.is_container and self.start is not None:
            raise ValueError(
                "`start` is for pid_file targets; a container restarts through its engine"
            )
        if self.labels is not None and not self.labels:
            raise ValueError("`labels` needs at least one label")
        return self

    def _unit_only(self) -> None:
        if self.host is None:
            raise ValueError("`unit` names a systemd service on a `host:` (ssh: USER@HOST)")
        if self.start is not None or "stop_signal" in self.model_fields_set:
            raise ValueError(
                "a unit is started and stopped by systemd (its ExecStart, KillSignal): "
                "`start` and `stop_signal` are for pid_file targets"
            )

    @property
    def is_container(self) -> bool:
        return self.container is not None or self.labels is not None or self.compose is not None

    def selector(self) -> tuple[str | None, dict[str, str]]:
        """Container name or id, and labels to match."""
        if self.compose is not None:
            return None, {
                "com.docker.compose.project": self.compose.project,
                "com.docker.compose.service": self.compose.service,
            }
        return self.container, dict(self.labels or {})

    def describe_selector(self) -> str:
        name, labels = self.selector()
        return (
            name if name is not None else ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        )

    def describe_patroni(self) -> str:
        if self.patroni is not None:
            return f"Patroni cluster, REST API {', '.join(self.patroni.urls)}"
        return f"the {self.role} of {self.cluster}"

    def target_class(
        self, lab_nodes: dict[str, NodeSpec], targets: dict[str, TargetSpec] | None = None
    ) -> type | None:
        """The class this target will be, which says its abilities; None for a lab node the
        lab does not have, or a role target whose cluster is not a Patroni target."""
        if self.lab is not None:
            node = lab_nodes.get(self.lab)
            return node.target if node else None
        if self.patroni is not None:
            return ClusterTarget
        if self.cluster is not None:
            cluster = (targets or {}).get(self.cluster)
            return cluster.patroni.member_class() if cluster and cluster.patroni else None
        if self.is_container:
            return container_target_class(self.dsn)
        if self.unit is not None:
            return host_unit_class(self.dsn)
        if self.host is not None:
            return host_target_class(self.start, self.dsn)
        return process_target_class(self.start, self.dsn)


class Scenario(StrictModel):
    version: Annotated[Literal[1], BeforeValidator(_version)] = 1
    name: Annotated[str, BeforeValidator(_name)]
    description: str = ""
    objectives: Objectives = Field(default_factory=lambda: Objectives.model_validate({}))
    level: int | None = Field(None, ge=1, description="incident level judged (docs/game-days.md)")
    participants: list[Participant] = Field(default_factory=list, description="who takes part")
    lab: LabSpec | None = None
    targets: dict[str, TargetSpec] = Field(default_factory=dict)
    engine: EngineSpec | None = Field(
        None, description="the Docker engine of container targets (default: the environment)"
    )
    engines: dict[str, EngineSpec] = Field(
        default_factory=dict,
        description="Docker engines by name (one per site), for container targets' `engine:`",
    )
    network: NetworkSpec | None = Field(
        None, description="links the scenario declares (instead of the lab's)"
    )
    probes: dict[str, ProbeSpec] = Field(min_length=1)
    service_probe: str
    write_probe: str | None = None
    stable: int = Field(
        3, ge=1, le=MAX_STABLE, description="ok samples in a row that count as recovered"
    )
    settle: Duration = Field(1.0, description="pause before the final read of writes")
    abort_if: list[AbortIf] = Field(default_factory=list, description="stop conditions")
    steps: list[StepSpec] = Field(min_length=1)


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: Path
    sha256: str
    source: Source
    secrets: set[str] = field(default_factory=set)  # values from ${env:...} and ${file:...}
    level: Level | None = None  # the scenario's incident level, objectives from drills.yaml

    @property
    def lab_class(self) -> type[Lab] | None:
        return LABS[self.scenario.lab.kind] if self.scenario.lab else None


def _probe_problems(scenario: Scenario, source: Source) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(source.file, source.line_of(path), indexed_key(path), message))

    probes = ", ".join(sorted(scenario.probes))
    if scenario.service_probe not in scenario.probes:
        add(("service_probe",), f"no probe named {scenario.service_probe!r} (probes: {probes})")
    elif scenario.probes[scenario.service_probe].objectives is not None:
        add(
            ("probes", scenario.service_probe, "objectives"),
            f"{scenario.service_probe!r} is the service_probe, judged by the scenario's "
            "objectives: set its RTO and availability there",
        )
    if scenario.write_probe is not None:
        if scenario.write_probe not in scenario.probes:
            add(("write_probe",), f"no probe named {scenario.write_probe!r} (probes: {probes})")
        elif not PROBES[scenario.probes[scenario.write_probe].kind].writes:
            kinds = ", ".join(k for k, c in PROBES.items() if c.writes)
            add(
                ("write_probe",),
                f"probe {scenario.write_probe!r} does not write (kinds that do: {kinds})",
            )
    for index, condition in enumerate(scenario.abort_if):
        if condition.probe not in scenario.probes:
            add(
                ("abort_if", index, "probe"),
                f"no probe named {condition.probe!r} (probes: {probes})",
            )
    return problems


def _lab_variables(source: Source, problems: list[Problem]) -> dict[str, str] | None:
    """The lab's example variables, None without a lab; ScenarioError for an unknown lab."""
    lab = source.data.get("lab")
    if lab is None:
        return None
    kind = lab.get("kind") if isinstance(lab, dict) else None
    if not isinstance(kind, str) or kind not in LABS:
        # Without a known lab kind, its variables and nodes cannot be checked either.
        what = "missing (required)" if kind is None else f"unknown kind {kind!r}"
        line = source.line_of(("lab", "kind"))
        message = f"{what} (labs: {', '.join(LABS.kinds())})"
        raise ScenarioError([*problems, Problem(source.file, line, "lab.kind", message)])
    return dict(LABS[kind].variables)


def _masked(problems: list[Problem], secrets: Secrets) -> list[Problem]:
    """The problems sorted by line, no secret value in their messages."""
    redact = Redactor(secrets.values).text
    masked = [Problem(p.file, p.line, p.key, redact(p.message)) for p in problems]
    return sorted(masked, key=lambda p: p.line or 0)


def load_scenario(
    path: Path, lab_vars: dict[str, str] | None = None, config: Path | None = None
) -> LoadedScenario:
    """Load and validate a scenario. Without `lab_vars`, the lab's example values are used.
    `config`: the drills.yaml given on the command line (size limit, incident levels)."""
    settings = load_config(config_path(config))
    limit = settings.limits.scenario_bytes
    raw, source = read_source(path, "a scenario", limit, "limits.scenario_bytes")
    problems = duplicates(source, indexed_key)
    examples = _lab_variables(source, problems)
    interpolation = Interpolation(source, examples if lab_vars is None else lab_vars, problems)
    data = interpolation.run()
    secrets = interpolation.secrets
    if problems:  # a value left unresolved would only cause follow-on errors
        raise ScenarioError(_masked(problems, secrets))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, source, data, indexed_key)
        raise ScenarioError(_masked(problems, secrets)) from None
    patroni = {name: t.patroni for name, t in scenario.targets.items() if t.patroni}
    keep_password_sources(patroni, source.data.get("targets"))
    problems += _probe_problems(scenario, source) + cross_check(scenario, source)
    level = scenario_level(scenario.level, settings.levels, source, problems)
    if problems:
        raise ScenarioError(_masked(problems, secrets))
    for step in (s for s in scenario.steps if isinstance(s, Exec)):
        step.give_secrets(secrets.used_by(step.commands), secrets.references_of(step.undo or ""))
    digest = hashlib.sha256(raw).hexdigest()
    return LoadedScenario(scenario, path, digest, source, secrets.values, level)
