"""Scenario files, version 1: typed models, and a loader whose errors name file, line and key.

The whole scenario is validated before anything is started. Lab variables (`${lab.dsn}`) are
checked against example values the lab kind declares, then filled with the real values once
the lab is up; `${env:NAME}` comes from the environment.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from drills.containers.engine import EngineSpec
from drills.durations import Duration, Ratio, format_duration
from drills.errors import Problem, ScenarioError
from drills.labs import LABS, Lab, LabConfig
from drills.model import StrictModel
from drills.network.scenario_links import NetworkSpec
from drills.probe import PROBES, ProbeConfig
from drills.steps import STEPS, StepConfig
from drills.targets import CONTAINER, PROMOTE, REJOIN, RESTART, SIGNAL, signal_name
from drills.yamlsource import Source, YamlSyntaxError, load

NAME = r"^[a-z0-9][a-z0-9_.-]*$"
ABILITY_HINTS = {
    RESTART: "give the target a `start:` command",
    PROMOTE: "give the target a `dsn:` to promote it through",
    SIGNAL: "it has no processes to signal",
    REJOIN: "only a lab's PostgreSQL server can rejoin as a standby",
    CONTAINER: "it is not a container (select one with `container:`, `labels:` or `compose:`, "
    "or use a docker lab's node)",
}


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
    container: str | None = Field(None, description="a container: its name or id")
    labels: dict[str, str] | None = Field(
        None, description="a container: the one carrying all these labels"
    )
    compose: ComposeSelector | None = Field(
        None, description="a container: a compose service (project and service labels)"
    )
    dsn: str | None = Field(None, description="for promote: a libpq DSN of the server")
    start: str | None = Field(None, description="for restart: the command that starts it")
    stop_signal: Annotated[str, AfterValidator(signal_name)] = Field(
        "SIGTERM", description="for restart: how to stop it (PostgreSQL: SIGINT, fast shutdown)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> TargetSpec:
        sources = [self.lab, self.pid_file, self.container, self.labels, self.compose]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "a target is one of: `lab: NODE`, `pid_file: PATH`, `container: NAME`, "
                "`labels: {KEY: VALUE}`, `compose: {project: P, service: S}`"
            )
        if self.is_container and self.start is not None:
            raise ValueError(
                "`start` is for pid_file targets; a container restarts through its engine"
            )
        if self.labels is not None and not self.labels:
            raise ValueError("`labels` needs at least one label")
        return self

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

    def abilities(self, lab: type[Lab] | None) -> frozenset[str]:
        if self.lab is not None:
            return lab.node_abilities if lab else frozenset()
        found = {SIGNAL}
        if self.is_container:
            found |= {RESTART, CONTAINER}
        if self.start:
            found.add(RESTART)
        if self.dsn:
            found.add(PROMOTE)
        return frozenset(found)


class Scenario(StrictModel):
    version: Annotated[Literal[1], BeforeValidator(_version)] = 1
    name: Annotated[str, BeforeValidator(_name)]
    description: str = ""
    objectives: Objectives = Field(default_factory=lambda: Objectives.model_validate({}))
    lab: LabSpec | None = None
    targets: dict[str, TargetSpec] = Field(default_factory=dict)
    engine: EngineSpec | None = Field(
        None, description="the Docker engine of container targets (default: the environment)"
    )
    network: NetworkSpec | None = Field(
        None, description="links the scenario declares (instead of the lab's)"
    )
    probes: dict[str, ProbeSpec] = Field(min_length=1)
    service_probe: str
    write_probe: str | None = None
    stable: int = Field(3, ge=1, description="ok samples in a row that count as recovered")
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

    @property
    def lab_class(self) -> type[Lab] | None:
        return LABS[self.scenario.lab.kind] if self.scenario.lab else None


_REF = re.compile(r"\$\{([^}]*)\}")


def _interpolate(
    source: Source, lab_vars: dict[str, str] | None, problems: list[Problem], secrets: set[str]
) -> Any:
    def fill(text: str, path: tuple[str | int, ...]) -> str:
        def one(match: re.Match[str]) -> str:
            ref = match.group(1).strip()
            if ref.startswith("env:"):
                name = ref[4:]
                if name in os.environ:
                    secrets.add(os.environ[name])
                    return os.environ[name]
                problem = f"environment variable {name!r} is not set"
            elif ref.startswith("file:"):
                try:
                    value = Path(ref[5:]).expanduser().read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as exc:
                    problem = f"cannot read secret file {ref[5:]!r}: {exc}"
                else:
                    secrets.add(value)
                    return value
            elif ref.startswith("lab."):
                name = ref[4:]
                if lab_vars is None:
                    problem = f"${{{ref}}} needs a lab, and the scenario declares none"
                elif name in lab_vars:
                    return lab_vars[name]
                else:
                    problem = (
                        f"unknown lab variable {name!r} (known: {', '.join(sorted(lab_vars))})"
                    )
            else:
                problem = (
                    f"unknown reference ${{{ref}}} (use ${{lab.NAME}}, ${{env:NAME}} or "
                    "${file:PATH})"
                )
            problems.append(Problem(source.file, source.line_of(path), _key(path), problem))
            return match.group(0)

        filled = _REF.sub(one, text)
        if "${" in _REF.sub("", text):
            problems.append(
                Problem(
                    source.file,
                    source.line_of(path),
                    _key(path),
                    f"unterminated reference in {text!r}: write ${{lab.NAME}} or ${{env:NAME}}",
                )
            )
        return filled

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, str):
            return fill(value, path)
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    return walk(source.data, ())


def _key(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(data: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str | None]:
    """Follow a pydantic location through the data, skipping union tags; return the path that
    exists and the first key that does not (a missing or unknown key)."""
    path: tuple[str | int, ...] = ()
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path, current = (*path, part), current[part]
        elif isinstance(current, dict) and current.get("kind") == part:
            continue
        elif isinstance(current, dict) and isinstance(part, str):
            return path, part
        else:
            break
    return path, None


def _problems_from(exc: ValidationError, source: Source, data: Any) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path, missing = _locate(data, tuple(error["loc"]))
        message = str(error["msg"]).removeprefix("Value error, ")
        kind = error["type"]
        ctx = error.get("ctx") or {}
        line_path = path
        if kind == "unknown_key":
            line_path = (*path, ctx["key"])
            missing = ctx["key"]
        elif kind == "missing":
            message = "missing (required)"
        elif kind == "union_tag_invalid":
            missing = "kind"
            line_path = (*path, "kind")
            message = (
                f"unknown kind {ctx.get('tag')!r} (expected one of: {ctx.get('expected_tags')})"
            )
        elif kind == "union_tag_not_found":
            missing = "kind"
            message = "missing (required): every entry here names its kind"
        key = _key((*path, missing) if missing else path)
        problems.append(Problem(source.file, source.line_of(line_path), key, message))
    return problems


def _cross_check(scenario: Scenario, source: Source) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(source.file, source.line_of(path), _key(path), message))

    lab = LABS[scenario.lab.kind] if scenario.lab else None
    probes = ", ".join(sorted(scenario.probes))
    if scenario.service_probe not in scenario.probes:
        add(("service_probe",), f"no probe named {scenario.service_probe!r} (probes: {probes})")
    if scenario.write_probe is not None:
        if scenario.write_probe not in scenario.probes:
            add(("write_probe",), f"no probe named {scenario.write_probe!r} (probes: {probes})")
        elif not PROBES[scenario.probes[scenario.write_probe].kind].writes:
            kinds = ", ".join(k for k, c in PROBES.items() if c.writes)
            add(
                ("write_probe",),
                f"probe {scenario.write_probe!r} does not write (kinds that do: {kinds})",
            )
    for name, target in scenario.targets.items():
        if target.lab is None:
            continue
        if lab is None:
            add(("targets", name, "lab"), "this target is a lab node, and the scenario has no lab")
        elif scenario.lab is not None and target.lab not in lab.nodes_for(scenario.lab):
            add(
                ("targets", name, "lab"),
                f"no node {target.lab!r} in a {scenario.lab.kind} lab "
                f"(nodes: {', '.join(lab.nodes_for(scenario.lab))})",
            )
    for index, condition in enumerate(scenario.abort_if):
        if condition.probe not in scenario.probes:
            add(
                ("abort_if", index, "probe"),
                f"no probe named {condition.probe!r} (probes: {probes})",
            )
    targets = ", ".join(sorted(scenario.targets)) or "none declared"
    for index, step in enumerate(scenario.steps):
        where = ("steps", index, step.kind)
        for target_name in step.target_names:
            spec = scenario.targets.get(target_name)
            needs = step.required_ability
            if spec is None:
                add(where, f"no target named {target_name!r} (targets: {targets})")
            elif spec.lab is not None and lab is None:
                pass  # reported at the target
            elif needs and needs not in spec.abilities(lab):
                hint = ABILITY_HINTS.get(needs, f"it needs the {needs!r} ability")
                add(where, f"target {target_name!r} cannot be used with {step.kind}: {hint}")
        if step.link_names or step.site_names:
            if scenario.network is not None:
                links = scenario.network.ends()
            else:
                links = lab.links_for(scenario.lab) if lab and scenario.lab else {}
            sites = {end for e in links.values() for end in (e.client, e.server)}
            if not links:
                add(where, "no network links to act on: declare `network:` or use a lab with links")
            for link in step.link_names:
                if links and link not in links:
                    add(where, f"no link named {link!r} (links: {', '.join(links)})")
            for site in step.site_names:
                if links and site not in sites:
                    add(where, f"no site named {site!r} (sites: {', '.join(sorted(sites))})")
        if step.probe_name is not None and step.probe_name not in scenario.probes:
            add(where, f"no probe named {step.probe_name!r} (probes: {probes})")
    return problems


def load_scenario(path: Path, lab_vars: dict[str, str] | None = None) -> LoadedScenario:
    """Load and validate a scenario. Without `lab_vars`, the lab's example values are used."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
        source = load(text, file)
    except UnicodeDecodeError:
        raise ScenarioError([Problem(file, None, "", "not UTF-8 text")]) from None
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(file, exc.line, "", f"invalid YAML: {exc.message}")]) from exc
    if not isinstance(source.data, dict):
        got = "an empty file" if source.data is None else type(source.data).__name__
        line = source.line_of(()) or 1
        raise ScenarioError(
            [Problem(file, line, "", f"a scenario is a mapping of keys; got {got}")]
        )
    problems = [Problem(file, line, _key(p), "duplicate key") for p, line in source.duplicates]
    lab = source.data.get("lab")
    if lab is not None:
        kind = lab.get("kind") if isinstance(lab, dict) else None
        if not isinstance(kind, str) or kind not in LABS:
            # Without a known lab kind, its variables and nodes cannot be checked either.
            what = "missing (required)" if kind is None else f"unknown kind {kind!r}"
            problems.append(
                Problem(
                    file,
                    source.line_of(("lab", "kind")),
                    "lab.kind",
                    f"{what} (labs: {', '.join(LABS.kinds())})",
                )
            )
            raise ScenarioError(problems)
        if lab_vars is None:
            lab_vars = dict(LABS[kind].variables)
    secrets: set[str] = set()
    data = _interpolate(source, lab_vars, problems, secrets)
    if problems:  # a value left unresolved would only cause follow-on errors
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += _problems_from(exc, source, data)
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0)) from None
    problems += _cross_check(scenario, source)
    if problems:
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0))
    return LoadedScenario(scenario, path, hashlib.sha256(raw).hexdigest(), source, secrets)
