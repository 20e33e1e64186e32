"""Incident levels: how fast people must respond and the service must be back, by severity.

A scenario declares `level: N`; drills.yaml may redefine levels or add some under `levels:`.
The checker then judges two more objectives, from the history alone:
- `response`: from the first disruptive step to the acknowledgement of the first manual step
  marked `response: true` (the people's reaction);
- `recovery`: from the first disruptive step until the service probe recovered (the RTO's
  clock, measured the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from drills.durations import Duration, format_duration
from drills.errors import Problem
from drills.history import History
from drills.model import StrictModel
from drills.verdicts import ObjectiveResult, verdict_le
from drills.yamlsource import Source


class LevelObjectives(StrictModel):
    respond: Duration = Field(description="first acknowledged response step, at the latest")
    recover: Duration = Field(description="service recovered, at the latest")
    name: str = Field("", description="what the level means, e.g. system down")


# The commitments' defaults: level 1 system down, level 2 key business interrupted,
# level 3 not urgent.
DEFAULT_LEVELS = {
    1: LevelObjectives.model_validate({"respond": "15m", "recover": "1h", "name": "system down"}),
    2: LevelObjectives.model_validate(
        {"respond": "30m", "recover": "4h", "name": "key business interrupted"}
    ),
    3: LevelObjectives.model_validate({"respond": "1h", "recover": "24h", "name": "not urgent"}),
}


AUTO_RESPONSE = "acknowledged automatically (--auto-ack), not by a person"


@dataclass(frozen=True)
class Level:
    """What the checker is told: the level and its two objectives, in seconds."""

    number: int
    respond_s: float
    recover_s: float


def resolve_level(number: int, configured: dict[int, LevelObjectives]) -> Level:
    """The level's objectives, drills.yaml's over the defaults; KeyError if not defined."""
    found = (DEFAULT_LEVELS | configured)[number]
    return Level(number, found.respond, found.recover)


def defined_levels(configured: dict[int, LevelObjectives]) -> str:
    return ", ".join(str(n) for n in sorted(DEFAULT_LEVELS | configured))


def response_s(history: History, disruption_ns: int | None) -> tuple[float | None, str]:
    """Seconds from the first disruption to the first acknowledged response step."""
    if disruption_ns is None:
        return None, "no disruptive step: nothing to respond to"
    for step in sorted(history.steps, key=lambda s: s.start_ns):
        manual = step.facts.get("manual") if step.kind == "manual" else None
        if not isinstance(manual, dict) or not manual.get("response"):
            continue
        if manual.get("acknowledged") and manual.get("operator_time_s") is not None:
            acked = step.start_ns + round(float(manual["operator_time_s"]) * 1e9)
            auto = manual.get("via") == "auto"
            return max(0.0, (acked - disruption_ns) / 1e9), AUTO_RESPONSE if auto else ""
    return None, "no manual step marked `response: true` was acknowledged"


def judge_level(
    level: Level, history: History, disruption_ns: int | None, rto_s: float | None, why: str
) -> list[ObjectiveResult]:
    responded, reason = response_s(history, disruption_ns)
    name = f"level {level.number}"
    return [
        verdict_le(
            "response", level.respond_s, responded, reason or _within(name, level.respond_s)
        ),
        verdict_le("recovery", level.recover_s, rto_s, why or _within(name, level.recover_s)),
    ]


def _within(name: str, seconds: float) -> str:
    return f"{name}: within {format_duration(seconds)}"


def scenario_level(
    number: int | None,
    configured: dict[int, LevelObjectives],
    source: Source,
    problems: list[Problem],
) -> Level | None:
    """The scenario's `level:` with its objectives; a level nobody defined is a problem."""
    if number is None:
        return None
    try:
        return resolve_level(number, configured)
    except KeyError:
        message = (
            f"no incident level {number} (levels: {defined_levels(configured)}; "
            "define more under `levels:` in drills.yaml)"
        )
        problems.append(Problem(source.file, source.line_of(("level",)), "level", message))
        return None
