"""The schedule file's model and the state of each requirement in a quarter (`status`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, StrictInt, model_validator

from drills.configfile import load_model
from drills.model import StrictModel
from drills.quarters import Quarter
from drills.records import Run
from drills.yamlsource import YamlSyntaxError, load

SCENARIO_NAME = r"^[a-z0-9][a-z0-9_.-]*$"  # as a scenario's `name:`


class Requirement(StrictModel):
    scenario: str = Field(
        pattern=SCENARIO_NAME, description="scenario name (its `name:`), as in run records"
    )
    cadence: Literal["quarterly"] = "quarterly"
    month: StrictInt | None = Field(
        None, ge=1, le=3, description="month of the quarter it is due in"
    )
    file: str | None = Field(None, description="scenario file, for the scheduler entries")

    def window(self, quarter: Quarter) -> tuple[datetime, datetime]:
        if self.month is None:
            return quarter.start, quarter.end
        return quarter.month_start(self.month), quarter.month_end(self.month)

    @property
    def path(self) -> str:
        return self.file or f"scenarios/{self.scenario}.yaml"


class Schedule(StrictModel):
    version: Literal[1] = 1
    required: list[Requirement] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_twice(self) -> Schedule:
        seen = set()
        for requirement in self.required:
            key = (requirement.scenario, requirement.month)
            if key in seen:
                raise ValueError(f"{requirement.scenario} is required twice in the same window")
            seen.add(key)
        return self


class State(StrEnum):
    DONE = "done"
    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"


@dataclass
class Status:
    requirement: Requirement
    state: State
    window_start: datetime
    window_end: datetime
    runs: list[Run]  # runs of this scenario inside the window, oldest first
    last_pass: Run | None  # the latest passing run of this scenario, any time before `now`

    @property
    def failed_runs(self) -> int:
        return sum(not r.passed for r in self.runs)

    @property
    def rerun_after_failure(self) -> bool:
        """It failed inside the window and was run again until it passed."""
        first_pass = next((i for i, r in enumerate(self.runs) if r.passed), None)
        return first_pass is not None and any(not r.passed for r in self.runs[:first_pass])


def is_schedule(path: Path) -> bool:
    """Whether a YAML file is a schedule (it has `required:` and no `steps:`)."""
    try:
        data = load(path.read_text(encoding="utf-8"), str(path)).data
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return False
    return isinstance(data, dict) and "required" in data and "steps" not in data


def load_schedule(path: Path) -> Schedule:
    return load_model(path, Schedule, "a schedule")


def status(schedule: Schedule, runs: list[Run], quarter: Quarter, now: datetime) -> list[Status]:
    found = []
    for requirement in schedule.required:
        start, end = requirement.window(quarter)
        # Runs after `now` have not happened yet, as far as a what-if at `now` is concerned.
        mine = [r for r in runs if r.scenario == requirement.scenario and r.started <= now]
        inside = [r for r in mine if start <= r.started < end]
        passes = [r for r in mine if r.passed]
        if any(r.passed for r in inside):
            state = State.DONE
        elif now < start:
            state = State.UPCOMING
        elif now < end:
            state = State.DUE
        else:
            state = State.OVERDUE
        found.append(Status(requirement, state, start, end, inside, passes[-1] if passes else None))
    return found
