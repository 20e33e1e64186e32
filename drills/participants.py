"""Who takes part in a rehearsal: the scenario's `participants:` and `drills run --participant
NAME:ROLE`, kept in the record."""

from __future__ import annotations

from pydantic import Field

from drills.errors import DrillsError
from drills.model import StrictModel


class Participant(StrictModel):
    name: str = Field(min_length=1, description="a person, as they acknowledge (`drills ack --as`)")
    role: str = Field(min_length=1, description="e.g. dba, support, manager")


def parse_participant(text: str) -> Participant:
    name, sep, role = text.partition(":")
    if not sep or not name.strip() or not role.strip():
        raise DrillsError(f"--participant {text!r}: write NAME:ROLE, e.g. ana:dba")
    return Participant(name=name.strip(), role=role.strip())


def everyone(scenario: list[Participant], given: list[Participant]) -> list[Participant]:
    """The scenario's participants, then those given on the command line (a name given again
    takes its new role)."""
    by_name = {p.name: p for p in scenario} | {p.name: p for p in given}
    return list(by_name.values())
